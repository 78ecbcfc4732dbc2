#!/usr/bin/env python3
"""One source of truth for params: proto/schemas/params.schema.json (and the task spec it refers to) says what
each method accepts, and the daemon must refuse exactly the rest with invalid_params. For every rule the
schemas hold, instances that keep it and instances that break it (schema_probes.py) go to a real mpctld, and
the daemon's verdict (-32602 or not) must be the schema's. A rule no probe exercised, a keyword the probes do
not know (schema_rules.py lists those it does), or a method without a schema fails the test, so it stays true
as methods and rules are added.

It was written after a client built from PROTOCOL.md alone found them apart: null accepted where the schema
refused it, argv [""] and umask 1.0 the other way, name lengths in bytes against characters."""
import json, os, re, sys, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schema_rules  # noqa: E402
from schema_probes import Prober  # noqa: E402
from py_daemon import Connection, Daemon  # noqa: E402

SCHEMAS = os.path.join(os.environ["MPCTL_TEST_SOURCE_DIR"], "proto", "schemas")
PARAMS = "urn:mpctl:schema:params"
# Never a task here: a submit whose params the daemon accepts stops at unknown_id (its bases' after), so
# little runs, and a batch of 100,000 costs a parse. Probes that change `after` submit for real.
NO_TASK = 2 ** 63 - 1
TASK = 1  # a task that exists and has finished (made in setUp): waits, logs and signals on it return at once
MAX_LINE = 1 << 20  # a longer request never reaches the params (PROTOCOL.md, Framing)
LARGE = 1 << 16
ENDS_DAEMON = {"daemon.stop"}  # accepted, it stops the daemon, which is started again


def load(name):
    with open(os.path.join(SCHEMAS, name)) as f:
        return json.load(f)


def bases(cwd):
    """Valid instances each probe changes one thing of, per method (others start from {}): one per shape a
    rule needs to be seen in, such as each kind of command and a batch whose defaults read a passed stdin."""
    spec = {"cwd": cwd, "after": [NO_TASK]}
    one = [{"id": TASK}, {"ids": [TASK]}]
    return {
        "task.submit": [dict(spec, argv=["true"]), dict(spec, shell="true"), dict(spec, pipeline=[["true"], ["true"]])],
        "task.submit_batch": [{"defaults": dict(spec, argv=["true"]), "tasks": [{}]},
                              {"defaults": dict(spec, argv=["cat"], stdin_fd=True), "tasks": [{}]},
                              {"tasks": [dict(spec, argv=["true"])]}],
        "task.get": one, "task.wait": one, "task.as_completed": one, "task.cancel": one, "task.remove": one,
        "task.restart": one,
        "lock.acquire": [{"path": "/probe.lock"}], "lock.release": [{"path": "/probe.lock"}],
        "sem.acquire": [{"name": "probe", "limit": 1}], "sem.release": [{"name": "probe"}],
        "event.set": [{"name": "probe"}], "event.clear": [{"name": "probe"}], "event.wait": [{"name": "probe"}],
        "barrier.wait": [{"name": "probe", "parties": 1}],
        "shm.create": [{"name": "made", "size": 4096}, {"name": "made", "size": 4096, "persist": True}],
        "shm.unlink": [{"name": "none"}], "shm.info": [{"name": "probe"}],
        "shm.read": [{"name": "probe"}], "shm.write": [{"name": "probe", "data": "aGk="}],
        "shm.list_create": [{"name": "made", "values": [1, "a"]}],
        "shm.list_get": [{"name": "list"}, {"name": "list", "index": 0}],
        "shm.list_set": [{"name": "list", "index": 0, "value": 1}],
        "task.signal": [{"id": TASK}], "task.attach": [{"id": TASK}],
        "task.logs": [{"id": TASK}, {"id": TASK, "stream": "stderr"}],
        "pool.delete": [{"name": "probe-none"}],
        "pool.set": [{"name": "probe", "workers": 1},
                     {"name": "probe-slurm", "workers": 1, "backend": "slurm", "partition": "p", "account": "a",
                      "slurm_args": ["--qos=low"]},
                     {"name": "probe-transient", "workers": 1, "transient": True, "halt_after_failures": 1}],
        "queue.put": [{"name": "probe", "values": [1]}], "queue.get": [{"name": "probe"}],
        "queue.info": [{"name": "probe"}], "queue.delete": [{"name": "probe-none"}],
        "kv.set": [{"name": "probe", "key": "k", "value": 1}], "kv.get": [{"name": "probe", "key": "k"}],
        "kv.del": [{"name": "probe", "key": "k"}], "kv.list": [{"name": "probe"}],
        "kv.cas": [{"name": "probe", "key": "k", "expect": 1, "value": 2}], "kv.watch": [{"name": "probe"}],
        "token.create": [{"name": "probe"}, {"name": "probe-2", "methods": ["queue.*", "kv.get"]}], "token.revoke": [{"name": "probe-none"}],
        "session.auth": [{"token": "mpt_probe"}],
    }


