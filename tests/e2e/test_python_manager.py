#!/usr/bin/env python3
"""mpctl.Queue and mpctl.Dict (python/mpctl/manager.py), multiprocessing.Manager's Queue and dict on the daemon's
queue.* and kv.* methods: first how values are encoded (no daemon needed), then against a real daemon, across
real processes: FIFO order between a putting and a getting process, queue.Full and queue.Empty as
queue.Queue raises them, a maxsize holding a producer back, values of every kind coming back as they went,
the `mpctl queue` command line reading what Python put and the other way round, the mapping API, compare-and-set
races between eight processes with exactly one winner a round, and watches that see every change.

Every helper process runs in a session of its own and is killed with its whole group on cleanup, pass or
fail. Nothing sleeps a fixed time for correctness: waits poll a condition against a generous deadline (or block
in the daemon with one), and no test asserts how long anything took."""
import collections, collections.abc, fractions, json, math, os, pickle, queue, signal, sys, threading, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import DaemonCase  # noqa: E402

SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(SOURCE_DIR, "python")
sys.path.insert(0, PYTHON_DIR)
import mpctl  # noqa: E402
import mpctl.manager  # noqa: E402
from mpctl.manager import ABSENT, DecodeError, decode_value, encode_value  # noqa: E402

PYTHON = "/usr/bin/python3"
LONG = 60  # seconds: every wait that should end does so long before this


