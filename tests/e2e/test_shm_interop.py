#!/usr/bin/env python3
"""Shared memory (issue "shared memory", first slice) against Python's own
multiprocessing.shared_memory.SharedMemory, both ways: a segment `mpctl shm create` makes is attached by name
from /usr/bin/python3 with the size and mode asked; bytes go through it both ways; a segment Python made is
read by mpctl although it is not registered. A registered segment that Python's resource tracker unlinks is
forgotten by the daemon, its name free again. Leases: a segment goes when its owner dies (SIGKILL included),
when its --ttl ends, and when the daemon stops, unless made with --persist. `mpctl shm info` names the
processes that map a segment. Bad names and sizes are usage errors that create nothing.

Every segment a test makes has a name of its own (this process's pid and a counter) and is unlinked on
cleanup, pass or fail. Every helper process runs in a session of its own and is killed with its whole group
on cleanup. Nothing sleeps a fixed time: waits poll a condition against a generous deadline."""
import json, os, signal, stat, subprocess, sys, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import MPCTL, SHM_DIR, DaemonCase, lease_owner, shm_path, unlink_quietly  # noqa: E402
from py_daemon import until  # noqa: E402

PYTHON = "/usr/bin/python3"  # the system Python (3.11 on Debian 12), whose resource tracker is tested below

# SharedMemory in a Python of its own: `SHM_TOOL ACTION NAME [ARGS]`.
#   size                      attach, print shm.size
#   dump                      attach, write bytes(shm.buf) to stdout
#   fill OFFSET               attach, copy stdin into shm.buf at OFFSET
#   create SIZE               SharedMemory(create=True): a segment mpctl did not make; stdin copied in at 0
#   hold READY GO1 CLOSED GO2 attach, create READY, wait for GO1, close (unmap), create CLOSED, wait for GO2
#   attach-tracked            attach, print shm.size, exit WITHOUT unregistering: the tracker unlinks it
SHM_TOOL = r"""
import os, sys, time
from multiprocessing import resource_tracker, shared_memory
action, name, args = sys.argv[1], sys.argv[2], sys.argv[3:]

def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)

if action == "create":
    shm = shared_memory.SharedMemory(name=name, create=True, size=int(args[0]))
else:
    shm = shared_memory.SharedMemory(name=name)
if action != "attach-tracked":
    # CPython 3.8-3.12 registers every segment a process attaches to (not only those it creates) with the
    # process's resource tracker, which unlinks them all once the process exits, as "leaked". Unregistering
    # the segment right after attaching is the documented workaround (CPython issue bpo-38119 / gh-82300;
    # 3.13 adds SharedMemory(track=False) for it). Without it a segment the daemon made, or one this process
    # means to leave behind, would vanish shortly after this process exits.
    resource_tracker.unregister(shm._name, "shared_memory")

if action in ("size", "attach-tracked"):
    print(shm.size)
elif action == "dump":
    data = bytes(shm.buf)
    sys.stdout.buffer.write(data)
elif action in ("fill", "create"):
    offset = int(args[0]) if action == "fill" else 0
    data = sys.stdin.buffer.read()
    shm.buf[offset:offset + len(data)] = data
elif action == "hold":
    ready, go1, closed, go2 = args
    open(ready, "w").close()
    wait_for(go1)
    shm.close()
    open(closed, "w").close()
    wait_for(go2)
    sys.exit(0)
else:
    sys.exit("unknown action " + action)
shm.close()
"""

RFC3339_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"




