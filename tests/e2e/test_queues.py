#!/usr/bin/env python3
"""Queues and dicts (issue 18, the daemon as a multiprocessing.Manager) through the real `mpctl` against a real
`mpctld`, across processes: FIFO order between a producer and a consumer; a blocking get woken by a later put;
--nonblock (exit 5) and --timeout (exit 124); --maxsize back-pressure; `-` puts from stdin; durable queues
surviving a restart and memory ones not; a kill -9 of the daemon between puts and gets that loses and
duplicates nothing acknowledged (every item counted); dict round trips, compare-and-set races between 8
processes (exactly one winner per round), watches that see every change in version order; a deleted queue
waking its waiters with exit 4.

Every helper process runs in a session of its own and is killed with its whole group on cleanup, pass or
fail. Nothing sleeps a fixed time for correctness: a waiter is known to be parked by `queue info`'s getters
and putters counts, and every wait polls a condition against a generous deadline."""
import json, os, signal, sys, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import MPCTL, DaemonCase  # noqa: E402
from py_daemon import Connection  # noqa: E402

PYTHON = "/usr/bin/python3"
LONG = 120  # seconds: every wait that should end does so long before this

# A producer: puts ITEMS (JSON array of CLI words) into queue NAME in order, 1 to 5 of them (in turn) per
# `mpctl queue put`; stops at the first failure. argv: MPCTL NAME ITEMS_FILE
PRODUCER = r"""
import json, subprocess, sys
mpctl, name, items = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
i = puts = 0
while i < len(items):
    words = items[i:i + 1 + puts % 5]
    done = subprocess.run([mpctl, "queue", "put", name, *words], stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.exit(done.returncode)
    i += len(words)
    puts += 1
"""

# A consumer: `mpctl queue get NAME --count C` for each C of COUNTS (a JSON array), each printing its values
# one per line, which it passes through to its own stdout; stops at the first failure. argv: MPCTL NAME COUNTS
CONSUMER = r"""
import json, subprocess, sys
mpctl, name, counts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
for count in counts:
    done = subprocess.run([mpctl, "queue", "get", name, "--count", str(count), "--timeout", "120"],
                          stdout=subprocess.PIPE)
    if done.returncode != 0:
        sys.exit(done.returncode)
    sys.stdout.buffer.write(done.stdout)
    sys.stdout.flush()
"""


# What both kill -9 children do after a failed request: wait (up to 2 minutes) for a daemon to serve again.
SERVING = r"""
def serving():
    deadline = time.monotonic() + 120
    while subprocess.run([mpctl, "daemon", "status"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).returncode != 0:
        if time.monotonic() > deadline:
            sys.exit("no daemon came back")
        time.sleep(0.01)
"""


# The kill -9 producer: puts 0..N-1 into NAME, one `mpctl queue put` each, appending I to ACKED once its put
# exited 0. A put that failed (the daemon died under it, or was not there) is not retried, so that it cannot
# be doubled: it goes to FAILED with its exit code, and the producer waits for a daemon to serve again before
# the next item. DONE is created at the end. argv: MPCTL NAME N ACKED FAILED DONE
KILL_PRODUCER = r"""
import subprocess, sys, time
mpctl, name, n, acked, failed, done = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
""" + SERVING + r"""with open(acked, "a") as ok, open(failed, "a") as bad:
    for i in range(n):
        put = subprocess.run([mpctl, "queue", "put", name, str(i)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        if put.returncode == 0:
            ok.write(f"{i}\n")
            ok.flush()
        else:
            bad.write(f"{i} {put.returncode} {put.stderr.decode().strip()!r}\n")
            bad.flush()
            serving()
open(done, "w").close()
"""