def brief(value):
    """VALUE for a failure message: long strings and arrays abbreviated."""
    if isinstance(value, str) and len(value) > 24:
        return value[:8] + f"...({len(value)} characters)"
    if isinstance(value, list):
        return [brief(v) for v in value[:4]] + ([f"...({len(value)} items)"] if len(value) > 4 else [])
    if isinstance(value, dict):
        return {k: brief(v) for k, v in value.items()}
    return value


def needed(c, held):
    """Whether a probe on that side of a rule could still add to what the rule has been seen doing."""
    if held:
        return not c["kept"] or (c["rule"].mandatory and not c["kept_valid"])
    return not c["broken"] or (c["rule"].mandatory and not c["broken_invalid"])


def passed_stdin(method, params):
    """How many specs of the request read a passed descriptor (stdin_fd true, their own or their defaults')."""
    def reads(spec):
        return isinstance(spec, dict) and spec.get("stdin_fd") is True

    if method == "task.submit":
        return int(reads(params))
    if method != "task.submit_batch" or not isinstance(params.get("tasks"), list):
        return 0
    defaults = params.get("defaults")
    count = 0
    for entry in params["tasks"]:
        if isinstance(entry, dict):
            own = any(entry.get(k) is not None for k in ("stdin", "stdin_fd", "input"))
            count += reads(entry) if own else reads(defaults)
    return count


SEGMENT_PREFIX = f"mpctl-probe-{os.getpid()}-"


def confined_segment(name):
    """NAME with this test's prefix after its optional leading '/', when it is a valid segment name that
    stays valid (1 to 255 bytes without '/' or NUL, not '.' or '..'); else NAME itself."""
    lead, rest = ("/", name[1:]) if name.startswith("/") else ("", name)
    if rest in ("", ".", "..") or "/" in rest or "\u0000" in rest or len((SEGMENT_PREFIX + rest).encode()) > 255:
        return name
    return lead + SEGMENT_PREFIX + rest


def has_cgroup(instance):
    if isinstance(instance, dict):
        return instance.get("cgroup") is True or any(has_cgroup(v) for v in instance.values())
    return isinstance(instance, list) and any(has_cgroup(v) for v in instance)


class SchemaAgreementTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.conn = Connection(self.daemon.socket)
        os.makedirs(os.path.join(self.daemon.dir, "locks"))
        # The segment shm.read, shm.write and shm.info probes use; made with persist, removed at the end.
        self.conn.result("shm.create", {"name": confined_segment("probe"), "size": 4096, "persist": True})
        self.conn.result("shm.list_create", {"name": confined_segment("list"), "values": [1, "abc", None],
                                             "persist": True})
        for segment in ("probe", "list"):
            path = "/dev/shm/" + confined_segment(segment)
            self.addCleanup(lambda p=path: os.path.exists(p) and os.unlink(p))
        task = self.conn.result("task.submit", {"argv": ["true"], "cwd": self.daemon.dir})
        self.assertEqual(task["id"], TASK)
        self.assertEqual(self.conn.result("task.wait", {"id": TASK, "timeout": 120})["tasks"][0]["state"], "succeeded")
        self.cgroups = self.conn.result("daemon.status")["cgroups"]["available"]
        self.lost_stop_answers = 0
        self.upgrades = 0  # daemon.upgrade probes so far

    def tearDown(self):
        self.conn.close()
        self.daemon.stop()

    def verdict(self, method, instance):
        """The daemon's: True (accepted by the params layer), False (invalid_params), or a string saying why
        the answer is no verdict."""
        fds = passed_stdin(method, instance)
        conn = self.conn
        if method.startswith("shm.") and isinstance(instance, dict) and isinstance(instance.get("name"), str):
            # Segments are files of the machine's /dev/shm: the probes' names ("a", "true") get a prefix of
            # this test's, where that keeps them as valid as they were (and invalid ones stay as they are).
            instance = dict(instance, name=confined_segment(instance["name"]))
        if method in ("event.wait", "barrier.wait", "queue.get", "queue.put", "kv.watch") \
                and isinstance(instance, dict) and instance.get("nonblock") is not True:
            timeout = instance.get("timeout")
            if timeout is None or (type(timeout) in (int, float) and 0 <= timeout <= 31536000):
                # A wait nobody ends would block the probes: a valid timeout (or none) becomes 0, which
                # keeps the params as valid as they were and answers at once.
                instance = dict(instance, timeout=0)
        if method.startswith("lock.") and isinstance(instance, dict) and isinstance(instance.get("path"), str) \
                and instance["path"].startswith("/"):
            # Lock files are created where they are named: the probes' paths ("/", "/a b") go under the
            # daemon's directory instead of the machine's root.
            instance = dict(instance, path=os.path.join(self.daemon.dir, "locks") + instance["path"])
        if fds:
            # As a client would: the descriptors travel with the request, on a connection of their own so
            # that those of a refused request are not left waiting for the next one.
            conn = Connection(self.daemon.socket)
            with open(os.devnull, "rb") as null:
                reply = conn.call(method, instance, fds=[null.fileno()] * min(fds, 16))
            conn.close()
        else:
            reply = conn.call(method, instance)
        if method in ENDS_DAEMON and (reply is None or "result" in reply):
            self.conn.close()
            self.daemon.wait_exit()
            if reply is None and self.daemon.proc.returncode == 0:
                # The daemon stopped, so it took the params, but its answer was lost: a bug of the stop
                # (its loop ends before the answer is written), not of the params. Counted, not hidden.
                self.lost_stop_answers += 1
                reply = {"result": None}
            self.daemon.start()
            self.upgrades = 0
            self.conn = Connection(self.daemon.socket)
        if method == "daemon.upgrade" and reply is not None and "result" in reply:
            # The daemon execs itself in place and closes every connection: a new one, once the new image
            # answers (a connection the old one took just before its exec is closed unanswered).
            self.conn.close()
            self.conn = self.after_upgrade()
        if method == "lock.acquire" and reply is not None and "result" in reply:
            # Every probe starts with nothing held: a lock a probe kept would make a later one wait.
            conn.result("lock.release", {"path": reply["result"]["path"], "token": reply["result"]["token"]})
        if method in ("shm.create", "shm.list_create") and reply is not None and "result" in reply:
            conn.result("shm.unlink", {"name": reply["result"]["name"]})
        if method == "sem.acquire" and reply is not None and "result" in reply:
            conn.result("sem.release", {"name": reply["result"]["name"], "token": reply["result"]["token"]})
        if reply is None:
            raise AssertionError(f"{method} {json.dumps(brief(instance))}: the daemon closed the connection")
        error = reply.get("error")
        if error is None:
            return True
        if error["code"] == -32602:
            return "state" if self.state_dependent(method, instance, error["message"]) else False
        if error["code"] in (-32600, -32700, -32603):
            return f"{error['data']['error']}: {error['message']}"
        return True  # unknown_id, invalid_state...: the params were accepted

    def after_upgrade(self):
        deadline = time.monotonic() + 60
        while True:
            conn = Connection(self.daemon.socket)
            reply = conn.call("daemon.status")
            if reply is not None and reply.get("result", {}).get("upgrades", 0) > self.upgrades:
                self.upgrades = reply["result"]["upgrades"]
                return conn
            conn.close()
            if time.monotonic() > deadline:
                raise AssertionError("the daemon did not answer within 60 s of daemon.upgrade")
            time.sleep(0.01)

    def state_dependent(self, method, instance, message):
        """The invalid_params refusals that depend on more than the params, which PROTOCOL.md lists: cgroup
        where this host has none, a pipeline stage past the task's, an attempt past the task's retries, a
        lock path that names a directory, a warm pool's limits for a pool that is not warm, and a Slurm pool's settings for a pool that is not one (the
        descriptors stdin_fd needs are passed here)."""
        if not self.cgroups and has_cgroup(instance) and "containment is not available here" in message:
            return True
        if method.startswith("lock.") and re.match(r"params\.path: .* is a directory$", message):
            return True
        if method == "pool.set" and message.startswith("params.worker: max_tasks_per_worker and worker_idle_timeout"):
            return True  # the probe pool is not warm
        if method == "pool.set" and message.startswith("params.backend: partition, account and slurm_args are for"):
            return True  # the probe pool is not backed by Slurm
        if method == "pool.set" and message.startswith("params.backend: a warm pool's workers run here"):
            return True  # the probe pool is warm (an earlier probe's worker) or backed by Slurm
        if method == "shm.create" and message.startswith("params.size: must be from 1 to"):
            return True  # past this daemon's shm_max_size
        if method in ("shm.read", "shm.write") and re.search(r"pass(ed)? the end|past the end", message):
            return True  # the probe segment's size
        if method == "queue.put" and re.match(r"params\.values: \d+ values can never fit queue", message):
            return True  # the queue's maxsize, set by its first put
        if method in ("shm.list_get", "shm.list_set") and re.match(
                r"params\.(index: index -?\d+ out of range|value: a (str|bytes) of \d+ bytes does not fit)", message):
            return True  # the probe list's length and slots
        return method == "task.logs" and re.match(r"params\.(stage: task \d+ has \d+ stages? |attempt: task \d+ makes at most )",
                                                  message) is not None

    def test_the_daemon_refuses_exactly_the_params_the_schemas_refuse(self):
        docs = [load("task_spec.schema.json"), load("params.schema.json")]
        schema_methods = sorted(m for m in docs[1]["$defs"] if "." in m)
        self.assertEqual(schema_methods, sorted(self.conn.result("daemon.methods")["methods"]),
                         "every method has a params schema in params.schema.json, and only those")
        failures, counts = [], {"probes": 0, "sent": 0, "too long": 0, "large, not needed": 0, "depends on state": 0}
        base_table = bases(self.daemon.dir)
        for method in sorted(schema_methods, key=lambda m: (m in ENDS_DAEMON, m)):
            validator = schema_rules.validator_for(docs, f"{PARAMS}#/$defs/{method}")
            walk = schema_rules.Walk(docs, f"{PARAMS}#/$defs/{method}")
            failures += [f"{method}: the probes do not know {u}" for u in walk.unknown]
            seen = {}  # instance text -> (schema verdict, daemon verdict)
            coverage = {r.key(): {"rule": r, "kept": False, "broken": False, "kept_valid": False,
                                  "broken_invalid": False} for r in walk.rules if r.kind != "type" or r.loc}
            for base in base_table.get(method, [{}]):
                self.assertTrue(validator.is_valid(base), f"{method}: base {base} is not valid")
                for probe in Prober(walk, base).probes():
                    counts["probes"] += 1
                    c = coverage[probe.rule.key()]
                    text = json.dumps(probe.instance, sort_keys=True)
                    if text not in seen:
                        if len(text) > MAX_LINE:
                            counts["too long"] += 1
                            seen[text] = None
                            continue
                        if len(text) > LARGE and not needed(c, probe.held):
                            counts["large, not needed"] += 1
                            continue  # a batch of 100,000 takes seconds to validate: one of each side will do
                        expected = validator.is_valid(probe.instance)
                        got = self.verdict(method, probe.instance)
                        counts["sent"] += 1
                        if got == "state":
                            counts["depends on state"] += expected
                            got = expected  # refused for the state, or for the params as the schema says
                        seen[text] = (expected, got)
                        if got != expected:
                            why = next(iter(validator.iter_errors(probe.instance)), None)
                            failures.append(f"{method} {json.dumps(brief(probe.instance))}: schema says {'valid' if expected else 'invalid'}"
                                            f"{'' if why is None else ' (' + why.message[:120] + ')'}, daemon says "
                                            f"{got if isinstance(got, str) else 'valid' if got else 'invalid'}")
                    if seen[text] is None:
                        continue
                    valid = seen[text][0]
                    c["kept" if probe.held else "broken"] = True
                    c["kept_valid"] |= probe.held and valid
                    c["broken_invalid"] |= not probe.held and not valid
            for c in coverage.values():
                needs = ["kept", "broken"] + (["kept_valid", "broken_invalid"] if c["rule"].mandatory else [])
                missing = [n for n in needs if not c[n]]
                if missing:
                    failures.append(f"{method}: rule {c['rule']} not exercised: no probe {', '.join(missing)}")
        counts["daemon.stop answers lost"] = self.lost_stop_answers
        print(f"\n{counts}", file=sys.stderr)
        self.assertEqual(failures, [], f"{len(failures)} disagreement(s) or gap(s):\n" + "\n".join(failures[:60]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
