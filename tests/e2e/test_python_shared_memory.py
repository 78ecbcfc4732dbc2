#!/usr/bin/env python3
"""mpctl.shared_memory (SharedMemory, ShareableList: multiprocessing.shared_memory on the daemon's registry)
against a real daemon and /usr/bin/python3's own multiprocessing.shared_memory, across real processes: bytes
go both ways between the two classes; a segment made here is leased to its creator (unlinked by the daemon
once it is SIGKILLed) unless persist=True, and `mpctl shm list` shows it; a process that attaches with this
module and exits leaves the segment alone, where CPython 3.11's resource tracker unlinks it; a ShareableList
made here is CPython's, byte for byte for ASCII data, read and changed by CPython both ways; pickled objects
attach by name in another process; unlink() goes through the daemon; errors are CPython's.

Every segment a test makes has a name of its own (this process's pid and a counter) and is unlinked on
cleanup, pass or fail. Every helper process runs in a session of its own and is killed with its whole group
on cleanup. Nothing sleeps a fixed time for correctness: waits poll a condition against a generous deadline,
and no test asserts how long anything took."""
import errno, json, os, pickle, re, stat, struct, sys, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import DaemonCase, shm_path, unlink_quietly  # noqa: E402
from py_daemon import until  # noqa: E402

SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(SOURCE_DIR, "python")
sys.path.insert(0, PYTHON_DIR)
import mpctl  # noqa: E402
from mpctl import shared_memory as ours  # noqa: E402
from multiprocessing import shared_memory as cpython  # noqa: E402  (only ever failing to open, in this process)

PYTHON = "/usr/bin/python3"  # the system Python (3.11 on Debian 12): its shared_memory is the reference
LONG = 60  # seconds: every wait that should end does so long before this
INT64_MAX, INT64_MIN = 2**63 - 1, -2**63