# The kill -9 consumer: `mpctl queue get NAME --json` one value at a time, appending each value received to
# RECEIVED. A get that failed goes to FAILED with its exit code (it may have been in flight at the kill), and
# the consumer waits for a daemon to serve again. It ends when DONE exists and a get finds the queue empty.
# argv: MPCTL NAME RECEIVED FAILED DONE
KILL_CONSUMER = r"""
import json, os, subprocess, sys, time
mpctl, name, received, failed, done = sys.argv[1], sys.argv[2], *sys.argv[3:6]
""" + SERVING + r"""with open(received, "a") as got, open(failed, "a") as bad:
    while True:
        finished = os.path.exists(done)
        get = subprocess.run([mpctl, "queue", "get", name, "--json", "--timeout", "0.5"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        if get.returncode == 0:
            for value in json.loads(get.stdout)["values"]:
                got.write(json.dumps(value) + "\n")
            got.flush()
        elif get.returncode == 124:
            if finished:
                break
        else:
            bad.write(f"{get.returncode} {get.stderr.decode().strip()!r}\n")
            bad.flush()
            serving()
"""

# One of the cas racers: ROUNDS rounds, each: wait at barrier "Ra" for every racer, read the key (R), wait at
# "Rb" (so that every racer has read before anyone swaps), then `kv cas NAME KEY --expect R R+1`. Prints
# "ROUND R EXIT" per round. The barriers are files in BARRIERS (racer INDEX of PARTIES).
# argv: MPCTL NAME KEY INDEX PARTIES ROUNDS BARRIERS
CAS_RACER = r"""
import json, os, subprocess, sys, time
mpctl, name, key = sys.argv[1:4]
index, parties, rounds = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
barriers = sys.argv[7]
def barrier(tag):
    open(os.path.join(barriers, f"{tag}.{index}"), "w").close()
    deadline = time.monotonic() + 120
    while sum(1 for f in os.listdir(barriers) if f.startswith(tag + ".")) < parties:
        if time.monotonic() > deadline:
            sys.exit(f"barrier {tag} timed out")
        time.sleep(0.002)
for r in range(rounds):
    barrier(f"{r}a")
    got = subprocess.run([mpctl, "kv", "get", name, key, "--json"], stdout=subprocess.PIPE, check=True)
    value = json.loads(got.stdout)["value"]
    barrier(f"{r}b")
    cas = subprocess.run([mpctl, "kv", "cas", name, key, "--expect", json.dumps(value), json.dumps(value + 1)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(r, value, cas.returncode, flush=True)
"""


def json_lines(data):
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def cli_word(value):
    """How a value is written on mpctl's command line: a string as itself, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def printed(value):
    """How `mpctl queue get` prints a value (without --json): a string raw, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


