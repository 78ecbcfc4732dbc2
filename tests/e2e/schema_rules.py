"""The rules of JSON Schemas, as the probes of schema_probes.py need them: every rule met in a method's params
schema (a type, a bound, a pattern, a required member, a closed object, a null...), where it applies, values
that keep a schema's simple rules, and whether a rule holds for a value. Patterns are read as ECMA-262 reads
them, as JSON Schema prescribes.

A location is a path of steps: ("prop", name), ("index", i), ("value",) (a value of a map: additionalProperties
as a schema) and ("key",) (a name in a map: propertyNames). A rule is "mandatory" when nothing but properties,
items, allOf and $ref lead to it: breaking it must make the instance invalid, and keeping it must be possible
in a valid one. Rules under anyOf, oneOf, not, if/then/else or contains are conditions: they only need to be
seen kept and broken."""
import functools, json, re
from urllib.parse import urljoin

import jsonschema

# The keywords a rule is made of, and those that only lead to other schemas or say nothing to a validator. A
# schema with any other keyword fails the test: this file must learn to probe it first.
RULE_KEYWORDS = {"type", "required", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                 "minLength", "maxLength", "minItems", "maxItems", "pattern", "maxContains"}
STRUCTURE = {"properties", "additionalProperties", "propertyNames", "items", "prefixItems", "contains", "minContains",
             "$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"}
ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "$comment", "examples", "default"}

# Strings tried against every pattern: each pattern needs one that matches and one that does not.
STRINGS = ["a", "", "A", "x y", "true", "/", "/tmp", "/a b", "rel", "rel/dir", "a=b", "=", "a\u0000b", "\u0000",
           "a\n", "\u00e9", "0", "7", "8", "022", "0777", "777", "1000", "0778", "01000", "1", "9", "15", "009", "64",
           "064", "65", "0009", "-1", "TERM", "term", "SIGTERM", "sigKill", "SIGFOO", "SIG", "KILL9", "default",
           "gpu-1.x_Y", "p" * 64, "p" * 65, "stdout", "unlimited", "*", "queue.*", "kv.get", "--qos=low", "-x", "--array=0-3", "--wait", "--waits"]
# One value of each JSON type, for the types a location does not take.
SAMPLES = {"null": None, "boolean": True, "integer": 1, "number": 1.5, "string": "x", "array": [], "object": {}}
DELETE = object()


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(v)]


def has_type(v, t):
    got = json_type(v)
    return got == t or (t == "number" and got == "integer")