# One helper for every process of these tests: `TOOL ACTION ARGS...`, the mpctl package on PYTHONPATH and the
# test's daemon in MPCTL_SOCKET. It says what it saw as one JSON line on stdout. HEX: bytes as hex.
#   ours-hold NAME|- SIZE leased|persist HEX GRANT   ours creates NAME (- : a random name), HEX at 0; writes
#                                                    {name, size, pid} to GRANT (renamed into place); waits
#   ours-dump NAME, cpython-dump NAME                attach with ours / CPython's class: {size, data, type}
#   ours-fill NAME OFFSET HEX, cpython-fill ...      attach, write HEX at OFFSET
#   cpython-create NAME SIZE HEX                     CPython creates NAME (not registered with the daemon)
#   cpython-attach-tracked NAME                      CPython attaches and exits WITHOUT unregistering
#   ours-list NAME CHANGES, cpython-list ...         attach a ShareableList, assign each (index, value) of the
#                                                    literal CHANGES: {values (repr), format}
#   cpython-list-make NAME VALUES                    CPython's ShareableList(VALUES, name=NAME), left behind
#   unpickle HEX [unlink]                            pickle.loads: says what it got, writes "child" in it
#                                                    (item 0 of a list), then unlink()s it if asked
# CPython's objects are unregistered from the resource tracker at once, except in cpython-attach-tracked:
# CPython 3.8-3.12 registers every segment a process creates OR attaches to, and its tracker unlinks them all
# when the process exits (bpo-38119 / gh-82300; 3.13 adds track=False). This module's objects never need it.
TOOL = r"""
import ast, json, os, pickle, signal, sys
from multiprocessing import resource_tracker, shared_memory as cpython
from mpctl import shared_memory as ours
action, args = sys.argv[1], sys.argv[2:]


def untracked(obj):
    shm = obj.shm if isinstance(obj, cpython.ShareableList) else obj
    resource_tracker.unregister(shm._name, "shared_memory")
    return obj


def say(**what):
    print(json.dumps(what), flush=True)


def kind(obj):
    return type(obj).__module__ + "." + type(obj).__qualname__


def shown(sl):
    return {"values": repr(list(sl)), "format": sl.format, "type": kind(sl), "shm": kind(sl.shm)}


if action == "ours-hold":
    name, size, lease, data, grant = args
    shm = ours.SharedMemory(None if name == "-" else name, create=True, size=int(size), persist=lease == "persist")
    data = bytes.fromhex(data)
    shm.buf[:len(data)] = data
    with open(grant + ".tmp", "w") as f:
        json.dump({"name": shm.name, "size": shm.size, "pid": os.getpid()}, f)
    os.rename(grant + ".tmp", grant)
    while True:
        signal.pause()
elif action in ("ours-dump", "cpython-dump"):
    shm = ours.SharedMemory(args[0]) if action == "ours-dump" else untracked(cpython.SharedMemory(args[0]))
    say(size=shm.size, data=bytes(shm.buf).hex(), type=kind(shm))
    shm.close()
elif action in ("ours-fill", "cpython-fill"):
    shm = ours.SharedMemory(args[0]) if action == "ours-fill" else untracked(cpython.SharedMemory(args[0]))
    data = bytes.fromhex(args[2])
    shm.buf[int(args[1]):int(args[1]) + len(data)] = data
    say(size=shm.size)
    shm.close()
elif action == "cpython-create":
    shm = untracked(cpython.SharedMemory(args[0], create=True, size=int(args[1])))
    data = bytes.fromhex(args[2])
    shm.buf[:len(data)] = data
    say(size=shm.size)
    shm.close()
elif action == "cpython-attach-tracked":
    shm = cpython.SharedMemory(args[0])
    say(size=shm.size)
    shm.close()
elif action in ("ours-list", "cpython-list"):
    if action == "ours-list":
        sl = ours.ShareableList(name=args[0])
    else:
        sl = untracked(cpython.ShareableList(name=args[0]))
    for index, value in ast.literal_eval(args[1]):
        sl[index] = value
    say(**shown(sl))
    sl.shm.close()
elif action == "cpython-list-make":
    sl = untracked(cpython.ShareableList(ast.literal_eval(args[1]), name=args[0]))
    say(size=sl.shm.size, format=sl.format)
    sl.shm.close()
elif action == "unpickle":
    obj = pickle.loads(bytes.fromhex(args[0]))
    if isinstance(obj, ours.ShareableList):
        seen = shown(obj)
        obj[0] = "child"
        shm = obj.shm
    else:
        seen = {"data": bytes(obj.buf[:16]).hex(), "type": kind(obj)}
        obj.buf[:5] = b"child"
        shm = obj
    say(name=shm.name, size=shm.size, socket=os.environ.get("MPCTL_SOCKET"), **seen)
    if args[1:] == ["unlink"]:
        shm.unlink()
    shm.close()
else:
    sys.exit("unknown action " + action)
"""


