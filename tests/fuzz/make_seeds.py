#!/usr/bin/env python3
"""Seed corpora and the params dictionary of the fuzz targets, made from what the protocol already says, so
that nothing large is committed and the seeds follow the protocol as it changes:

  - proto/transcripts/*.txt: their request lines ('> ') and answers ('< '), and each transcript as a byte
    stream;
  - proto/schemas/*.json: for every method, instances that keep and break each rule of its params schema
    (the probes the schema agreement test sends, tests/e2e/schema_probes.py), and the dictionary's words;
  - proto/examples/client.py: the requests the example client makes;
  - proto/PROTOCOL.md: its example request.

    make_seeds.py SOURCE_DIR OUT_DIR

writes OUT_DIR/{framer,jsonrpc,params}/ (one file per seed) and OUT_DIR/params.dict. fuzz_params's inputs
are "METHOD\\nPARAMS" (fuzz_params.cpp). Without python3-jsonschema the schema probes are left out, and
it says so."""
import ast, hashlib, json, os, re, shutil, sys

MAX_SEED = 8192  # longer seeds slow every run down (libFuzzer's -max_len follows the longest) for little gain
# The world fuzz_params builds (daemon_world.cpp): tasks 1 to 10 exist, 3 runs, 5 waits for it.
KNOWN_TASK, RUNNING_TASK = 1, 3
PLACEHOLDERS = {"${TMP}": "/tmp"}


def request_lines(source):
    """Every request line the protocol's documents hold, and the answers of the transcripts."""
    requests, answers, streams = [], [], []
    tdir = os.path.join(source, "proto", "transcripts")
    for name in sorted(os.listdir(tdir)):
        if not name.endswith(".txt"):
            continue
        stream = []
        with open(os.path.join(tdir, name), encoding="utf-8") as f:
            for raw in f:
                line = raw.rstrip("\n")
                for k, v in PLACEHOLDERS.items():
                    line = line.replace(k, v)
                if line.startswith("> "):
                    requests.append(line[2:])
                    stream.append(line[2:])
                elif line.startswith("< "):
                    answers.append(line[2:])
        streams.append(stream)
    with open(os.path.join(source, "proto", "PROTOCOL.md"), encoding="utf-8") as f:
        requests += re.findall(r'`(\{"jsonrpc":"2\.0".*?\})`', f.read())
    requests += client_requests(os.path.join(source, "proto", "examples", "client.py"))
    return requests, answers, streams