@functools.lru_cache(maxsize=None)
def ecma(pattern):
    """PATTERN as ECMA-262 reads it, which JSON Schema prescribes: Python's $ also matches before a final
    newline, so "a\\n" would pass ^a$."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        in_class = (in_class and c != "]") or c == "["
        out.append(r"\Z" if c == "$" and not in_class else c)
        i += 1
    return re.compile("".join(out))


def matches(pattern, s):
    return ecma(pattern).search(s) is not None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not matches(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


@functools.lru_cache(maxsize=None)
def _join(base, ref):
    # Python's urljoin does not resolve "#..." against a urn: base (RFC 3986 does); jsonschema before 4.18
    # relies on it.
    return base.split("#")[0] + ref if ref.startswith("#") else urljoin(base, ref)


def validator_for(docs, ref):
    """A validator of the schema at REF (an absolute URI) among DOCS."""
    for d in docs:
        Validator.check_schema(d)
    wrapper = {"$id": "urn:mpctl:probe", "$ref": ref}
    try:
        from referencing import Registry, Resource  # jsonschema >= 4.18
        registry = Registry().with_resources([(d["$id"], Resource.from_contents(d)) for d in docs])
        return Validator(wrapper, registry=registry)
    except ImportError:
        resolver = jsonschema.RefResolver.from_schema(wrapper, store={d["$id"]: d for d in docs}, urljoin_cache=_join)
        return Validator(wrapper, resolver=resolver)


class Rule:
    def __init__(self, kind, loc, arg, where, mandatory, schema, doc):
        self.kind, self.loc, self.arg, self.where = kind, loc, arg, where
        self.mandatory, self.schema, self.doc = mandatory, schema, doc

    def key(self):
        return (self.kind, self.loc, json.dumps(self.arg, sort_keys=True), self.where)

    def __str__(self):
        return f"{self.kind} {json.dumps(self.arg)[:60]} at {loc_text(self.loc)} ({self.where})"


def loc_text(loc):
    out = "params"
    for step in loc:
        out += {"prop": lambda s: "." + s[1], "index": lambda s: f"[{s[1]}]", "value": lambda s: ".<value>",
                "key": lambda s: ".<key>"}[step[0]](step)
    return out


class Walk:
    """Every rule of one method's params schema, and every schema that applies at each location."""

    def __init__(self, docs, root_ref):
        self.docs = {d["$id"]: d for d in docs}
        self.rules, self.unknown, self.at = [], [], {}
        self._seen = set()
        schema, doc, ptr = self.resolve(root_ref, None)
        self.walk(schema, doc, ptr, (), True)
        unique = {}
        for r in self.rules:
            first = unique.setdefault(r.key(), r)
            first.mandatory = first.mandatory or r.mandatory
        self.rules = list(unique.values())

    def resolve(self, ref, doc):
        base, _, fragment = ref.partition("#")
        doc = base or doc
        node = self.docs[doc]
        for part in [p for p in fragment.split("/") if p]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, doc, doc + "#" + fragment

    def walk(self, s, doc, ptr, loc, mandatory):
        if not isinstance(s, dict) or (ptr, loc, mandatory) in self._seen:
            return
        self._seen.add((ptr, loc, mandatory))
        self.at.setdefault(loc, []).append((s, doc))
        for kw in set(s) - RULE_KEYWORDS - STRUCTURE - ANNOTATIONS:
            self.unknown.append(f"{kw} at {ptr}")
        if s.get("minContains", 0) != 0:
            self.unknown.append(f"minContains other than 0 at {ptr}")

        def rule(kind, arg, at=loc):
            self.rules.append(Rule(kind, at, arg, ptr, mandatory, s, doc))

        for kw in RULE_KEYWORDS & set(s):
            if kw == "required":
                for name in s[kw]:
                    rule("required", name)
            else:
                rule(kw, s[kw])
        for name, sub in s.get("properties", {}).items():
            # Null is valid or not depending on whether the member is required: seen both ways is enough.
            self.rules.append(Rule("nullability", loc, name, ptr, False, s, doc))
            self.walk(sub, doc, f"{ptr}/properties/{name}", loc + (("prop", name),), mandatory)
        extra = s.get("additionalProperties")
        if extra is False:
            rule("additionalProperties", sorted(s.get("properties", {})))
        elif isinstance(extra, dict):
            self.walk(extra, doc, ptr + "/additionalProperties", loc + (("value",),), mandatory)
        if "propertyNames" in s:
            self.walk(s["propertyNames"], doc, ptr + "/propertyNames", loc + (("key",),), mandatory)
        prefix = s.get("prefixItems", [])
        for i, sub in enumerate(prefix):
            self.walk(sub, doc, f"{ptr}/prefixItems/{i}", loc + (("index", i),), mandatory)
        if "items" in s:
            self.walk(s["items"], doc, ptr + "/items", loc + (("index", len(prefix)),), mandatory)
        if "contains" in s:
            self.walk(s["contains"], doc, ptr + "/contains", loc + (("index", 0),), False)
        if "$ref" in s:
            target, tdoc, tptr = self.resolve(s["$ref"], doc)
            self.walk(target, tdoc, tptr, loc, mandatory)
        for i, sub in enumerate(s.get("allOf", [])):
            self.walk(sub, doc, f"{ptr}/allOf/{i}", loc, mandatory)
        for kw in ("anyOf", "oneOf"):
            for i, sub in enumerate(s.get(kw, [])):
                self.walk(sub, doc, f"{ptr}/{kw}/{i}", loc, False)
        for kw in ("not", "if", "then", "else"):
            if kw in s:
                self.walk(s[kw], doc, f"{ptr}/{kw}", loc, False)

    # -- values ----------------------------------------------------------------------------------------------

    def values(self, s, doc, depth=0):
        """Values that keep the simple rules of S (not its combinators), most ordinary first."""
        if not isinstance(s, dict) or depth > 6:
            return []
        out = []
        if "$ref" in s:
            target, tdoc, _ = self.resolve(s["$ref"], doc)
            out += self.values(target, tdoc, depth + 1)
        for kw in ("allOf", "anyOf", "oneOf"):
            for sub in s.get(kw, []):
                out += self.values(sub, doc, depth + 1)
        if "const" in s:
            out.append(s["const"])
        out += s.get("enum", [])
        types = s.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        if not types and ("properties" in s or "required" in s):
            types = ["object"]
        for t in types:
            if t == "integer" or t == "number":
                lo = s.get("minimum", s.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in s else 0))
                out += [lo, s.get("maximum", lo + 1)] + ([lo + 0.5] if t == "number" else [])
            elif t == "string":
                n = max(1, s.get("minLength", 0))
                out += [x for x in ["a" * n] + STRINGS if "pattern" not in s or matches(s["pattern"], x)][:3]
            elif t == "array":
                prefix = [(self.values(p, doc, depth + 1) or [None])[0] for p in s.get("prefixItems", [])]
                item = (self.values(s.get("items", {}), doc, depth + 1) or ["a"])[0]
                out.append(prefix + [item] * max(0, s.get("minItems", 0) - len(prefix)))
            elif t == "object":
                props = s.get("properties", {})
                out.append({k: (self.values(props.get(k, {}), doc, depth + 1) or [None])[0]
                            for k in s.get("required", [])})
            else:
                out.append(SAMPLES[t])
        return [v for v in out if simple_ok(v, s)]

    def candidates(self, loc):
        """Values for LOC from every schema that applies there, each keeping that schema's simple rules."""
        out = []
        for schema, doc in self.at.get(loc, []):
            for v in self.values(schema, doc):
                if not any(v == o and json_type(v) == json_type(o) for o in out):
                    out.append(v)
        return out