def group_members(pgid):
    """The live processes (zombies aside) of process group PGID, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                line = f.read()
        except OSError:
            continue  # it exited meanwhile
        fields = line[line.rindex(")") + 2:].split()  # after "PID (COMM) ": state, ppid, pgrp, ...
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


class PythonSharedMemory(DaemonCase):
    def setUp(self):
        super().setUp()
        self.env["PYTHONPATH"] = PYTHON_DIR
        self.socket = self.daemon.socket
        self.holders = 0

    # --- helpers -----------------------------------------------------------------------------------------

    def run_tool(self, *args, env=None):
        """TOOL ARGS in a helper of its own: what it said, once it and its whole process group (a resource
        tracker among them) are gone: whatever they were to unlink is unlinked by then."""
        saved, self.env = self.env, self.env if env is None else env  # what spawn() runs it with
        try:
            proc = self.spawn([PYTHON, "-c", TOOL, *args], f"TOOL {args[0]}")
        finally:
            self.env = saved
        self.assertEqual(proc.wait(LONG * 2), 0, f"TOOL {' '.join(args)}: {self.said(proc)}")
        until(lambda: not group_members(proc.pid), f"the processes of TOOL {args[0]} to end", LONG)
        out = self.said(proc)[0].decode().splitlines()
        return json.loads(out[-1]) if out else None

    def hold(self, name, size, lease="leased", data=b""):
        """A helper that creates NAME (- : a random one) with ours and keeps it: (the process, its grant)."""
        self.holders += 1
        grant = self.path(f"hold-{self.holders}.grant")
        proc = self.spawn([PYTHON, "-c", TOOL, "ours-hold", name, str(size), lease, data.hex(), grant],
                          f"ours-hold {name}")
        self.wait_for(lambda: os.path.exists(grant), f"the helper to create {name}", LONG, alive=[proc])
        with open(grant) as f:
            made = json.load(f)
        self.addCleanup(unlink_quietly, made["name"])
        return proc, made

    def kill(self, proc):
        """SIGKILL PROC and wait until its whole process group is gone."""
        proc.kill()
        proc.wait(LONG)
        until(lambda: not group_members(proc.pid), f"the processes of {proc.what} to end", LONG)

    def listed(self, *options):
        """`mpctl shm list [OPTIONS] --json`: name -> entry."""
        out = self.mpctl_ok(["shm", "list", *options, "--json"]).decode()
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {e["name"]: e for e in entries}

    def image(self, name):
        with open(shm_path(name), "rb") as f:
            return f.read()

    def gone(self, name):
        until(lambda: not os.path.exists(shm_path(name)), f"{name} to be unlinked", LONG)

    def attach(self, name):
        shm = ours.SharedMemory(name, socket=self.socket)
        self.addCleanup(shm.close)
        return shm

    def create(self, name, size, **kw):
        shm = ours.SharedMemory(name, create=True, size=size, socket=self.socket, **kw)
        self.addCleanup(shm.close)
        return shm

    # --- 1. bytes both ways -------------------------------------------------------------------------------

    def test_bytes_go_both_ways_between_ours_and_cpythons_in_other_processes(self):
        # Ours creates, in a process of its own; CPython's class attaches in another and reads, then writes.
        name = self.segment("ours-made")
        payload = bytes(range(256)) + b"\0mid\0"
        holder, made = self.hold(name, 1000, data=payload)
        self.assertEqual((made["name"], made["size"]), (name, 1000))
        st = os.stat(shm_path(name))
        self.assertEqual((st.st_size, stat.S_IMODE(st.st_mode)), (1000, 0o600))
        seen = self.run_tool("cpython-dump", name)
        self.assertEqual(seen["size"], 1000)  # as CPython reports the size: the file's, not rounded to pages
        self.assertEqual(bytes.fromhex(seen["data"]), payload + bytes(1000 - len(payload)))
        pattern = bytes((i * 7 + 3) % 256 for i in range(400))
        self.run_tool("cpython-fill", name, "600", pattern.hex())
        expected = payload + bytes(600 - len(payload)) + pattern
        self.assertEqual(self.image(name), expected)
        mine = self.attach(name)  # and ours attaches too, here and in another process
        self.assertEqual((mine.name, mine.size, bytes(mine.buf)), (name, 1000, expected))
        self.assertEqual(repr(mine), f"SharedMemory({name!r}, size=1000)")
        seen = self.run_tool("ours-dump", name)
        self.assertEqual((seen["size"], bytes.fromhex(seen["data"]), seen["type"]),
                         (1000, expected, "mpctl.shared_memory.SharedMemory"))
        self.assertIsNone(holder.poll(), "the creator died: the segment would be going")

        # CPython creates (a segment the daemon did not make); ours attaches here, reads it and writes.
        theirs = self.segment("cpython-made")
        self.run_tool("cpython-create", theirs, "333", b"\0python\0".hex())
        shm = self.attach(theirs)
        self.assertIsInstance(shm, cpython.SharedMemory)  # a subclass: a drop-in for isinstance too
        self.assertEqual((shm.name, shm.size, bytes(shm.buf)), (theirs, 333, b"\0python\0" + bytes(325)))
        shm.buf[300:333] = b"x" * 33
        seen = self.run_tool("cpython-dump", theirs)
        self.assertEqual(bytes.fromhex(seen["data"]), b"\0python\0" + bytes(292) + b"x" * 33)
        self.run_tool("ours-fill", theirs, "1", b"OURS".hex())
        self.assertEqual(bytes(shm.buf[:8]), b"\0OURSon\0")
        self.assertNotIn(theirs, self.listed(), "attaching registered a segment")

    # --- 2. leases ----------------------------------------------------------------------------------------

    def test_a_segment_goes_when_its_creator_is_killed_unless_it_persists_and_is_listed(self):
        for tag, name in (("named", self.segment("leased")), ("random", "-")):
            with self.subTest(tag):
                holder, made = self.hold(name, 64, data=b"leased")
                name = made["name"]
                if tag == "random":
                    self.assertRegex(name, r"^psm_[0-9a-f]{8}$")  # as CPython names them
                entry = self.listed()[name]
                self.assertEqual((entry["size"], entry["mode"], entry["registered"], entry["persist"]),
                                 (64, "0600", True, False))
                self.assertEqual(entry["lease"], {"kind": "process", "pid": holder.pid})
                self.assertEqual(self.image(name), b"leased" + bytes(58))
                self.kill(holder)
                self.gone(name)
                self.assertNotIn(name, self.listed())

        name = self.segment("persist")
        holder, made = self.hold(name, 64, lease="persist", data=b"kept")
        entry = self.listed()[name]
        self.assertEqual((entry["persist"], entry["lease"]), (True, None))
        self.kill(holder)
        self.assertEqual(self.image(name), b"kept" + bytes(60), "a persistent segment went with its creator")
        self.assertEqual(self.listed()[name]["persist"], True)
        self.attach(name).unlink()  # unlink() asks the daemon
        self.assertFalse(os.path.exists(shm_path(name)))
        self.assertNotIn(name, self.listed())

    # --- 3. the resource tracker --------------------------------------------------------------------------

    def test_attaching_with_ours_leaves_the_segment_where_cpythons_tracker_unlinks_it(self):
        name = self.segment("tracker")
        self.create(name, 4096)  # leased to this process, which lives on
        # run_tool returns once the helper and every process of its group (its resource tracker, had it one)
        # are gone: what they would unlink at exit is unlinked by then.
        self.assertEqual(self.run_tool("ours-dump", name)["size"], 4096)
        self.assertTrue(os.path.exists(shm_path(name)), "ours attached, exited, and the segment is gone")
        self.assertIn(name, self.listed())

        # CPython 3.11's class, attached the same way and exiting normally, has its tracker unlink it.
        self.assertEqual(self.run_tool("cpython-attach-tracked", name)["size"], 4096)
        self.gone(name)
        self.assertNotIn(name, self.listed(), "the daemon still lists what the tracker unlinked")

    # --- 4. ShareableList ---------------------------------------------------------------------------------

    def test_a_shareable_list_of_ours_is_cpythons_byte_for_byte_and_both_read_and_change_it(self):
        cases = {
            "mixed": [42, -1.5, True, None, "hello", "", b"\x00\x01", INT64_MAX, INT64_MIN, "abcdefgh"],
            "empty": [],
            "slot-edges": ["x" * 7, "x" * 8, "x" * 16, b"y" * 15],
            "floats-and-ints": [0.0, -0.0, 5e-324, 1e308, 0.1, 0, -1, 2**53 + 1],
            "bools-and-nones": [True, False, None, None],
        }
        for tag, values in cases.items():
            with self.subTest(tag):
                mine, theirs = self.segment("ours-" + tag), self.segment("cpython-" + tag)
                sl = ours.ShareableList(values, name=mine, socket=self.socket)
                self.addCleanup(sl.shm.close)
                made = self.run_tool("cpython-list-make", theirs, repr(values))
                self.assertEqual(self.image(mine).hex(" ", 8), self.image(theirs).hex(" ", 8),
                                 f"{tag}: {values!r} (left ours, right CPython's)")
                self.assertEqual((sl.shm.size, sl.format), (made["size"], made["format"]))
                self.assertEqual(repr(list(sl)), repr(values))

        # Made by ours (leased to this process, listed), read and changed by CPython in another process.
        name = self.segment("ours-list")
        values = [INT64_MAX, 1.5, True, None, b"\x00a\x00b", "replace-me", "abcdefgh", "日本語日本語日本", "ééééé"]
        sl = ours.ShareableList(values, name=name, socket=self.socket)
        self.addCleanup(sl.shm.close)
        self.assertEqual(self.listed()[name]["lease"], {"kind": "process", "pid": os.getpid()})
        seen = self.run_tool("cpython-list", name, "[]")
        self.assertEqual(seen["values"], repr(values), "CPython reads a list of ours")
        # A str's slot is sized by its UTF-8 bytes (24 and 10 here), where CPython's would be 16 and 8: too
        # small, and CPython's own list would cut them (gh-88336). CPython reads them whole.
        self.assertEqual(seen["format"], sl.format)
        self.assertTrue(seen["format"].endswith("8s16s16s32s16s"), seen["format"])
        changes = [(5, "short"), (0, 2.25), (3, "in None"), (-1, "ñ" * 8), (2, None), (4, 7)]
        seen = self.run_tool("cpython-list", name, repr(changes))
        for index, value in changes:
            values[index] = value
        self.assertEqual(seen["values"], repr(values))
        self.assertEqual((repr(list(sl)), sl.format), (seen["values"], seen["format"]), "ours sees CPython's changes")
        sl[1] = "by ours"
        sl[-2] = "日本" * 5
        values[1], values[-2] = "by ours", "日本" * 5
        with self.assertRaisesRegex(ValueError, "exceeds available storage"):  # CPython's __setitem__
            sl[6] = "x" * 17
        self.assertEqual(self.run_tool("cpython-list", name, "[]")["values"], repr(values))
        # A process attaching with ours and exiting leaves it (run_tool waits for its whole group).
        seen = self.run_tool("ours-list", name, "[(6, 'ours')]")
        values[6] = "ours"
        self.assertEqual((seen["values"], seen["type"], seen["shm"]),
                         (repr(values), "mpctl.shared_memory.ShareableList", "mpctl.shared_memory.SharedMemory"))
        self.assertEqual(repr(list(sl)), repr(values))
        self.assertIn(name, self.listed())

        # Made by CPython (not registered): ours attaches here, reads and changes it, CPython sees that.
        theirs = self.segment("cpython-list")
        values = ["hello", -7, 0.5, None, b"bytes\0", False]
        self.run_tool("cpython-list-make", theirs, repr(values))
        sl = ours.ShareableList(name=theirs, socket=self.socket)
        self.addCleanup(sl.shm.close)
        self.assertIsInstance(sl, cpython.ShareableList)
        self.assertEqual(repr(list(sl)), repr(["hello", -7, 0.5, None, b"bytes", False]))
        self.assertEqual((len(sl), sl.count(None), sl.index(0.5)), (6, 1, 2))
        sl[0], sl[3], sl[5] = "bye", 3, "str"
        seen = self.run_tool("cpython-list", theirs, "[]")
        self.assertEqual(seen["values"], repr(["bye", -7, 0.5, 3, b"bytes", "str"]))
        self.assertEqual(seen["format"], sl.format)

    # --- 5. pickling --------------------------------------------------------------------------------------

    def test_pickled_objects_attach_by_name_in_another_process(self):
        # SharedMemory, given its socket explicitly: pickled by name (not its megabyte), with the socket, so
        # that the other process unlinks through this test's daemon without MPCTL_SOCKET.
        name = self.segment("pickled")
        shm = self.create(name, 1 << 20)
        shm.buf[:16] = b"0123456789abcdef"
        blob = pickle.dumps(shm)
        self.assertLess(len(blob), 1000)
        self.assertIn(name.encode(), blob)
        env = {k: v for k, v in self.env.items() if k != "MPCTL_SOCKET"}
        seen = self.run_tool("unpickle", blob.hex(), "unlink", env=env)
        self.assertEqual((seen["type"], seen["name"], seen["size"], seen["data"], seen["socket"]),
                         ("mpctl.shared_memory.SharedMemory", name, 1 << 20, b"0123456789abcdef".hex(), None))
        self.assertEqual(bytes(shm.buf[:16]), b"child56789abcdef", "the child's write is not in the segment")
        self.assertFalse(os.path.exists(shm_path(name)), "the child's unlink() did not reach the daemon")
        self.assertNotIn(name, self.listed())

        # ShareableList, given a Client: the Client's socket goes along.
        name = self.segment("pickled-list")
        client = mpctl.Client(self.socket, autostart=False)
        self.addCleanup(client.close)
        sl = ours.ShareableList(["parent", 1, None], name=name, client=client)
        self.addCleanup(sl.shm.close)
        seen = self.run_tool("unpickle", pickle.dumps(sl).hex())
        self.assertEqual((seen["type"], seen["shm"], seen["name"], seen["values"]),
                         ("mpctl.shared_memory.ShareableList", "mpctl.shared_memory.SharedMemory", name,
                          "['parent', 1, None]"))
        self.assertEqual(list(sl), ["child", 1, None])
        self.assertIn(name, self.listed(), "the child attached, exited, and the list is gone")
        again = pickle.loads(pickle.dumps(sl))  # and here: another attachment, the same segment
        self.addCleanup(again.shm.close)
        self.assertEqual((type(again), again.shm.name, list(again)), (ours.ShareableList, name, ["child", 1, None]))

    # --- 6. unlink and errors -----------------------------------------------------------------------------

    def test_unlink_goes_through_the_daemon_and_errors_are_cpythons(self):
        name = self.segment("unlink")
        shm = self.create(name, 100, mode="640")
        self.assertEqual(stat.S_IMODE(os.stat(shm_path(name)).st_mode), 0o640)
        entry = self.listed()[name]
        self.assertEqual((entry["mode"], entry["lease"]), ("0640", {"kind": "process", "pid": os.getpid()}))
        shm.unlink()
        self.assertFalse(os.path.exists(shm_path(name)))
        self.assertNotIn(name, self.listed())
        shm.buf[:3] = b"yes"  # the mapping stays, as with CPython
        self.assertEqual(bytes(shm.buf[:3]), b"yes")
        with self.assertRaises(FileNotFoundError) as caught:
            shm.unlink()
        self.assertEqual((caught.exception.errno, caught.exception.filename), (errno.ENOENT, "/" + name))

        # Missing: FileNotFoundError as CPython's (which fails before registering anything: safe here).
        with self.assertRaises(FileNotFoundError) as expected:
            cpython.SharedMemory(name)
        with self.assertRaises(FileNotFoundError) as caught:
            ours.SharedMemory(name, socket=self.socket)
        self.assertEqual(str(caught.exception), str(expected.exception))

        # Existing: FileExistsError as CPython's, for a registered segment and for one CPython made; the
        # segment is untouched. unlink() of the one CPython made goes through the daemon too.
        registered = self.segment("registered")
        self.create(registered, 10)
        theirs = self.segment("theirs")
        self.run_tool("cpython-create", theirs, "20", b"theirs".hex())
        for taken, size in ((registered, 10), (theirs, 20)):
            with self.assertRaises(FileExistsError) as expected:
                cpython.SharedMemory(taken, create=True, size=30)
            with self.assertRaises(FileExistsError) as caught:
                ours.SharedMemory(taken, create=True, size=30, socket=self.socket)
            self.assertEqual(str(caught.exception), str(expected.exception))
            self.assertEqual(os.stat(shm_path(taken)).st_size, size)
            with self.assertRaises(FileExistsError):
                ours.ShareableList([1, 2], name=taken, socket=self.socket)
        self.assertEqual(self.image(theirs), b"theirs" + bytes(14))
        self.attach(theirs).unlink()
        self.assertFalse(os.path.exists(shm_path(theirs)))

        # A random name the daemon says exists is tried again with another.
        fresh = self.segment("fresh")
        names = iter([registered, theirs, fresh])
        real, ours._random_name = ours._random_name, lambda: next(names)
        self.addCleanup(setattr, ours, "_random_name", real)
        self.create(theirs, 5)  # taken again, by ours this time
        self.assertEqual(self.create(None, 8).name, fresh)
        self.assertEqual(self.listed()[fresh]["size"], 8)

        # CPython's ValueErrors; a list value CPython cannot store creates nothing.
        for args, kw in (((name, True, 0), {}), ((None, False, 10), {}), ((name, True, -1), {})):
            with self.assertRaises(ValueError) as expected:
                cpython.SharedMemory(*args, **kw)
            with self.assertRaises(ValueError) as caught:
                ours.SharedMemory(*args, socket=self.socket, **kw)
            self.assertEqual(str(caught.exception), str(expected.exception))
        bad = self.segment("bad-list")
        with self.assertRaises(struct.error):  # as CPython's: int64 only
            ours.ShareableList([1, 2**64], name=bad, socket=self.socket)
        with self.assertRaises(KeyError):  # as CPython's: a type it does not take
            ours.ShareableList([[1]], name=bad, socket=self.socket)
        self.assertFalse(os.path.exists(shm_path(bad)))
        self.assertNotIn(bad, self.listed("--all"))
        self.assertTrue(re.fullmatch(r"psm_[0-9a-f]{8}", real()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
