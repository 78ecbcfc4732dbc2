"""Probes of JSON Schema rules: for every rule schema_rules.Walk finds, instances that keep it and instances that
break it, each one change to a valid base instance. The schema's verdict on each whole instance is what a
client would conclude; test_schema_agreement.py asks the daemon for its own."""
import copy

from schema_rules import DELETE, SAMPLES, STRINGS, holds, json_type, matches


class Probe:
    """INSTANCE, made for RULE, which it keeps (HELD true) or breaks."""

    def __init__(self, rule, instance, held):
        self.rule, self.instance, self.held = rule, instance, held


class Prober:
    """The probes of every rule of WALK, each one change to BASE (a valid instance)."""

    def __init__(self, walk, base):
        self.walk, self.base = walk, base

    def probes(self):
        out = []
        for rule in self.walk.rules:
            if rule.kind == "type" and not rule.loc:
                continue  # params that are not an object: the envelope's business (messages.schema.json)
            current = self.locate(self.base, rule.loc)
            for value in self.values_for(rule, current):
                instance = self.place(self.base, rule.loc, value)
                if instance is None:
                    continue
                if rule.kind == "maxContains":
                    held = len(value) <= rule.arg  # every item was made to match "contains"
                else:
                    held = holds(rule.kind, rule.arg, value)
                if held is not None:
                    out.append(Probe(rule, instance, held))
        return out

    # -- where a value goes ----------------------------------------------------------------------------------

    def key_for(self, map_loc, node):
        """The name under which a map's value is probed: an existing one, else one its propertyNames take."""
        if node:
            return next(iter(node))
        names = [c for c in self.walk.candidates(map_loc + (("key",),)) if isinstance(c, str)]
        return names[0] if names else "K"

    def filler(self, loc, kind):
        """A value of KIND (dict or list) for LOC, to hold what is placed inside it."""
        for c in self.walk.candidates(loc):
            if isinstance(c, kind):
                return copy.deepcopy(c)
        return kind()

    def locate(self, instance, loc):
        node = instance
        for step in loc:
            if step[0] == "prop" and isinstance(node, dict) and step[1] in node:
                node = node[step[1]]
            elif step[0] == "index" and isinstance(node, list) and step[1] < len(node):
                node = node[step[1]]
            elif step[0] == "value" and isinstance(node, dict) and node:
                node = node[next(iter(node))]
            else:
                return DELETE
        return node

    def place(self, base, loc, value):
        """BASE with VALUE at LOC (a member removed for DELETE), containers made on the way; None if LOC
        cannot be reached (a step into a value of another type)."""
        if not loc:
            return None if value is DELETE else copy.deepcopy(value)
        instance = copy.deepcopy(base)
        node = instance
        for i, step in enumerate(loc):
            here, last = loc[:i], i == len(loc) - 1
            if step[0] == "key":
                if not isinstance(node, dict) or not isinstance(value, str):
                    return None
                node[value] = self.filler_value(here + (("value",),))
                return instance
            if step[0] == "index":
                if not isinstance(node, list):
                    return None
                key = step[1]
                while len(node) < key:
                    node.append(self.filler_value(here + (("index", len(node)),)))
            else:
                if not isinstance(node, dict):
                    return None
                key = step[1] if step[0] == "prop" else self.key_for(here, node)
            if last:
                if value is DELETE:
                    if isinstance(node, dict):
                        node.pop(key, None)
                    elif key < len(node):
                        del node[key]
                elif isinstance(node, list) and key == len(node):
                    node.append(copy.deepcopy(value))
                else:
                    node[key] = copy.deepcopy(value)
                return instance
            child = node[key] if (isinstance(node, dict) and key in node) or \
                (isinstance(node, list) and key < len(node)) else None
            want = list if loc[i + 1][0] == "index" else dict
            if not isinstance(child, want):
                child = self.filler(loc[:i + 1], want)
                if isinstance(node, list) and key == len(node):
                    node.append(child)
                else:
                    node[key] = child
            node = child
        return instance

    def filler_value(self, loc):
        c = self.walk.candidates(loc)
        return copy.deepcopy(c[0]) if c else "a"

    # -- what is placed --------------------------------------------------------------------------------------

    def values_for(self, rule, current):
        kind, arg, loc = rule.kind, rule.arg, rule.loc
        cands = self.walk.candidates(loc)
        if kind == "type":
            out = list(cands)
            for t, sample in SAMPLES.items():
                if not any(json_type(v) == t for v in out):
                    out.append(sample)
            # The same value written another way: an integer with a point (1.0 is an integer in JSON Schema),
            # a string with a NUL (no string on the wire may hold one).
            out += [float(v) for v in cands if json_type(v) == "integer" and abs(v) < 2 ** 53][:2]
            out += [v + "\u0000" for v in cands if isinstance(v, str)][:1]
            return out
        if kind == "enum":
            strings = [e for e in arg if isinstance(e, str)]
            return list(arg) + [s + "_" for s in strings[:1]] + [e.upper() for e in strings if e.upper() != e] + [12345]
        if kind == "const":
            other = {bool: lambda a: not a, str: lambda a: a + "_", int: lambda a: a + 1, float: lambda a: a + 1}
            return [arg] + ([other[type(arg)](arg)] if type(arg) in other else [])
        if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            takes_fractions = "number" in (rule.schema.get("type") if isinstance(rule.schema.get("type"), list)
                                           else [rule.schema.get("type")])
            return [arg, arg - 1, arg + 1] + ([arg - 0.5, arg + 0.5] if takes_fractions else [])
        if kind == "minLength":
            return ["a" * arg] + (["a" * (arg - 1)] if arg > 0 else [])
        if kind == "maxLength":
            # Characters, not bytes: 2-, 3- and 4-byte UTF-8 (the last a surrogate pair in JSON text).
            return ["a" * arg, "\u00e9" * arg, "\u20ac" * arg, "\U0001F600" * arg, "a" * (arg + 1), "\u00e9" * (arg + 1)]
        if kind == "pattern":
            pool = STRINGS + [c for c in cands if isinstance(c, str) and c not in STRINGS]
            return [s for s in pool if matches(arg, s)][:3] + [s for s in pool if not matches(arg, s)][:3]
        if kind in ("minItems", "maxItems", "maxContains"):
            return self.arrays(rule, current)
        obj = copy.deepcopy(current) if isinstance(current, dict) else self.filler(loc, dict)
        if kind == "additionalProperties":
            return [obj, dict(obj, zz_unknown=1), dict(obj, zz_unknown=None)]
        member = [c for c in self.walk.candidates(loc + (("prop", arg),)) if c is not None]
        with_member = dict(obj, **{arg: member[0] if member else SAMPLES["string"]})
        if kind == "required":
            return [with_member, {k: v for k, v in obj.items() if k != arg}]
        if kind == "nullability":
            return [dict(obj, **{arg: None}), with_member]
        raise KeyError(kind)

    def arrays(self, rule, current):
        current = current if isinstance(current, list) else self.filler(rule.loc, list)
        item = current[-1] if current else self.filler_value(rule.loc + (("index", 0),))
        if rule.kind == "maxContains":
            made = self.walk.values(rule.schema["contains"], rule.doc)
            match = made[0] if made else item
            item = dict(item, **match) if isinstance(item, dict) and isinstance(match, dict) else match
            return [[item] * rule.arg, [item] * (rule.arg + 1)]
        n = rule.arg
        lengths = [n, n - 1] if rule.kind == "minItems" else [n, n + 1]
        return [(current + [item] * max(0, m - len(current)))[:m] for m in lengths if m >= 0]