def simple_ok(v, s):
    """Whether V keeps the rules of S that look at V alone (what combinators and refs say is not checked)."""
    return all(holds(kind, arg, v) is not False
               for kind, arg in s.items() if kind in RULE_KEYWORDS - {"required", "maxContains"})


def holds(kind, arg, v):
    """Whether the rule KIND ARG holds for the value V; None when it does not apply to a value of that type."""
    if v is DELETE:
        return None
    if kind == "type":
        return any(has_type(v, t) for t in ([arg] if isinstance(arg, str) else arg))
    if kind == "enum":
        return any(v == e and json_type(v) == json_type(e) for e in arg)
    if kind == "const":
        return v == arg and json_type(v) == json_type(arg)
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if not has_type(v, "number"):
            return None
        return {"minimum": v >= arg, "maximum": v <= arg, "exclusiveMinimum": v > arg,
                "exclusiveMaximum": v < arg}[kind]
    if kind in ("minLength", "maxLength", "pattern"):
        if not isinstance(v, str):
            return None
        return {"minLength": lambda: len(v) >= arg, "maxLength": lambda: len(v) <= arg,
                "pattern": lambda: matches(arg, v)}[kind]()
    if kind in ("minItems", "maxItems"):
        if not isinstance(v, list):
            return None
        return len(v) >= arg if kind == "minItems" else len(v) <= arg
    if kind in ("required", "nullability"):
        if not isinstance(v, dict):
            return None
        return arg in v if kind == "required" else (arg in v and v[arg] is None)
    if kind == "additionalProperties":
        return set(v) <= set(arg) if isinstance(v, dict) else None
    raise KeyError(kind)