class Queues(DaemonCase):
    # --- helpers -----------------------------------------------------------------------------------------

    def json_of(self, args, **kw):
        """`mpctl ARGS --json`, which must succeed: its one JSON object."""
        out = self.mpctl_ok(args + ["--json"], **kw)
        objects = json_lines(out)
        self.assertEqual(len(objects), 1, f"mpctl {' '.join(args)} --json printed {out!r}")
        return objects[0]

    def info(self, name):
        """`mpctl queue info NAME --json`, or None if the queue is unknown (exit 4)."""
        done = self.mpctl(["queue", "info", name, "--json"])
        if done.returncode == 4:
            return None
        self.assertEqual(done.returncode, 0, f"queue info {name}: {done.stderr.decode()}")
        return json.loads(done.stdout)

    def wait_parked(self, name, getters=0, putters=0, alive=()):
        """Until queue NAME has GETTERS waiting gets and PUTTERS waiting puts."""
        def parked():
            q = self.info(name)
            return q is not None and (q["getters"], q["putters"]) == (getters, putters)
        self.wait_for(parked, f"{getters} gets and {putters} puts to wait on queue {name}", LONG, alive)

    def put(self, name, *values, options=()):
        """`mpctl queue put NAME VALUE... OPTIONS`, which must succeed."""
        self.mpctl_ok(["queue", "put", name, *map(cli_word, values), *options])

    def get(self, name, count=1, options=("--nonblock",)):
        """`mpctl queue get NAME --count COUNT --json OPTIONS`, which must succeed: the result object."""
        got = self.json_of(["queue", "get", name, "--count", str(count), *options])
        self.assertEqual(got["name"], name)
        self.assertEqual(len(got["values"]), count, got)
        return got

    def code(self, args, **kw):
        """`mpctl ARGS`: (exit code, stdout)."""
        done = self.mpctl(args, **kw)
        return done.returncode, done.stdout

    def finish(self, proc, seconds=LONG):
        proc.wait(seconds)
        out, err = self.said(proc)
        return proc.returncode, out, err

    def kill_daemon_and_restart(self):
        """kill -9 of the daemon (its pid as `mpctl daemon status --json` gives it), then a new one on the same
        state dir and socket."""
        pid = self.json_of(["daemon", "status"])["pid"]
        self.assertEqual(pid, self.daemon.proc.pid)
        os.kill(pid, signal.SIGKILL)
        self.daemon.wait_exit()
        self.assertEqual(self.daemon.proc.returncode, -signal.SIGKILL)
        self.daemon.start()

    def stop_daemon_and_restart(self):
        self.mpctl_ok(["daemon", "stop"])
        self.daemon.wait_exit()
        self.daemon.start()

    def kv_list(self, name):
        """`mpctl kv list NAME --json` (one entry a line, by key), with the dict's version from kv.list itself
        (which the CLI does not print): {"name", "version", "entries"}."""
        entries = json_lines(self.mpctl_ok(["kv", "list", name, "--json"]))
        conn = Connection(self.daemon.socket)
        try:
            listed = conn.result("kv.list", {"name": name})
        finally:
            conn.close()
        self.assertEqual(entries, listed["entries"], "mpctl kv list --json against kv.list")
        return listed

    def queue_names(self):
        """`mpctl queue list --json` (one queue a line): their names."""
        return [q["name"] for q in json_lines(self.mpctl_ok(["queue", "list", "--json"]))]

    # --- 1. FIFO across processes ---------------------------------------------------------------------------

    def test_a_thousand_values_put_by_one_process_come_out_of_another_in_order(self):
        # Puts of 1 to 5 values and gets of 1 to 7: about 580 mpctl processes, which under ASan (0.3 s each to
        # start) still end well within the deadlines, where one process per value took 300 s and more.
        values = [i if i % 3 == 0 else f"item {i}" if i % 3 == 1 else {"i": i, "s": [i, "x"]} for i in range(1000)]
        items = self.path("items.json")
        with open(items, "w") as f:
            json.dump([cli_word(v) for v in values], f)
        counts = []
        while sum(counts) < len(values):  # gets of 1 to 7 values, summing to exactly 1,000
            counts.append(min(1 + len(counts) % 7, len(values) - sum(counts)))
        # The consumer starts first, so that its gets wait for the producer's puts as often as not.
        consumer = self.spawn([PYTHON, "-c", CONSUMER, MPCTL, "fifo", json.dumps(counts)], "consumer")
        producer = self.spawn([PYTHON, "-c", PRODUCER, MPCTL, "fifo", items], "producer")
        code, _, err = self.finish(producer, 300)
        self.assertEqual(code, 0, f"producer: {err.decode()}")
        code, out, err = self.finish(consumer, 300)
        self.assertEqual(code, 0, f"consumer: {err.decode()}")
        self.assertEqual(out.decode().split("\n"), [printed(v) for v in values] + [""])
        q = self.info("fifo")
        self.assertEqual((q["name"], q["length"], q["getters"], q["putters"], q["durable"]), ("fifo", 0, 0, 0, True))

    def test_a_blocking_get_in_another_process_is_woken_by_a_later_put(self):
        waiter = self.spawn([MPCTL, "queue", "get", "wake", "--json", "--timeout", str(LONG)], "blocking get")
        self.wait_parked("wake", getters=1, alive=[waiter])
        # A name only waited on is listed: length 0, not durable.
        q = self.info("wake")
        self.assertEqual((q["length"], q["durable"]), (0, False), q)
        self.assertIn("wake", self.queue_names())
        self.put("wake", {"wake": [1, "up"]})
        code, out, err = self.finish(waiter)
        self.assertEqual(code, 0, err.decode())
        self.assertEqual(json.loads(out), {"name": "wake", "values": [{"wake": [1, "up"]}], "length": 0})
        q = self.info("wake")
        self.assertEqual((q["length"], q["getters"], q["durable"]), (0, 0, True), q)

    def test_gets_that_cannot_be_served_exit_5_with_nonblock_and_124_at_their_timeout(self):
        self.assertEqual(self.code(["queue", "get", "nowhere", "--nonblock"]), (5, b""))
        self.assertIsNone(self.info("nowhere"), "a nonblocking get made a queue")
        self.put("emptied", "only")
        self.assertEqual(self.get("emptied")["values"], ["only"])
        self.assertEqual(self.code(["queue", "get", "emptied", "--nonblock"]), (5, b""))
        # Fewer values than --count is as empty, and takes nothing.
        self.put("emptied", 1, 2)
        self.assertEqual(self.code(["queue", "get", "emptied", "--count", "3", "--nonblock"]), (5, b""))
        self.assertEqual(self.info("emptied")["length"], 2)

        started = time.monotonic()
        self.assertEqual(self.code(["queue", "get", "emptied", "--count", "3", "--timeout", "0.3"]), (124, b""))
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual(self.code(["queue", "get", "nowhere", "--timeout", "0.2"]), (124, b""))
        q = self.info("emptied")
        self.assertEqual((q["length"], q["getters"]), (2, 0), q)
        self.assertEqual(self.get("emptied", 2)["values"], [1, 2])

    # --- 2. --maxsize --------------------------------------------------------------------------------------

    def test_maxsize_makes_a_put_wait_until_a_get_makes_room_and_nonblock_puts_nothing(self):
        self.put("bounded", "a", "b", options=["--maxsize", "2"])
        q = self.info("bounded")
        self.assertEqual((q["length"], q["maxsize"]), (2, 2), q)
        self.assertEqual(self.code(["queue", "put", "bounded", "c", "--nonblock"])[0], 5)
        self.assertEqual(self.code(["queue", "put", "bounded", "c", "--timeout", "0.3"])[0], 124)
        self.assertEqual(self.info("bounded")["putters"], 0)
        # Another maxsize than the queue's is invalid_state (1); more values than maxsize, invalid_params (6).
        self.assertEqual(self.code(["queue", "put", "bounded", "c", "--maxsize", "5", "--nonblock"])[0], 1)
        self.assertEqual(self.code(["queue", "put", "bounded", "x", "y", "z", "--timeout", "5"])[0], 6)
        self.assertEqual(self.info("bounded")["length"], 2)

        putter = self.spawn([MPCTL, "queue", "put", "bounded", "c", "--timeout", str(LONG)], "blocking put")
        self.wait_parked("bounded", putters=1, alive=[putter])
        self.assertEqual(self.info("bounded")["length"], 2)
        # Full, and a put waits before it: a nonblocking put is refused and puts nothing.
        self.assertEqual(self.code(["queue", "put", "bounded", "d", "--nonblock"])[0], 5)
        self.assertEqual(self.get("bounded")["values"], ["a"])
        code, _, err = self.finish(putter)
        self.assertEqual(code, 0, err.decode())
        q = self.info("bounded")
        self.assertEqual((q["length"], q["putters"]), (2, 0), q)
        self.assertEqual(self.get("bounded", 2)["values"], ["b", "c"])
        self.assertEqual(self.code(["queue", "get", "bounded", "--nonblock"])[0], 5, "the refused put put something")

    # --- 3. values from stdin ------------------------------------------------------------------------------

    def test_put_dash_reads_one_value_per_line_from_stdin(self):
        def line(i):
            return [str(i), f"line {i} with  spaces", json.dumps({"i": i, "s": "x"}), f'"quoted {i}"',
                    json.dumps([i, "é", None, True, 1.5]), f"naïve {i} \t tab"][i % 6]
        lines = [line(i) for i in range(5000)]

        def value(text):
            try:
                return json.loads(text)
            except ValueError:
                return text
        self.mpctl_ok(["queue", "put", "stdin", "-"], input="".join(t + "\n" for t in lines).encode())
        q = self.info("stdin")
        self.assertEqual(q["length"], 5000, q)
        self.assertGreater(q["bytes"], 0)
        got = self.get("stdin", 5000)
        self.assertEqual(got["length"], 0)
        self.assertEqual(got["values"], [value(t) for t in lines])

    # --- 4. memory and durable queues across a restart ----------------------------------------------------

    def test_a_durable_queue_survives_a_restart_and_a_memory_queue_does_not(self):
        self.put("mem", "m1", {"m": 2}, options=["--memory"])
        self.put("mem", "m3")  # no flag on a later put: the queue's own kind
        self.put("dur", "d1", {"d": 2})
        self.put("dur", "d3", options=["--nonblock"])
        self.assertEqual(self.code(["queue", "put", "dur", "x", "--memory"])[0], 1, "durable queue put --memory")
        self.assertEqual(self.code(["queue", "put", "mem", "x", "--maxsize", "9"])[0], 1, "maxsize on a later put")
        self.assertEqual((self.info("mem")["durable"], self.info("dur")["durable"]), (False, True))
        self.assertEqual(self.queue_names(), ["dur", "mem"])

        self.stop_daemon_and_restart()
        self.assertIsNone(self.info("mem"), "a memory queue outlived its daemon")
        self.assertEqual(self.code(["queue", "get", "mem", "--nonblock"])[0], 5)
        q = self.info("dur")
        self.assertEqual((q["length"], q["durable"]), (3, True), q)
        self.assertEqual(self.get("dur", 3)["values"], ["d1", {"d": 2}, "d3"])

    # --- 5. kill -9 of the daemon -------------------------------------------------------------------------

    def test_a_kill_9_between_puts_and_gets_loses_and_duplicates_nothing_acknowledged(self):
        # 600 puts, one process each, and as many gets: enough to kill the daemon amid both, few enough for
        # an ASan build, whose mpctl takes 0.3 s to start (1,500 of each took it past every deadline).
        n = 600
        acked, put_failed = self.path("acked"), self.path("put-failed")
        received, get_failed = self.path("received"), self.path("get-failed")
        done = self.path("producer-done")
        for f in (acked, put_failed, received, get_failed):
            open(f, "w").close()

        def lines(path):
            with open(path) as f:
                return f.read().splitlines()
        producer = self.spawn([PYTHON, "-c", KILL_PRODUCER, MPCTL, "crash", str(n), acked, put_failed, done],
                              "producer")
        # The consumer starts a hundred values behind, so that the kill finds values queued and its get
        # taking one rather than parked on an empty queue.
        self.wait_for(lambda: len(lines(acked)) >= n // 5, "the first puts", 300, [producer])
        consumer = self.spawn([PYTHON, "-c", KILL_CONSUMER, MPCTL, "crash", received, get_failed, done],
                              "consumer")
        self.wait_for(lambda: len(lines(acked)) >= n // 2 and len(lines(received)) >= 50,
                      "half of the puts and some gets", 300, [producer, consumer])
        acked_at_kill, received_at_kill = len(lines(acked)), len(lines(received))  # at least
        self.kill_daemon_and_restart()
        code, _, err = self.finish(producer, 600)
        self.assertEqual(code, 0, f"producer: {err.decode()}")
        code, _, err = self.finish(consumer, 600)
        self.assertEqual(code, 0, f"consumer: {err.decode()}")

        left = self.info("crash")["length"]
        drained = self.get("crash", left)["values"] if left else []
        self.assertEqual(self.code(["queue", "get", "crash", "--nonblock"])[0], 5)
        got = [json.loads(v) for v in lines(received)]
        acked_items = [int(i) for i in lines(acked)]
        failed_puts, failed_gets = lines(put_failed), lines(get_failed)
        report = (f"{len(acked_items)} puts acknowledged ({acked_at_kill} before the kill, when {received_at_kill} "
                  f"values were received), failed puts "
                  f"{failed_puts}, {len(got)} values received, failed gets {failed_gets}, {len(drained)} drained")
        print(f"\n  kill -9: {report}", file=sys.stderr)
        self.assertLess(acked_at_kill, len(acked_items), "no put was acknowledged after the restart: " + report)
        everything = got + drained
        self.assertTrue(all(isinstance(v, int) and 0 <= v < n for v in everything), report)
        # One producer put them in order: FIFO, and nothing twice.
        self.assertEqual(everything, sorted(set(everything)), "duplicated or out of order: " + report)
        # A get that could have been in flight at the kill: one that failed other than by finding no daemon
        # (exit 3). Each took at most one value.
        in_flight = [g for g in failed_gets if not g.startswith("3 ")]
        self.assertLessEqual(len(in_flight), 1, report)
        lost = sorted(set(acked_items) - set(everything))
        self.assertLessEqual(len(lost), len(in_flight), f"acknowledged puts lost: {lost}; " + report)

    def test_acknowledged_puts_and_gets_are_exactly_what_a_kill_9_leaves(self):
        for i in range(200):
            self.put("exact", i)
        self.put("exact", *range(200, 300))
        self.assertEqual(self.get("exact", 40)["values"], list(range(40)))
        for i in range(40, 50):
            self.assertEqual(self.get("exact")["values"], [i])
        self.put("volatile", "gone", options=["--memory"])
        self.kill_daemon_and_restart()

        q = self.info("exact")
        self.assertEqual((q["length"], q["durable"]), (250, True), q)
        got = self.get("exact", 250)
        self.assertEqual((got["values"], got["length"]), (list(range(50, 300)), 0))
        self.assertEqual(self.code(["queue", "get", "exact", "--nonblock"])[0], 5)
        self.assertIsNone(self.info("volatile"))

    # --- 6. delete -----------------------------------------------------------------------------------------

    def test_queue_delete_wakes_its_waiting_get_and_put_with_exit_4(self):
        self.put("del-get", "one")
        getter = self.spawn([MPCTL, "queue", "get", "del-get", "--count", "3", "--timeout", str(LONG)], "get of 3")
        self.put("del-put", "full", options=["--maxsize", "1"])
        putter = self.spawn([MPCTL, "queue", "put", "del-put", "more", "--timeout", str(LONG)], "put into full")
        self.wait_parked("del-get", getters=1, alive=[getter])
        self.wait_parked("del-put", putters=1, alive=[putter])

        self.assertEqual(self.json_of(["queue", "delete", "del-get"]), {"name": "del-get", "deleted": 1})
        self.assertEqual(self.finish(getter)[0], 4)
        self.assertEqual(self.json_of(["queue", "delete", "del-put"]), {"name": "del-put", "deleted": 1})
        self.assertEqual(self.finish(putter)[0], 4)
        self.assertIsNone(self.info("del-get"))
        self.assertEqual(self.code(["queue", "delete", "del-get"])[0], 4)
        self.assertEqual(self.code(["queue", "get", "del-put", "--nonblock"])[0], 5, "a deleted queue kept values")
        # The name can be used again, anew: no maxsize now.
        self.put("del-put", 1, 2, 3)
        self.assertEqual(self.info("del-put")["maxsize"], 0)

    # --- 7. dicts ------------------------------------------------------------------------------------------

    def test_kv_set_get_del_and_list_round_trip(self):
        self.assertEqual(self.code(["kv", "get", "d", "a"])[0], 4, "get in a dict that does not exist")
        self.assertEqual(self.kv_list("d"), {"name": "d", "version": 0, "entries": []})
        sets = [("a", 1), ("b", "hello world"), ("c", {"x": [1, 2.5, None]}), ("n", None), ("a", 2),
                ("key with spaces é", [True, False])]
        for version, (key, value) in enumerate(sets, 1):
            self.assertEqual(self.json_of(["kv", "set", "d", key, cli_word(value)]),
                             {"name": "d", "key": key, "version": version})
        self.assertEqual(self.json_of(["kv", "get", "d", "a"]), {"name": "d", "key": "a", "value": 2, "version": 5})
        self.assertEqual(self.json_of(["kv", "get", "d", "b"])["value"], "hello world")
        self.assertEqual(self.json_of(["kv", "get", "d", "n"]), {"name": "d", "key": "n", "value": None, "version": 4})
        self.assertEqual(self.kv_list("d"), {"name": "d", "version": 6, "entries": [
            {"key": "a", "value": 2, "version": 5}, {"key": "b", "value": "hello world", "version": 2},
            {"key": "c", "value": {"x": [1, 2.5, None]}, "version": 3},
            {"key": "key with spaces é", "value": [True, False], "version": 6},
            {"key": "n", "value": None, "version": 4}]})

        self.assertEqual(self.json_of(["kv", "del", "d", "b"]), {"name": "d", "key": "b", "version": 7})
        self.assertEqual(self.code(["kv", "get", "d", "b"])[0], 4)
        self.assertEqual(self.code(["kv", "del", "d", "b"])[0], 4)
        self.assertEqual(self.code(["kv", "del", "nodict", "b"])[0], 4)
        listed = self.kv_list("d")
        self.assertEqual((listed["version"], [e["key"] for e in listed["entries"]]),
                         (7, ["a", "c", "key with spaces é", "n"]))
        # Another dict is another thing, with versions of its own.
        self.assertEqual(self.json_of(["kv", "set", "e", "a", "x"])["version"], 1)
        self.assertEqual(self.json_of(["kv", "get", "d", "a"])["value"], 2)

    def test_kv_cas_swaps_only_what_it_expects(self):
        self.assertEqual(self.json_of(["kv", "cas", "c", "k", "--absent", "1"])["version"], 1)
        self.assertEqual(self.code(["kv", "cas", "c", "k", "--absent", "2"])[0], 5)
        self.assertEqual(self.code(["kv", "cas", "c", "k", "--expect", "7", "8"])[0], 5)
        self.assertEqual(self.json_of(["kv", "get", "c", "k"])["value"], 1, "a refused cas changed the value")
        # Values compare as JSON values: 1 equals 1.0, members in any order.
        self.assertEqual(self.json_of(["kv", "cas", "c", "k", "--expect", "1.0", '{"a":1,"b":2}'])["version"], 2)
        self.assertEqual(self.json_of(["kv", "cas", "c", "k", "--expect", '{"b":2,"a":1}', "null"])["version"], 3)
        self.assertEqual(self.json_of(["kv", "cas", "c", "k", "--expect", "null", "--delete"])["version"], 4)
        self.assertEqual(self.code(["kv", "get", "c", "k"])[0], 4)
        self.assertEqual(self.code(["kv", "cas", "c", "k", "--expect", "null", "--delete"])[0], 5)

    def test_kv_cas_races_between_8_processes_have_exactly_one_winner_per_round(self):
        racers, rounds = 8, 20
        self.mpctl_ok(["kv", "set", "race", "k", "0"])
        barriers = self.path("barriers")
        os.mkdir(barriers)
        procs = [self.spawn([PYTHON, "-c", CAS_RACER, MPCTL, "race", "k", str(i), str(racers), str(rounds), barriers],
                            f"racer {i}") for i in range(racers)]
        results = []
        for proc in procs:
            code, out, err = self.finish(proc, 600)
            self.assertEqual(code, 0, f"{proc.what}: {err.decode()}")
            results.append([tuple(map(int, line.split())) for line in out.decode().splitlines()])
        for r in range(rounds):
            mine = [lines[r] for lines in results]
            self.assertEqual([read for _, read, _ in mine], [r] * racers, f"round {r}: what each racer read")
            self.assertEqual(sorted(code for _, _, code in mine), [0] + [5] * (racers - 1), f"round {r}: {mine}")
        self.assertEqual(self.json_of(["kv", "get", "race", "k"]),
                         {"name": "race", "key": "k", "value": rounds, "version": rounds + 1})

    def test_kv_watch_sees_every_change_in_version_order(self):
        # Long enough for the 200 changes below even where each mpctl takes 0.3 s to start (ASan); ended by
        # SIGTERM once they have seen the last one. The timeout's own exit (124) is seen by a third watch.
        watcher = self.spawn([MPCTL, "kv", "watch", "w", "--timeout", "600"], "kv watch w")
        keyed = self.spawn([MPCTL, "kv", "watch", "w", "k3", "--timeout", "600"], "kv watch w k3")

        def seen(proc):
            out = self.said(proc)[0]
            return json_lines(out[:out.rfind(b"\n") + 1])  # whole lines only
        # The watches are in place once each has seen a change: set k3 until both have.
        probes = [0]

        def both_watch():
            probes[0] += 1
            self.mpctl_ok(["kv", "set", "w", "k3", f"probe {probes[0]}"])
            return seen(watcher) and seen(keyed)
        self.wait_for(both_watch, "the watches to see a change", LONG, [watcher, keyed])
        start = self.json_of(["kv", "get", "w", "k3"])["version"]

        changes, present = [], set()
        for j in range(200):
            key = f"k{j % 10}"
            if j % 4 == 3 and key in present:
                version = self.json_of(["kv", "del", "w", key])["version"]
                changes.append({"name": "w", "key": key, "deleted": True, "version": version})
                present.discard(key)
            else:
                value = {"j": j} if j % 2 else f"value {j}"
                version = self.json_of(["kv", "set", "w", key, cli_word(value)])["version"]
                changes.append({"name": "w", "key": key, "value": value, "version": version})
                present.add(key)
        self.assertEqual([c["version"] for c in changes], list(range(start + 1, start + 201)))
        last = changes[-1]["version"]
        self.wait_for(lambda: any(c["version"] == last for c in seen(watcher)), "the watch to see the last change",
                      LONG, [watcher])
        last_k3 = [c for c in changes if c["key"] == "k3"][-1]["version"]
        self.wait_for(lambda: any(c["version"] == last_k3 for c in seen(keyed)), "the keyed watch to see k3's last",
                      LONG, [keyed])

        # Each watch printed every change since it started, in order; a watch ends with 124 at its timeout.
        for proc in (watcher, keyed):
            proc.terminate()
            self.finish(proc, LONG)
        code, out, err = self.finish(self.spawn([MPCTL, "kv", "watch", "w", "--timeout", "0.5"], "a short watch"))
        self.assertEqual((code, out), (124, b""), err.decode())
        everything = json_lines(self.said(watcher)[0])
        versions = [c["version"] for c in everything]
        self.assertEqual(versions, list(range(versions[0], last + 1)), "the watch skipped or reordered versions")
        self.assertTrue(all(c["key"] == "k3" and c["value"].startswith("probe ")
                            for c in everything if c["version"] <= start), everything)
        self.assertEqual([c for c in everything if c["version"] > start], changes)
        k3 = [c for c in json_lines(self.said(keyed)[0]) if c["version"] > start]
        self.assertEqual(k3, [c for c in changes if c["key"] == "k3"])

        # --current: every entry first, as changes; then the timeout.
        code, out = self.code(["kv", "watch", "w", "--current", "--timeout", "0.5"])
        self.assertEqual(code, 124)
        entries = self.kv_list("w")["entries"]
        self.assertEqual(sorted(json_lines(out), key=lambda c: c["key"]),
                         [{"name": "w", **e} for e in entries])


if __name__ == "__main__":
    unittest.main(verbosity=2)