class ShmInterop(DaemonCase):
    # --- helpers -----------------------------------------------------------------------------------------

    def create(self, name, *options):
        """`mpctl shm create NAME OPTIONS --json`: what it printed."""
        return json.loads(self.mpctl_ok(["shm", "create", name, *options, "--json"]))

    def listed(self, *options):
        """`mpctl shm list [OPTIONS] --json`: name -> entry."""
        out = self.mpctl_ok(["shm", "list", *options, "--json"]).decode()
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        by_name = {e["name"]: e for e in entries}
        self.assertEqual(len(by_name), len(entries), f"a name listed twice: {out}")
        return by_name

    def info(self, name):
        return json.loads(self.mpctl_ok(["shm", "info", name, "--json"]))

    def python(self, args, data=None):
        """SHM_TOOL ARGS in /usr/bin/python3, DATA on its stdin: its stdout."""
        done = subprocess.run([PYTHON, "-c", SHM_TOOL] + args, input=data or b"", capture_output=True,
                              timeout=300)
        self.assertEqual(done.returncode, 0, f"python SHM_TOOL {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout

    def mode_of(self, name):
        return stat.S_IMODE(os.stat(shm_path(name)).st_mode)

    def read_file(self, name):
        with open(shm_path(name), "rb") as f:
            return f.read()

    # --- 1. attach and size ---------------------------------------------------------------------------------

    def test_python_attaches_by_name_to_a_segment_mpctl_creates_with_the_size_and_mode_asked(self):
        name = self.segment("size")
        made = self.create(name, "--size", "4096")
        self.assertEqual(set(made), {"name", "path", "size", "mode", "created_at", "registered", "persist",
                                     "lease"}, made)
        self.assertRegex(made.pop("created_at"), RFC3339_MS)
        # Leased by default to mpctl's parent: this test process.
        self.assertEqual(made, {"name": name, "path": shm_path(name), "size": 4096, "mode": "0600",
                                "registered": True, "persist": False,
                                "lease": {"kind": "process", "pid": os.getpid()}})
        st = os.stat(shm_path(name))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual((st.st_size, stat.S_IMODE(st.st_mode)), (4096, 0o600))
        # CPython takes the size from fstat and does not round it on Linux.
        self.assertEqual(self.python(["size", name]), b"4096\n")

        # --mode 640, and a leading '/' (as Python's own names have) is dropped.
        other = self.segment("mode")
        made = self.create("/" + other, "--size", "4096", "--mode", "640")
        self.assertEqual((made["name"], made["path"], made["mode"], made["size"]),
                         (other, shm_path(other), "0640", 4096))
        self.assertEqual(self.mode_of(other), 0o640)
        self.assertEqual(self.python(["size", other]), b"4096\n")

        # Python attached (and unregistered) and is gone: both are still there, and listed.
        listed = self.listed()
        self.assertEqual((listed[name]["mode"], listed[name]["size"], listed[name]["registered"]), ("0600", 4096, True))
        self.assertEqual((listed[other]["mode"], listed[other]["size"]), ("0640", 4096))
        self.assertEqual(os.stat(shm_path(name)).st_size, 4096)

    # --- 2. data both ways ----------------------------------------------------------------------------------

    def test_bytes_go_both_ways_between_mpctl_and_python_and_an_unregistered_segment_is_readable(self):
        name = self.segment("data")
        size = 1024
        self.create(name, "--size", str(size))
        self.assertEqual(self.python(["dump", name]), bytes(size), "a new segment is not all zeros")

        # mpctl writes (from a pipe): every byte value, NUL bytes among them; Python reads them in shm.buf.
        payload = bytes(range(256)) + b"\0\0\0mid\0" + bytes(range(255, -1, -1))
        self.mpctl_ok(["shm", "write", name, "--offset", "100"], input=payload)
        expected = bytearray(size)
        expected[100:100 + len(payload)] = payload
        self.assertEqual(self.python(["dump", name]), bytes(expected))
        # And from a regular file (mpctl copies a file differently from a pipe).
        from_file, in_file = self.path("from-file.bin"), b"\0file\xff\0\n"
        with open(from_file, "wb") as f:
            f.write(in_file)
        with open(from_file, "rb") as f:
            self.mpctl_ok(["shm", "write", name, "--offset", "3"], stdin=f)
        expected[3:3 + len(in_file)] = in_file
        self.assertEqual(self.python(["dump", name]), bytes(expected))

        # Python writes every byte value; mpctl reads them back byte for byte, whole or a piece.
        pattern = bytes((i * 7 + 3) % 256 for i in range(size))
        self.assertEqual(len(set(pattern)), 256)
        self.python(["fill", name, "0"], pattern)
        self.assertEqual(self.mpctl_ok(["shm", "read", name]), pattern)
        self.assertEqual(self.mpctl_ok(["shm", "read", name, "--offset", "10", "--length", "300"]), pattern[10:310])
        self.assertEqual(self.mpctl_ok(["shm", "read", name, "--offset", "1000"]), pattern[1000:])
        self.assertEqual(self.mpctl_ok(["shm", "read", name, "--length", "5"]), pattern[:5])
        self.assertEqual(self.mpctl_ok(["shm", "read", name, "--offset", str(size)]), b"")
        self.python(["fill", name, "1020"], b"\0\1\2\0")
        pattern = pattern[:1020] + b"\0\1\2\0"
        self.assertEqual(self.mpctl_ok(["shm", "read", name, "--offset", "1018"]), pattern[1018:])

        # A write that does not fit writes nothing: exit 2 and a message, from a pipe or from a file.
        for offset, data in (("0", b"\xaa" * (size + 1)), ("1000", b"\xbb" * 25), (str(size), b"\xcc")):
            done = self.mpctl(["shm", "write", name, "--offset", offset], input=data)
            self.assertEqual(done.returncode, 2, f"{len(data)} bytes at {offset}: {done.stderr.decode()}")
            self.assertIn(b"fit", done.stderr)
            self.assertEqual(self.mpctl_ok(["shm", "read", name]), pattern, f"{len(data)} bytes at {offset}")
        too_long = self.path("too-long.bin")
        with open(too_long, "wb") as f:
            f.write(b"\xdd" * 30)
        with open(too_long, "rb") as f:
            done = self.mpctl(["shm", "write", name, "--offset", "1000"], stdin=f)
        self.assertEqual(done.returncode, 2, done.stderr.decode())
        self.assertEqual(self.python(["dump", name]), pattern, "a write that does not fit changed the segment")

        # A segment Python makes (SharedMemory(create=True)) is not registered, yet mpctl reads it.
        mine = self.segment("python-made")
        made_by_python = b"\0python\0" + bytes(range(256))
        self.python(["create", mine, "333"], made_by_python)
        self.assertEqual(os.stat(shm_path(mine)).st_size, 333)
        self.assertEqual(self.mpctl_ok(["shm", "read", mine]), made_by_python + bytes(333 - len(made_by_python)))
        self.assertEqual(self.mpctl_ok(["shm", "read", mine, "--offset", "1", "--length", "6"]), b"python")
        self.assertNotIn(mine, self.listed())
        entry = self.listed("--all")[mine]
        self.assertEqual((entry["registered"], entry["size"], entry["path"]), (False, 333, shm_path(mine)))
        self.assertIs(self.listed("--all")[name]["registered"], True)
        # Its name is taken: mpctl does not create over it.
        taken = self.mpctl(["shm", "create", mine, "--size", "10"])
        self.assertEqual(taken.returncode, 1, taken.stderr.decode())
        self.assertIn(f"segment {mine} exists".encode(), taken.stderr)
        self.assertEqual(self.read_file(mine), made_by_python + bytes(333 - len(made_by_python)))
        # mpctl unlinks it although it did not make it.
        self.mpctl_ok(["shm", "unlink", mine])
        self.assertFalse(os.path.exists(shm_path(mine)))

    # --- 3. the resource tracker ----------------------------------------------------------------------------


    def test_a_large_write_from_a_pipe_lands_whole_or_not_at_all(self):
        # From a pipe mpctl keeps the input in pieces of growing size until it knows it fits: 9 MiB cross
        # every boundary between pieces, and one byte too many writes nothing.
        name = self.segment("pipe")
        size = 10 << 20
        self.create(name, "--size", str(size))
        payload = bytes((i * 131 + i // 4099) % 256 for i in range(9 << 20)) + b"tail"
        self.mpctl_ok(["shm", "write", name, "--offset", "7"], input=payload)
        with open(shm_path(name), "rb") as f:
            image = f.read()
        self.assertEqual(image[7:7 + len(payload)], payload)
        self.assertEqual(image[:7] + image[7 + len(payload):], bytes(size - len(payload)))
        done = self.mpctl(["shm", "write", name], input=b"\xee" * (size + 1))
        self.assertEqual(done.returncode, 2, done.stderr.decode())
        self.assertIn(b"fit", done.stderr)
        with open(shm_path(name), "rb") as f:
            self.assertEqual(f.read(), image, "a write that does not fit changed the segment")
    def test_a_segment_the_resource_tracker_unlinks_is_forgotten_and_its_name_free_again(self):
        name = self.segment("tracker")
        self.create(name, "--size", "4096")
        self.assertIn(name, self.listed())
        # Attached WITHOUT resource_tracker.unregister: once this Python exits its tracker unlinks the
        # segment, shortly after and on its own.
        attacher = self.spawn([PYTHON, "-c", SHM_TOOL, "attach-tracked", name], "python attaching, tracked")
        self.assertEqual(attacher.wait(120), 0, self.said(attacher))
        self.assertEqual(self.said(attacher)[0], b"4096\n")
        exited = time.monotonic()
        until(lambda: not os.path.exists(shm_path(name)), f"the resource tracker to unlink {name}", 60)
        print(f"\n  resource tracker: {name} unlinked {(time.monotonic() - exited) * 1000:.0f} ms after its "
              f"process exited", file=sys.stderr)

        self.assertNotIn(name, self.listed(), "a segment the tracker unlinked is still listed as live")
        self.assertNotIn(name, self.listed("--all"))
        self.assertEqual(self.mpctl(["shm", "info", name]).returncode, 4)
        # The name is free again: created anew, registered and listed with its new size.
        made = self.create(name, "--size", "128")
        self.assertEqual((made["name"], made["size"], made["registered"]), (name, 128, True))
        self.assertEqual(os.stat(shm_path(name)).st_size, 128)
        self.assertEqual(self.listed()[name]["size"], 128)
        self.assertEqual(self.python(["size", name]), b"128\n")

    # --- 4. leases ------------------------------------------------------------------------------------------

    def check_owner_death_unlinks(self, name, owner, grant_file):
        self.wait_for(lambda: os.path.exists(grant_file), f"the owner to create {name}", alive=[owner])
        with open(grant_file) as f:
            grant = json.load(f)
        self.assertEqual((grant["name"], grant["size"]), (name, 64))
        self.assertEqual(grant["lease"], {"kind": "process", "pid": owner.pid})
        self.assertTrue(os.path.exists(shm_path(name)))
        self.assertEqual(self.listed()[name]["lease"], {"kind": "process", "pid": owner.pid})
        self.check_death_unlinks(name, owner)

    def check_death_unlinks(self, name, owner):
        killed = time.monotonic()
        owner.kill()  # SIGKILL
        owner.wait(60)
        until(lambda: not os.path.exists(shm_path(name)), f"{name} to be unlinked after its owner was killed", 30)
        gone = time.monotonic() - killed
        print(f"\n  {owner.what}: segment unlinked {gone * 1000:.0f} ms after SIGKILL", file=sys.stderr)
        self.assertNotIn(name, self.listed())

    def test_a_segment_is_unlinked_when_its_owner_dies_or_its_ttl_ends(self):
        # The owner is the Python process that ran mpctl.
        name = self.segment("python-owner")
        grant = self.path("python-owner.grant")
        owner = self.spawn(lease_owner(PYTHON, grant, "shm", "create", name, "--size", "64", "--json"), "python owner")
        self.check_owner_death_unlinks(name, owner, grant)

        # The owner is the shell that ran mpctl.
        name = self.segment("sh-owner")
        grant = self.path("sh-owner.grant")
        script = f"""'{MPCTL}' shm create '{name}' --size 64 --json > '{grant}.tmp' || exit $?
mv '{grant}.tmp' '{grant}'
while :; do sleep 1; done"""
        owner = self.spawn(["sh", "-c", script], "sh owner")
        self.check_owner_death_unlinks(name, owner, grant)

        # --owner-pid: a process that did not run mpctl.
        name = self.segment("owner-pid")
        helper = self.spawn(["sleep", "600"], "--owner-pid helper")
        made = self.create(name, "--size", "64", "--owner-pid", str(helper.pid))
        self.assertEqual(made["lease"], {"kind": "process", "pid": helper.pid})
        self.assertTrue(os.path.exists(shm_path(name)))
        self.check_death_unlinks(name, helper)

        # --ttl 0.3: gone after its time, not before.
        name = self.segment("ttl")
        asked = time.monotonic()
        made = self.create(name, "--size", "64", "--ttl", "0.3")
        self.assertEqual(made["lease"]["kind"], "ttl", made)
        self.assertRegex(made["lease"]["expires_at"], RFC3339_MS)
        until(lambda: not os.path.exists(shm_path(name)), f"{name} to be unlinked after --ttl 0.3", 30)
        gone = time.monotonic() - asked
        print(f"\n  --ttl 0.3: segment unlinked {gone * 1000:.0f} ms after mpctl shm create started", file=sys.stderr)
        self.assertGreaterEqual(gone, 0.29, "a segment made with --ttl 0.3 went before its time")
        self.assertNotIn(name, self.listed())

    # --- 5. the daemon stops --------------------------------------------------------------------------------

    def check_stop_unlinks_leased_keeps_persistent(self, stop, how):
        leased, kept = self.segment("leased"), self.segment("persist")
        helper = self.spawn(["sleep", "600"], "lease owner")
        self.create(leased, "--size", "100", "--owner-pid", str(helper.pid))
        made = self.create(kept, "--size", "200", "--persist")
        self.assertEqual((made["persist"], made["lease"]), (True, None))
        self.python(["fill", kept, "0"], b"kept\0bytes")
        listed = self.listed()
        self.assertEqual((listed[leased]["persist"], listed[kept]["persist"]), (False, True))

        stop()
        self.daemon.wait_exit()
        self.assertIsNone(helper.poll(), "the lease owner died, so this test proves nothing")
        self.assertFalse(os.path.exists(shm_path(leased)), f"{how}: the leased segment is still there")
        self.assertTrue(os.path.exists(shm_path(kept)), f"{how}: the --persist segment is gone")
        self.assertEqual(os.stat(shm_path(kept)).st_size, 200)
        self.assertEqual(self.read_file(kept)[:10], b"kept\0bytes")

        # The test unlinks the persistent one itself, with a daemon started again.
        self.daemon.start()
        self.mpctl_ok(["shm", "unlink", kept])
        self.assertFalse(os.path.exists(shm_path(kept)))

    def test_stopping_the_daemon_unlinks_leased_segments_and_keeps_persistent_ones(self):
        def daemon_stop():
            done = self.mpctl(["daemon", "stop"])
            self.assertEqual(done.returncode, 0, done.stderr.decode())
        self.check_stop_unlinks_leased_keeps_persistent(daemon_stop, "mpctl daemon stop")
        self.check_stop_unlinks_leased_keeps_persistent(lambda: self.daemon.proc.send_signal(signal.SIGTERM),
                                                        "SIGTERM to mpctld")

    # --- 6. info --------------------------------------------------------------------------------------------

    def test_info_names_the_processes_that_map_a_segment(self):
        name = self.segment("info")
        self.create(name, "--size", "4096", "--mode", "640")
        info = self.info(name)
        self.assertEqual((info["name"], info["path"], info["size"], info["mode"], info["uid"], info["registered"]),
                         (name, shm_path(name), 4096, "0640", os.getuid(), True))
        self.assertEqual(info["lease"], {"kind": "process", "pid": os.getpid()})
        self.assertEqual(info["attached"], [])

        ready, go1, closed, go2 = (self.path(f"info.{s}") for s in ("ready", "go1", "closed", "go2"))
        self.addCleanup(lambda: [open(p, "a").close() for p in (go1, go2)])  # its loops end even if a kill missed
        holder = self.spawn([PYTHON, "-c", SHM_TOOL, "hold", name, ready, go1, closed, go2], "python mapping")
        self.wait_for(lambda: os.path.exists(ready), "python to map the segment", alive=[holder])
        self.assertIn(holder.pid, self.info(name)["attached"])
        self.assertNotIn(os.getpid(), self.info(name)["attached"])

        open(go1, "w").close()  # it closes the segment (unmaps it) and stays alive
        self.wait_for(lambda: os.path.exists(closed), "python to close the segment", alive=[holder])
        self.assertIsNone(holder.poll())
        self.assertNotIn(holder.pid, self.info(name)["attached"], "a process that closed the segment is listed")

        open(go2, "w").close()
        self.assertEqual(holder.wait(120), 0, self.said(holder))
        info = self.info(name)
        self.assertEqual(info["attached"], [])
        self.assertEqual(info["size"], 4096)  # unregistered by the holder: still there

    # --- 7. bad input ---------------------------------------------------------------------------------------

    def test_bad_names_and_sizes_are_usage_errors_that_create_nothing(self):
        stem = self.segment("bad")  # never created; what is tried below all starts with it
        self.addCleanup(lambda: [unlink_quietly(e) for e in os.listdir(SHM_DIR) if e.startswith(stem)])
        longest = (stem + "-" + "n" * 255)[:255]
        too_long = longest + "n"
        self.assertEqual((len(longest.encode()), len(too_long.encode())), (255, 256))

        def code(args):
            done = self.mpctl(args)
            self.assertTrue(done.stderr, f"mpctl {' '.join(args)} said nothing")
            return done.returncode

        for bad in (stem + "/x", stem + "x/", "/" + stem + "/x", "", "/", too_long, "/" + too_long):
            self.assertEqual(code(["shm", "create", bad, "--size", "64"]), 2, f"shm create {bad!r}")
            for sub in (["read", bad], ["info", bad], ["unlink", bad], ["write", bad]):
                self.assertEqual(code(["shm", *sub]), 2, f"shm {sub[0]} {bad!r}")
        self.assertEqual(code(["shm", "create", stem, "--size", "0"]), 2, "--size 0")
        self.assertEqual(code(["shm", "create", stem, "--size", "-1"]), 2, "--size -1")
        for sub in (["read", stem], ["info", stem], ["unlink", stem], ["write", stem]):
            self.assertEqual(code(["shm", *sub]), 4, f"shm {sub[0]} of a missing segment")
        self.assertEqual([e for e in os.listdir(SHM_DIR) if e.startswith(stem)], [],
                         "a refused create left something in /dev/shm")
        self.assertFalse(os.path.exists(shm_path(stem + "x")))
        self.assertNotIn(stem, self.listed("--all"))

        # 255 bytes is fine, a leading '/' not counted; a second create of it: exit 1, the first untouched.
        made = self.create(longest, "--size", "64")
        self.assertEqual(made["name"], longest)
        self.assertEqual(os.stat(shm_path(longest)).st_size, 64)
        again = self.mpctl(["shm", "create", "/" + longest, "--size", "128"])
        self.assertEqual(again.returncode, 1, again.stderr.decode())
        self.assertIn(f"segment {longest} exists".encode(), again.stderr)
        self.assertEqual(os.stat(shm_path(longest)).st_size, 64)
        self.mpctl_ok(["shm", "unlink", longest])
        self.assertFalse(os.path.exists(shm_path(longest)))
        self.assertEqual(code(["shm", "unlink", longest]), 4, "a second unlink")
        self.assertEqual([e for e in os.listdir(SHM_DIR) if e.startswith(stem)], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
