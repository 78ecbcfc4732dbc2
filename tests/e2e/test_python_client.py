#!/usr/bin/env python3
"""The protocol is the product: the stdlib-only client of proto/examples/client.py drives a real mpctld,
and every message on the wire, every spec sent and every status object received is checked against the
JSON Schemas of proto/schemas/."""
import json, os, signal, socket, subprocess, sys, tempfile, time, unittest

import jsonschema

SOURCE = os.environ["MPCTL_TEST_SOURCE_DIR"]
BIN = os.environ["MPCTL_TEST_BIN_DIR"]
sys.path.insert(0, os.path.join(SOURCE, "proto", "examples"))
import client  # noqa: E402


def schema(name):
    with open(os.path.join(SOURCE, "proto", "schemas", name)) as f:
        s = json.load(f)
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


MESSAGES, SPEC, STATUS = schema("messages.schema.json"), schema("task_spec.schema.json"), schema("task_status.schema.json")


def statuses_in(value):
    """Every status object inside an answer (they are the dicts that have a "state" and "stdout_path")."""
    if isinstance(value, dict):
        if "state" in value and "stdout_path" in value:
            yield value
        for v in value.values():
            yield from statuses_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from statuses_in(v)


class CheckedMpctl(client.Mpctl):
    """The example client, with every line it sends and receives validated."""

    def __init__(self, path):
        super().__init__(path)
        self.seen_statuses = 0
        self.check_specs = True  # off to send invalid specs on purpose
        raw_write, raw_readline = self.file.write, self.file.readline

        def write(data):
            for line in data.splitlines():
                msg = json.loads(line)
                MESSAGES.validate(msg)
                if msg["method"] == "task.submit" and self.check_specs:
                    SPEC.validate(msg["params"])
            return raw_write(data)

        def readline():
            line = raw_readline()
            msg = json.loads(line)
            MESSAGES.validate(msg)
            for st in statuses_in(msg.get("result", msg.get("params"))):
                STATUS.validate(st)
                self.seen_statuses += 1
            return line

        self.file.write, self.file.readline = write, readline


class PythonClientTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="mpt-py-", dir="/tmp")
        self.sock = os.path.join(self.dir.name, "d.sock")
        self.daemon = subprocess.Popen([os.path.join(BIN, "mpctld"), "--foreground", "--exit-with-parent",
                                        "--socket", self.sock, "--state-dir", os.path.join(self.dir.name, "state"),
                                        "--workers", "2"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                break
            except OSError:
                if time.monotonic() > deadline or self.daemon.poll() is not None:
                    raise
                time.sleep(0.01)
        self.m = CheckedMpctl(self.sock)

    def tearDown(self):
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(60)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        self.dir.cleanup()

    def test_a_future_round_trip_matches_the_schemas(self):
        t = self.m.call("task.submit", argv=["sh", "-c", "echo out; echo err >&2; exit 4"], cwd=self.dir.name,
                        env={"PATH": "/usr/bin:/bin"}, name="n", labels={"k": "v"}, timeout=60, retries=1)
        self.assertEqual(t["state"], "pending")
        done = self.m.call("task.wait", ids=[t["id"]], timeout=60)
        self.assertEqual(done["done"], [t["id"]])
        final = done["tasks"][0]
        self.assertEqual((final["state"], final["reason"], final["exit_code"], final["attempts"]), ("failed", "exit", 4, 2))
        shell = self.m.call("task.submit", shell="exit 0", cwd=self.dir.name, after=[t["id"]])
        got = []
        self.m.call("task.as_completed", lambda method, p: got.append((method, p["task"]["reason"])), ids=[shell["id"]])
        self.assertEqual(got, [("task.completed", "dependency")])
        self.m.call("task.list")
        self.m.call("task.get", ids=[1, 2])
        self.assertGreaterEqual(self.m.seen_statuses, 6)

    def test_a_pipeline_with_limits_matches_the_schemas(self):
        t = self.m.call("task.submit", pipeline=[["sh", "-c", "echo e >&2; yes"], ["head", "-n", "2"]],
                        cwd=self.dir.name, nice=3, umask="027", rlimits={"nofile": 64, "core": "unlimited"},
                        max_output=1024)
        final = self.m.call("task.wait", ids=[t["id"]], timeout=60)["tasks"][0]
        self.assertEqual(final["state"], "succeeded", final)
        self.assertEqual([s["state"] for s in final["stages"]], ["succeeded", "succeeded"])
        self.assertEqual(final["stages"][0]["exit_code"], 128 + signal.SIGPIPE)  # the shell reports yes's SIGPIPE
        with self.assertRaises(jsonschema.ValidationError):
            SPEC.validate({"argv": ["true"], "pipeline": [["a"], ["b"]]})
        with self.assertRaises(jsonschema.ValidationError):
            SPEC.validate({"pipeline": [["a"]]})

    def test_errors_match_the_schema_and_name_themselves(self):
        self.m.check_specs = False
        with self.assertRaises(jsonschema.ValidationError):
            SPEC.validate({"argv": ["true"], "retries": -1})
        with self.assertRaisesRegex(RuntimeError, "unknown_id"):
            self.m.call("task.get", id=99)
        with self.assertRaisesRegex(RuntimeError, "invalid_params: params.retries"):
            self.m.call("task.submit", argv=["true"], retries=-1)
        with self.assertRaisesRegex(RuntimeError, "method_not_found"):
            self.m.call("task.nothing")

    def test_the_example_run_command_streams_output_and_passes_the_exit_code(self):
        env = dict(os.environ, MPCTL_SOCKET=self.sock)
        script = os.path.join(SOURCE, "proto", "examples", "client.py")
        r = subprocess.run([sys.executable, script, "run", "sh", "-c", "echo hi; echo oops >&2; exit 3"],
                           env=env, capture_output=True, timeout=120)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (3, b"hi\n", b"oops\n"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