def client_requests(path):
    """The calls client.py makes (self.call("method", ..., name=value)), with its runtime values replaced by
    plausible ones."""
    stand_ins = {"cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}, "id": KNOWN_TASK, "argv": ["echo", "hello"]}
    out = []
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            continue
        params = {}
        for kw in node.keywords:
            if kw.arg is None:
                continue
            try:
                params[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                if kw.arg in stand_ins:
                    params[kw.arg] = stand_ins[kw.arg]
        out.append(json.dumps({"jsonrpc": "2.0", "id": 1, "method": node.args[0].value, "params": params},
                              separators=(",", ":")))
    return out


def load_schemas(source):
    sdir = os.path.join(source, "proto", "schemas")
    docs = {}
    for name in sorted(os.listdir(sdir)):
        if name.endswith(".json"):
            with open(os.path.join(sdir, name), encoding="utf-8") as f:
                docs[name] = json.load(f)
    return docs


def schema_probes(source, docs):
    """(method, params) for every probe of every rule of the methods' params schemas."""
    sys.path.insert(0, os.path.join(source, "tests", "e2e"))
    try:
        import schema_rules
        from schema_probes import Prober
    except ImportError as e:
        print(f"make_seeds.py: no schema probes ({e}; apt-get install python3-jsonschema)", file=sys.stderr)
        return []
    params_doc = docs["params.schema.json"]
    spec = {"cwd": "/tmp", "after": [RUNNING_TASK]}
    one = [{"id": KNOWN_TASK}, {"ids": [KNOWN_TASK, RUNNING_TASK]}]
    bases = {
        "task.submit": [dict(spec, argv=["true"]), dict(spec, shell="true"), dict(spec, pipeline=[["true"], ["true"]])],
        "task.submit_batch": [{"defaults": dict(spec, argv=["true"]), "tasks": [{}]}, {"tasks": [dict(spec, argv=["true"])]}],
        "task.get": one, "task.wait": one, "task.as_completed": one, "task.cancel": one,
        "task.signal": [{"id": RUNNING_TASK}],
        "task.logs": [{"id": KNOWN_TASK}, {"id": RUNNING_TASK, "stream": "stderr", "follow": True}],
        "pool.set": [{"name": "probe", "workers": 1}],
    }
    schema_docs = [docs["task_spec.schema.json"], params_doc]
    out = []
    for method in sorted(m for m in params_doc["$defs"] if "." in m):
        walk = schema_rules.Walk(schema_docs, f"urn:mpctl:schema:params#/$defs/{method}")
        for base in bases.get(method, [{}]):
            out.append((method, base))
            for probe in Prober(walk, base).probes():
                if isinstance(probe.instance, dict):
                    out.append((method, probe.instance))
    return out


def words(docs):
    """The dictionary: method names, member names, enum values and constants of every schema."""
    found = set()

    def visit(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "properties" and isinstance(v, dict):
                    found.update(json.dumps(name) for name in v)
                if k in ("enum", "const"):
                    for e in v if k == "enum" else [v]:
                        found.add(json.dumps(e))
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    for doc in docs.values():
        visit(doc)
        found.update(json.dumps(m) for m in doc.get("$defs", {}) if "." in m)
    found.update(["true", "false", "null", "{}", "[]", '""', "0", "1", "-1", "1.0", "1e3", "0.5", "3600",
                  "31536000", "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1e308",
                  "1e-320", '"TERM"', '"SIGKILL"', '"9"', '"/"', '"/dev/null"', '"\\u0000"', '"\\ud800"'])
    found.update(str(i) for i in range(1, 11))  # the world's tasks
    return sorted(found)


def dict_entry(word):
    """WORD as libFuzzer's dictionaries write it: quoted, with \\, \\" and \\xNN escapes."""
    out = ""
    for c in word:
        if c in '"\\':
            out += "\\" + c
        elif 0x20 <= ord(c) < 0x7F:
            out += c
        else:
            out += "".join(f"\\x{b:02x}" for b in c.encode())
    return f'"{out}"'


class Writer:
    def __init__(self, out):
        self.out, self.counts = out, {}

    def seed(self, target, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        if len(data) > MAX_SEED:
            return
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, hashlib.sha1(data).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.counts[target] = self.counts.get(target, 0) + 1


def main():
    source, out = sys.argv[1], sys.argv[2]
    for target in ("framer", "jsonrpc", "params"):
        shutil.rmtree(os.path.join(out, target), ignore_errors=True)
    w = Writer(out)
    docs = load_schemas(source)
    requests, answers, streams = request_lines(source)

    for line in requests + answers:
        w.seed("jsonrpc", line)
    for stream in streams:
        text = "\n".join(stream) + "\n"
        # The framer's first byte sets its cap (1 + 4n bytes), the second how the stream is cut into reads.
        for cap in (0x10, 0x40, 0xFF):
            w.seed("framer", bytes([cap, len(stream) & 0xFF]) + text.encode())
        w.seed("framer", bytes([0x40, 7]) + text.replace("\n", "\r\n").encode())

    for line in requests:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and isinstance(message.get("method"), str) and isinstance(message.get("params"), dict):
            w.seed("params", message["method"] + "\n" + json.dumps(message["params"], separators=(",", ":")))
    for method, params in schema_probes(source, docs):
        w.seed("params", method + "\n" + json.dumps(params, separators=(",", ":"), ensure_ascii=False))

    with open(os.path.join(out, "params.dict"), "w", encoding="ascii") as f:
        f.write("# Made by make_seeds.py from proto/schemas: do not edit.\n")
        for word in words(docs):
            f.write(dict_entry(word) + "\n")
    print("make_seeds.py: " + ", ".join(f"{n} {t} seeds" for t, n in sorted(w.counts.items())))


if __name__ == "__main__":
    main()