class Point:
    """A value only pickle can carry (its class importable as __main__.Point where this file is __main__)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)


class Int(int):
    """A subclass of a JSON type: JSON would bring back an int."""


# Values JSON holds exactly: they go as themselves.
JSON_VALUES = [None, True, False, 0, -1, 2 ** 63 - 1, -2 ** 63, 0.0, -0.0, 1.5, 1e300, 5e-324, "", "text",
               "ünïcödé ✓ 𝄞", "a\nb\t\"c\"\\", "nul \x00 inside", [], {}, [1, "two", [3.0, None]],
               {"a": {"b": [True, {"c": ""}]}}, {"z": 1, "a": 2},
               {"base64": "aGk=", "other": 1}, {"pickle": 1, "x": 2}, [{"base64": "aGk="}], list(range(100))]
# Values that are not JSON's: pickled (or bytes as base64), and back as they were.
OTHER_VALUES = [b"", b"bytes \x00\xff", (1, 2), (), {1, 2}, frozenset("ab"), bytearray(b"ba"), 2 ** 63, -2 ** 63 - 1,
                10 ** 40, complex(1, 2), fractions.Fraction(1, 3), {1: "int key"}, {"k": (1,)}, {"base64": "aGk="},
                {"pickle": "x"}, ["a", b"b"], "lone \udcff surrogate", Point(1, 2),
                [Point(3, 4), (5,)], {"deep": [[["x"]]], "t": (1,)}]


def same(a, b):
    """Equal and of the same types all the way down (1 == 1.0 == True is not enough here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def wire(value):
    """VALUE as it crosses the wire and comes back: through JSON text, as the daemon keeps it."""
    return json.loads(json.dumps(encode_value(value)))


# ---- 1. values, without a daemon ---------------------------------------------------------------------------

class Values(unittest.TestCase):
    def test_json_values_go_as_themselves_and_come_back_as_they_went(self):
        for value in JSON_VALUES:
            with self.subTest(value=value):
                self.assertTrue(same(encode_value(value), value), "a JSON value was wrapped")
                self.assertTrue(same(decode_value(wire(value)), value))

    def test_bytes_go_as_base64_and_other_values_pickled(self):
        self.assertEqual(encode_value(b"hi"), {"base64": "aGk="})
        self.assertEqual(encode_value(b""), {"base64": ""})
        for value in OTHER_VALUES:
            with self.subTest(value=value):
                encoded = encode_value(value)
                self.assertIsInstance(encoded, dict)
                self.assertEqual(len(encoded), 1)
                form = "base64" if type(value) is bytes else "pickle"
                self.assertIn(form, encoded)
                self.assertTrue(same(decode_value(wire(value)), value), decode_value(wire(value)))

    def test_what_json_would_change_is_pickled(self):
        nested = []
        for _ in range(80):
            nested = [nested]
        cyclic = [1]
        cyclic.append(cyclic)
        for value in (float("nan"), float("inf"), -float("inf"), Int(3), 2 ** 63, {2: 2}, {(1, 2): 3},
                      {"x": float("nan")}, nested, {"base64": "aGk="}, {"pickle": "gAR9lC4="}, "\ud800", "\udcc3\udca9",
                      {"\udcff": 1}):
            with self.subTest(value=repr(value)[:60]):
                self.assertEqual(list(encode_value(value)), ["pickle"])
        back = decode_value(wire(cyclic))
        self.assertIs(back[1], back)
        self.assertIs(type(decode_value(wire(Int(3)))), Int)
        self.assertTrue(math.isnan(decode_value(wire(float("nan")))))
        self.assertEqual(decode_value(wire(nested)), nested)
        # Up to 60 levels go as JSON, well inside the protocol's 64 for a whole request.
        deep = "x"
        for _ in range(60):
            deep = [deep]
        self.assertEqual(encode_value(deep), deep)
        self.assertEqual(list(encode_value([deep])), ["pickle"])

    def test_what_a_shell_puts_reads_as_json_with_bytes_as_base64(self):
        # `mpctl queue put q hello 42 '{"base64":"aGk="}'`: JSON if it is JSON, else a string.
        self.assertEqual(decode_value("hello"), "hello")
        self.assertEqual(decode_value({"base64": "aGk="}), b"hi")
        self.assertEqual(decode_value({"base64": 5}), {"base64": 5}, "not base64 text: a dict")
        self.assertEqual(decode_value({"base64": "aGk=", "n": 1}), {"base64": "aGk=", "n": 1})
        self.assertEqual(decode_value({"pickle": None}), {"pickle": None})
        self.assertEqual(decode_value([{"base64": "aGk="}]), [{"base64": "aGk="}], "only a whole value is bytes")

    def test_a_value_that_cannot_be_read_back_raises_decode_error_carrying_it(self):
        for bad in ({"base64": "not base64!"}, {"base64": "aGk"}, {"pickle": "aGk="},
                    {"pickle": "gASVIgAAAAAAAACMCG5vd2hlcmWUjAtOb1N1Y2hDbGFzc5STlCmBlC4="}):
            with self.subTest(bad=bad):
                with self.assertRaises(DecodeError) as caught:
                    decode_value(bad)
                self.assertIsInstance(caught.exception, ValueError)
                self.assertEqual(caught.exception.value, bad)
                self.assertEqual(caught.exception.values, [bad])

    def test_unpicklable_values_are_refused_before_anything_is_sent(self):
        with self.assertRaises((TypeError, pickle.PicklingError, AttributeError)):
            encode_value(threading.Lock())
        with self.assertRaises((TypeError, pickle.PicklingError, AttributeError)):
            encode_value(lambda: 1)


class Objects(unittest.TestCase):
    """What Queue and Dict check before they call a daemon (none runs here: nothing may connect)."""

    def setUp(self):
        self.nowhere = os.path.join("/nonexistent-mpctl-test", "d.sock")

    def test_the_package_names_are_the_manager_module_classes(self):
        self.assertIs(mpctl.Queue, mpctl.manager.Queue)
        self.assertIs(mpctl.Dict, mpctl.manager.Dict)
        self.assertIs(mpctl.Dict.ABSENT, ABSENT)
        self.assertTrue(issubclass(mpctl.Dict, collections.abc.MutableMapping))

    def test_queue_arguments(self):
        for name in ("", "a b", "x" * 65, "ü", None, 3):
            with self.assertRaises(ValueError):
                mpctl.Queue(name, socket=self.nowhere)
        with self.assertRaises(ValueError):
            mpctl.Queue("q", 10 ** 9 + 1, socket=self.nowhere)
        with self.assertRaises(TypeError):
            mpctl.Queue("q", 1.5, socket=self.nowhere)
        q = mpctl.Queue("q.1_-", -5, socket=self.nowhere)
        self.assertEqual(q.maxsize, 0, "a maxsize of 0 or less is unbounded, as queue.Queue's")
        bounded = mpctl.Queue("q", 2, memory=True, socket=self.nowhere)
        with self.assertRaises(ValueError):
            bounded.put_many([1, 2, 3])
        with self.assertRaises(ValueError):
            q.put_many(range(10001))
        q.put_many([])  # nothing to put: nothing asked
        for n in (0, 10001, True, 1.0):
            with self.assertRaises(ValueError):
                q.get_many(n)
        with self.assertRaises(ValueError):
            q.get(timeout=-1)
        with self.assertRaises(ValueError):
            q.put(1, timeout=-0.5)
        with self.assertRaises(NotImplementedError):
            q.task_done()
        with self.assertRaises(NotImplementedError):
            q.join()
        copy = pickle.loads(pickle.dumps(bounded))
        self.assertEqual((copy.name, copy.maxsize, copy.memory, copy._socket), ("q", 2, True, self.nowhere))

    def test_dict_keys_are_str(self):
        d = mpctl.Dict("d", socket=self.nowhere)
        for key in (1, None, b"k", ("k",), 1.5):
            with self.subTest(key=key):
                with self.assertRaises(TypeError):
                    d[key]
                with self.assertRaises(TypeError):
                    d[key] = 1
                with self.assertRaises(TypeError):
                    del d[key]
                with self.assertRaises(TypeError):
                    key in d
                with self.assertRaises(TypeError):
                    d.get(key)
                with self.assertRaises(TypeError):
                    d.compare_and_set(key, 1, 2)
        for key in ("", "x" * 4097, "a\x00b", "\udcff"):  # strs no dict can hold: never there, never set
            with self.subTest(key=key[:10]):
                with self.assertRaises(KeyError):
                    d[key]
                with self.assertRaises(KeyError):
                    del d[key]
                self.assertFalse(key in d)
                self.assertEqual(d.get(key, "default"), "default")
                self.assertEqual(d.pop(key, "default"), "default")
                with self.assertRaises(ValueError):
                    d[key] = 1
                with self.assertRaises(ValueError):
                    d.setdefault(key, 1)
        with self.assertRaises(ValueError):
            d.compare_and_set("k", ABSENT, ABSENT)
        for name in ("", "a/b", "x" * 65):
            with self.assertRaises(ValueError):
                mpctl.Dict(name, socket=self.nowhere)
        self.assertEqual(pickle.loads(pickle.dumps(d)).name, "d")
        self.assertIs(pickle.loads(pickle.dumps(ABSENT)), ABSENT)


# ---- 2. against a daemon -----------------------------------------------------------------------------------

# Puts COUNT items {"seq": i, "pid": PID} to queue NAME one at a time, once a get waits there (the daemon
# says so), so that the parent's first get is parked in the daemon when the first item comes.
PRODUCER = r"""
import os, sys, time, mpctl
name, count = sys.argv[1], int(sys.argv[2])
client = mpctl.Client()
deadline = time.monotonic() + 60
while True:
    try:
        if client.call("queue.info", {"name": name})["getters"] >= 1:
            break
    except mpctl.UnknownId:
        pass
    if time.monotonic() > deadline:
        sys.exit("no get waited at the queue")
    time.sleep(0.005)
q = mpctl.Queue(name)
for i in range(count):
    q.put({"seq": i, "pid": os.getpid()})
print("put", count)
"""

# Puts 0 .. COUNT-1 to queue NAME of MAXSIZE, blocking; after each put, writes how many went to PROGRESS.
BOUNDED_PRODUCER = r"""
import os, sys, mpctl
name, maxsize, count, progress = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
q = mpctl.Queue(name, maxsize)
for i in range(count):
    q.put(i, timeout=60)
    with open(progress + ".tmp", "w") as f:
        f.write(str(i + 1))
    os.rename(progress + ".tmp", progress)
"""

# Gets one item of queue NAME and prints it as JSON (its repr if JSON cannot say it).
GETTER = r"""
import json, sys, mpctl
item = mpctl.Queue(sys.argv[1]).get(timeout=float(sys.argv[2]))
print(json.dumps({"repr": repr(item), "type": type(item).__name__}))
"""

# Gets from queue NAME until SIGINT interrupts the wait, writes INTERRUPTED, and stays alive (its other
# connections with it) until GO appears.
INTERRUPTED_GETTER = r"""
import os, signal, sys, time, mpctl
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if this process was started ignoring it
name, interrupted, go = sys.argv[1:4]
q = mpctl.Queue(name)
q.qsize()  # the shared connection is made, and stays
try:
    q.get()  # no timeout of its own: only the interruption ends it
    sys.exit("the get returned")
except KeyboardInterrupt:
    open(interrupted, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.01)
"""

# Races for dict NAME: once GO exists, claims round-0 .. round-ROUNDS-1 with compare_and_set(.., ABSENT, pid),
# adds 1 to "counter" INCREMENTS times by compare-and-set, and setdefault("first", pid); writes what it
# won to OUT (renamed into place).
RACER = r"""
import json, os, sys, time, mpctl
name, rounds, increments, go, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
d = mpctl.Dict(name)
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
me = os.getpid()
first = d.setdefault("first", me)
won = [r for r in range(rounds) if d.compare_and_set("round-%d" % r, d.ABSENT, me)]
retries = 0
for _ in range(increments):
    while True:
        n = d["counter"]
        if d.compare_and_set("counter", n, n + 1):
            break
        retries += 1
with open(out + ".tmp", "w") as f:
    json.dump({"pid": me, "won": won, "first": first, "retries": retries}, f)
os.rename(out + ".tmp", out)
"""

# Makes changes to dict NAME: the OPS as JSON [[key, value] for a set, [key] for a delete].
CHANGER = r"""
import json, sys, mpctl
d = mpctl.Dict(sys.argv[1])
for op in json.loads(sys.argv[2]):
    if len(op) == 2:
        d[op[0]] = op[1]
    else:
        del d[op[0]]
"""


def cli_values(stdout):
    """What `mpctl --json queue get` printed, as a list of values, whichever of the plain shapes it takes:
    the method's result ({"name", "values", "length"}), a JSON array of the values, or one value a line. (The
    tests ask for one value at a time and none of them is an array.)"""
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    if len(lines) == 1 and isinstance(lines[0], dict) and "values" in lines[0] and "name" in lines[0]:
        return lines[0]["values"]
    if len(lines) == 1 and isinstance(lines[0], list):
        return lines[0]
    return lines


class PythonManager(DaemonCase):
    serial = 0

    def setUp(self):
        super().setUp()
        self.env["PYTHONPATH"] = PYTHON_DIR
        self.client = mpctl.Client(self.daemon.socket, autostart=False)
        self.addCleanup(self.client.close)

    # --- helpers -----------------------------------------------------------------------------------------

    def name(self, tag):
        PythonManager.serial += 1
        return f"{tag}-{os.getpid()}-{PythonManager.serial}"

    def queue(self, tag, maxsize=0, **kw):
        return mpctl.Queue(self.name(tag), maxsize, client=self.client, **kw)

    def dict(self, tag):
        return mpctl.Dict(self.name(tag), client=self.client)

    def python(self, script, *args, what):
        return self.spawn([PYTHON, "-c", script, *map(str, args)], what)

    def finish(self, proc, seconds=300):
        proc.wait(seconds)
        out, err = self.said(proc)
        self.assertEqual(proc.returncode, 0, f"{proc.what}: stdout {out!r}, stderr {err!r}")
        return out.decode()

    def info(self, name):
        try:
            return self.client.call("queue.info", {"name": name})
        except mpctl.UnknownId:
            return {"length": 0, "getters": 0, "putters": 0}

    @staticmethod
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    # --- queues ------------------------------------------------------------------------------------------

    def test_items_come_out_in_the_order_another_process_put_them_while_this_one_waits(self):
        q = self.queue("fifo")
        producer = self.python(PRODUCER, q.name, 300, what="producer")
        got = [q.get(timeout=LONG) for _ in range(300)]  # the first get waits in the daemon for the first put
        self.assertEqual([item["seq"] for item in got], list(range(300)))
        self.assertEqual({item["pid"] for item in got}, {producer.pid})
        self.assertEqual(self.finish(producer).strip(), "put 300")
        with self.assertRaises(queue.Empty):
            q.get_nowait()
        # A batch goes in whole and in order; get_many takes a run of them.
        q.put_many(range(10))
        self.assertEqual(q.get_many(4), [0, 1, 2, 3])
        self.assertEqual(q.get_many(6, timeout=LONG), [4, 5, 6, 7, 8, 9])

    def test_a_blocked_get_does_not_hold_up_other_calls_of_the_process(self):
        q = mpctl.Queue(self.name("parked"), socket=self.daemon.socket)  # the process's shared connection
        thread, box = self.in_thread(lambda: q.get(timeout=LONG))
        self.wait_for(lambda: self.info(q.name)["getters"] == 1, "the get to wait in the daemon")
        other = mpctl.Queue(self.name("other"), socket=self.daemon.socket)
        other.put("through")  # the shared connection answers while the get waits
        self.assertEqual((q.qsize(), other.qsize(), other.get(block=False)), (0, 1, "through"))
        q.put("woken")
        self.assertEqual(self.joined(thread, box), "woken")

    def test_full_and_empty_as_queue_queue_raises_them(self):
        q = self.queue("bounded", 2)
        self.assertEqual((q.qsize(), q.empty(), q.full()), (0, True, False))
        for attempt in (q.get_nowait, lambda: q.get(block=False), lambda: q.get(timeout=0),
                        lambda: q.get(timeout=0.2), lambda: q.get(False, 5), lambda: q.get_many(2, timeout=0.2)):
            with self.assertRaises(queue.Empty):
                attempt()
        q.put("a")
        q.put_nowait("b")
        self.assertEqual((q.qsize(), q.empty(), q.full()), (2, False, True))
        for attempt in (lambda: q.put_nowait("c"), lambda: q.put("c", block=False), lambda: q.put("c", timeout=0),
                        lambda: q.put("c", timeout=0.2), lambda: q.put("c", False, 5),
                        lambda: q.put_many(["c", "d"], timeout=0.2)):
            with self.assertRaises(queue.Full):
                attempt()
        with self.assertRaises(queue.Empty):
            q.get_many(3, block=False)  # two are there, three asked: none taken
        self.assertEqual(q.qsize(), 2)
        self.assertEqual([q.get(), q.get(timeout=1)], ["a", "b"])
        self.assertEqual((q.qsize(), q.empty(), q.full()), (0, True, False))

    def test_a_queue_keeps_its_maxsize_and_memory_and_says_so(self):
        q = self.queue("sized", 3)
        q.put(1)
        same_again = mpctl.Queue(q.name, 3, client=self.client)
        same_again.put(2)
        for other in (mpctl.Queue(q.name, 4, client=self.client), mpctl.Queue(q.name, client=self.client),
                      mpctl.Queue(q.name, 3, memory=True, client=self.client)):
            with self.subTest(other=other):
                with self.assertRaises(ValueError) as caught:
                    other.put(3)
                self.assertIn("maxsize=3", str(caught.exception))
        self.assertEqual(q.qsize(), 2)
        info = q.info()
        self.assertEqual((info["maxsize"], info["durable"]), (3, True))
        memory = self.queue("memory", memory=True)
        memory.put("m")
        self.assertEqual(memory.info()["durable"], False)
        self.assertIsNone(self.queue("never").info())

    def test_a_full_queue_holds_its_producer_back_until_items_are_taken(self):
        q = self.queue("backpressure", 3)
        progress = self.path("progress")
        producer = self.python(BOUNDED_PRODUCER, q.name, 3, 10, progress, what="bounded producer")
        self.wait_for(lambda: self.info(q.name)["putters"] == 1 and self.read(progress) == "3",
                      "the producer to fill the queue and wait", alive=[producer])
        self.assertEqual(self.info(q.name)["length"], 3)
        self.assertEqual(q.get(timeout=LONG), 0)
        self.wait_for(lambda: self.read(progress) == "4", "the fourth put to go in", alive=[producer])
        self.wait_for(lambda: self.info(q.name)["putters"] == 1, "the fifth put to wait", alive=[producer])
        self.assertEqual(self.info(q.name)["length"], 3)
        self.assertEqual([q.get(timeout=LONG) for _ in range(9)], list(range(1, 10)))
        self.finish(producer)
        self.assertEqual(self.read(progress), "10")
        # This process's own put waits as well, and goes in once there is room.
        q.put_many(["x", "y", "z"])
        thread, box = self.in_thread(lambda: q.put("w", timeout=LONG))
        self.wait_for(lambda: self.info(q.name)["putters"] == 1, "the put to wait for room")
        self.assertEqual(q.get(), "x")
        self.joined(thread, box)
        self.assertEqual(q.get_many(3), ["y", "z", "w"])

    def test_values_come_back_as_they_went_through_a_queue_and_another_process(self):
        q = self.queue("values")
        for value in JSON_VALUES + OTHER_VALUES:
            with self.subTest(value=value):
                q.put(value)
                self.assertTrue(same(q.get(block=False), value))
        q.put_many(JSON_VALUES + OTHER_VALUES)
        back = q.get_many(len(JSON_VALUES) + len(OTHER_VALUES))
        self.assertTrue(same(back, JSON_VALUES + OTHER_VALUES), back)
        # Another process reads them as this one put them (Point is __main__.Point only here: builtins there).
        for value in ([1, "x"], b"\x00\xff", (1, (2,)), {3, 4}, 2 ** 70, {"k": None}):
            with self.subTest(value=value):
                q.put(value)
                got = json.loads(self.finish(self.python(GETTER, q.name, LONG, what="getter")))
                self.assertEqual(got, {"repr": repr(value), "type": type(value).__name__})

    def test_a_value_that_cannot_be_read_back_is_not_lost(self):
        q = self.queue("undecodable")
        raw = {"pickle": "gASVIgAAAAAAAACMCG5vd2hlcmWUjAtOb1N1Y2hDbGFzc5STlCmBlC4="}  # nowhere.NoSuchClass()
        self.client.call("queue.put", {"name": q.name, "values": [1, raw, 3]})
        with self.assertRaises(DecodeError) as caught:
            q.get_many(3)
        self.assertEqual((caught.exception.value, caught.exception.values), (raw, [1, raw, 3]))
        self.assertEqual(q.qsize(), 0)

    def test_the_mpctl_command_line_reads_what_python_put_and_the_other_way_round(self):
        q = self.queue("shell")
        self.mpctl_ok(["queue", "put", q.name, "hello", "42", "2.5", "null", '{"k": [1, 2]}', '{"base64": "aGk="}',
                       "[not json"])
        self.assertEqual([q.get(timeout=LONG) for _ in range(7)],
                         ["hello", 42, 2.5, None, {"k": [1, 2]}, b"hi", "[not json"])
        for value, shell in (("text", "text"), (42, 42), (b"hi", {"base64": "aGk="}), ({"k": [1, 2]}, {"k": [1, 2]}),
                             (None, None)):
            with self.subTest(value=value):
                q.put(value)
                self.assertEqual(cli_values(self.mpctl_ok(["--json", "queue", "get", q.name])), [shell])
        q.put((1, 2))  # pickled: the shell sees the wrapper, which Python reads back
        pickled = cli_values(self.mpctl_ok(["--json", "queue", "get", q.name]))
        self.assertEqual(list(pickled[0]), ["pickle"])
        self.assertEqual(decode_value(pickled[0]), (1, 2))
        self.assertEqual(q.qsize(), 0)
        # A dict set by `mpctl kv set` reads the same way.
        d = self.dict("shell")
        self.mpctl_ok(["kv", "set", d.name, "word", "hello"])
        self.mpctl_ok(["kv", "set", d.name, "doc", '{"a": [1, null]}'])
        self.mpctl_ok(["kv", "set", d.name, "bytes", '{"base64": "aGk="}'])
        self.assertEqual(d.copy(), {"word": "hello", "doc": {"a": [1, None]}, "bytes": b"hi"})

    def test_delete_drops_the_items_and_wakes_waiting_gets(self):
        q = self.queue("deleted")
        self.assertEqual(q.delete(), 0)
        q.put_many([1, 2, 3])
        self.assertEqual(q.delete(), 3)
        self.assertEqual(q.qsize(), 0)
        q.put("one")
        thread, box = self.in_thread(lambda: q.get_many(2, timeout=LONG))  # one is there, two are asked for
        self.wait_for(lambda: self.info(q.name)["getters"] == 1, "the get to wait")
        self.assertEqual(q.delete(), 1)
        with self.assertRaises(mpctl.UnknownId):
            self.joined(thread, box)

    def test_a_get_waiting_in_a_killed_process_takes_nothing(self):
        q = self.queue("killed")
        getter = self.python(GETTER, q.name, LONG, what="getter to be killed")
        self.wait_for(lambda: self.info(q.name)["getters"] == 1, "the get to wait", alive=[getter])
        getter.kill()
        getter.wait(60)
        self.wait_for(lambda: self.info(q.name)["getters"] == 0, "the daemon to drop the get")
        q.put("kept")
        self.assertEqual(q.get(timeout=LONG), "kept")

    def test_an_interrupted_get_takes_nothing_while_its_process_lives_on(self):
        q = self.queue("interrupted")
        interrupted, go = self.path("interrupted"), self.path("interrupted.go")
        getter = self.python(INTERRUPTED_GETTER, q.name, interrupted, go, what="getter to be interrupted")
        self.wait_for(lambda: self.info(q.name)["getters"] == 1, "the get to wait", alive=[getter])
        getter.send_signal(signal.SIGINT)
        self.wait_for(lambda: os.path.exists(interrupted), "the get to be interrupted", alive=[getter])
        # Its connection is closed, so the daemon withdraws the get: nothing put later goes to it.
        self.wait_for(lambda: self.info(q.name)["getters"] == 0, "the daemon to drop the get", alive=[getter])
        q.put("kept")
        self.assertEqual(q.get(timeout=LONG), "kept")
        self.assertIsNone(getter.poll())
        open(go, "w").close()
        self.finish(getter)

    # --- dicts -------------------------------------------------------------------------------------------

    def test_a_dict_has_the_mapping_api(self):
        d = self.dict("mapping")
        self.assertEqual((len(d), list(d), d.items(), d.copy(), d.version()), (0, [], [], {}, 0))
        with self.assertRaises(KeyError):
            d["missing"]
        with self.assertRaises(KeyError):
            del d["missing"]
        with self.assertRaises(KeyError):
            d.pop("missing")
        with self.assertRaises(KeyError):
            d.popitem()
        with self.assertRaises(KeyError):
            d.version("missing")
        d["b"] = 2
        d["a"] = [1, "x"]
        d["c"] = (3, 4)
        d["n"] = None
        self.assertEqual(d["a"], [1, "x"])
        self.assertEqual(d["c"], (3, 4))
        self.assertIsNone(d["n"])
        self.assertTrue("n" in d)
        self.assertFalse("zz" in d)
        self.assertEqual(len(d), 4)
        self.assertEqual(sorted(d), ["a", "b", "c", "n"])
        self.assertEqual(sorted(d.keys()), ["a", "b", "c", "n"])
        self.assertEqual(dict(d.items()), {"a": [1, "x"], "b": 2, "c": (3, 4), "n": None})
        self.assertEqual(sorted(map(repr, d.values())), sorted(map(repr, [[1, "x"], 2, (3, 4), None])))
        self.assertEqual(d, {"a": [1, "x"], "b": 2, "c": (3, 4), "n": None})
        self.assertEqual(d.get("b"), 2)
        self.assertEqual(d.get("zz", "dflt"), "dflt")
        self.assertIsNone(d.get("zz"))
        self.assertEqual(d.setdefault("b", 99), 2)
        self.assertEqual(d.setdefault("s", b"new"), b"new")
        self.assertEqual(d["s"], b"new")
        self.assertEqual(d.pop("s"), b"new")
        self.assertEqual(d.pop("s", "gone"), "gone")
        del d["n"]
        self.assertNotIn("n", d)
        d.update({"u": 1}, v=2)
        self.assertEqual((d["u"], d["v"]), (1, 2))
        # Versions order a dict's changes: each set or delete takes the next one.
        before = d.version()
        d["u"] = 10
        self.assertEqual(d.version("u"), before + 1)
        del d["v"]
        self.assertEqual(d.version(), before + 2)
        key, value = d.popitem()
        self.assertEqual((key, value), ("a", [1, "x"]), "popitem takes the first key")
        self.assertNotIn("a", d)
        d.clear()
        self.assertEqual(len(d), 0)
        # Another object of the name, or another process, is the same dict.
        d["shared"] = {"deep": [1, 2]}
        self.assertEqual(mpctl.Dict(d.name, socket=self.daemon.socket)["shared"], {"deep": [1, 2]})
        self.assertEqual(pickle.loads(pickle.dumps(d))["shared"], {"deep": [1, 2]})
        self.finish(self.python(CHANGER, d.name, json.dumps([["from-child", [True]], ["shared"]]), what="changer"))
        self.assertEqual(d.copy(), {"from-child": [True]})
        for value in JSON_VALUES + OTHER_VALUES:
            with self.subTest(value=value):
                d["v"] = value
                self.assertTrue(same(d["v"], value))

    def test_compare_and_set(self):
        d = self.dict("cas")
        self.assertTrue(d.compare_and_set("k", ABSENT, 1))
        self.assertFalse(d.compare_and_set("k", ABSENT, 2))
        self.assertFalse(d.compare_and_set("k", 5, 2))
        self.assertTrue(d.compare_and_set("k", 1, (2, "two")))
        self.assertTrue(d.compare_and_set("k", (2, "two"), None))
        self.assertTrue(d.compare_and_set("k", None, b"b"))
        self.assertTrue(d.compare_and_set("k", b"b", {"x": [1.5]}))
        self.assertTrue(d.compare_and_set("k", {"x": [1.5]}, 7))
        self.assertTrue(d.compare_and_set("k", 7.0, 8), "JSON numbers compare as numbers")
        self.assertFalse(d.compare_and_set("k", 7, ABSENT))
        self.assertTrue(d.compare_and_set("k", 8, ABSENT))
        self.assertNotIn("k", d)
        self.assertFalse(d.compare_and_set("k", 8, ABSENT))
        self.assertFalse(d.compare_and_set("k", 8, 9))

    def test_compare_and_set_races_between_eight_processes_have_one_winner_a_round(self):
        d = self.dict("race")
        d["counter"] = 0
        rounds, increments = 50, 25
        go = self.path("go")
        outs = [self.path(f"racer-{i}") for i in range(8)]
        racers = [self.python(RACER, d.name, rounds, increments, go, outs[i], what=f"racer {i}") for i in range(8)]
        open(go, "w").close()
        for racer in racers:
            self.finish(racer)
        results = [json.loads(self.read(out)) for out in outs]
        pids = {r["pid"] for r in results}
        wins = collections.Counter(r for result in results for r in result["won"])
        self.assertEqual(sorted(wins), list(range(rounds)), "a round nobody won")
        self.assertEqual(set(wins.values()), {1}, f"rounds with several winners: {wins}")
        for result in results:
            for r in result["won"]:
                self.assertEqual(d[f"round-{r}"], result["pid"])
        self.assertEqual(d["counter"], 8 * increments, "an increment was lost")
        self.assertEqual(len({r["first"] for r in results}), 1, "setdefault gave two processes different values")
        self.assertIn(d["first"], pids)
        self.assertEqual(d["first"], results[0]["first"])

    def test_a_watch_sees_every_change_in_order(self):
        d = self.dict("watched")
        d["before"] = "not seen"
        ops = []
        for i in range(40):
            ops.append([f"k{i % 7}", {"i": i}])
            if i % 5 == 4:
                ops.append([f"k{i % 7}"])
        with d.watch(timeout=LONG) as changes:
            self.assertIsInstance(changes, mpctl.manager.Watch)
            changer = self.python(CHANGER, d.name, json.dumps(ops), what="changer")
            d["local"] = (1, 2)  # and this process's own, through the shared connection
            seen = [next(changes) for _ in range(len(ops) + 1)]
        self.finish(changer)
        versions = [c["version"] for c in seen]
        self.assertEqual(versions, list(range(versions[0], versions[0] + len(ops) + 1)), "a version missed or doubled")
        local = [c for c in seen if c["key"] == "local"]
        self.assertEqual([(c["value"], c["deleted"]) for c in local], [((1, 2), False)])
        remote = [[c["key"]] if c["deleted"] else [c["key"], c["value"]] for c in seen if c["key"] != "local"]
        self.assertEqual(remote, ops)
        self.assertTrue(all(c["name"] == d.name for c in seen))
        self.assertTrue(all(c["value"] is None for c in seen if c["deleted"]))
        self.assertEqual(versions[-1], d.version())

    def test_watch_one_key_current_entries_timeouts_and_close(self):
        d = self.dict("watch-options")
        d["a"], d["b"] = 1, b"two"
        with d.watch(current=True, timeout=LONG) as changes:
            first = [next(changes), next(changes)]
            self.assertEqual(sorted((c["key"], c["value"]) for c in first), [("a", 1), ("b", b"two")])
            d["c"] = 3
            self.assertEqual((next(changes)["key"], d.version("c")), ("c", d.version()))
        with d.watch("a", timeout=LONG) as changes:
            d["b"] = "other key"
            d["a"] = "this key"
            del d["a"]
            self.assertEqual([(c["key"], c["value"], c["deleted"]) for c in (next(changes), next(changes))],
                             [("a", "this key", False), ("a", None, True)])
        # A watch ends when its timeout runs out: the iteration stops.
        self.assertEqual(list(d.watch(timeout=0.2)), [])
        # A closed watch ends at once, and its connection is gone.
        changes = d.watch()
        changes.close()
        self.assertEqual(list(changes), [])
        dropped = d.watch()
        del dropped  # dropped: closed, and nothing else minds
        d["z"] = 1
        self.assertEqual(d["z"], 1)
        with self.assertRaises(ValueError):
            d.watch("")


if __name__ == "__main__":
    unittest.main(verbosity=2)
