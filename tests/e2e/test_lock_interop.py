#!/usr/bin/env python3
"""Locks (issue "locks") against the tools people already lock files with: util-linux flock(1) and Debian's
python3-filelock, both ways. A lock mpctl takes is a real flock(2) that they see; one they hold keeps mpctl
out (exit 5), shows under "outside" in `mpctl lock list --json`, and a waiting mpctl gets it once they let go.
A lock leased to a process goes when that process dies, SIGKILL included; `mpctl lock run` holds the lock
while its command runs without handing the command a descriptor to the lock file.

Every helper process runs in a session of its own and is killed with its whole group on cleanup, pass or
fail. Nothing sleeps a fixed time: waits poll a condition against a generous deadline."""
import json, os, sys, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import MPCTL, DaemonCase, LockPeers, lease_owner  # noqa: E402
from py_daemon import until  # noqa: E402

PYTHON = "/usr/bin/python3"  # the system Python, whose filelock is Debian's python3-filelock

# Every descriptor of this process and where it points, as JSON.
LIST_FDS = r"""
import json, os
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass  # the descriptor listdir itself had open
print(json.dumps(fds))
"""



class LockInterop(LockPeers, DaemonCase):
    # --- helpers -----------------------------------------------------------------------------------------

    def listing(self, path):
        """`mpctl lock list PATH --json`: the one object for PATH (an empty one if PATH has no entry)."""
        out = self.mpctl_ok(["lock", "list", path, "--json"]).decode()
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        mine = [e for e in entries if e["path"] == path]
        self.assertLessEqual(len(mine), 1, out)
        return mine[0] if mine else {"path": path, "holders": [], "waiters": [], "outside": []}

    def finish(self, proc, seconds=120):
        """Wait for PROC to exit: its code, stdout and stderr."""
        proc.wait(seconds)
        out, err = self.said(proc)
        return proc.returncode, out, err

    # --- 1. mpctl holds, flock(1) and filelock see it -------------------------------------------------------

    def test_a_lock_mpctl_acquires_is_seen_by_flock_and_filelock_until_released(self):
        self.need_filelock()
        path = self.path("exclusive.lock")
        grant = json.loads(self.mpctl_ok(["lock", "acquire", path, "--json"]))
        self.assertEqual((grant["path"], grant["mode"]), (path, "exclusive"))
        self.assertEqual(grant["lease"], {"kind": "process", "pid": os.getpid()})  # mpctl's parent: this test
        self.assertEqual(self.flock_n(path), 1, "flock -n got a lock mpctl holds")
        self.assertEqual(self.flock_n(path, "-s"), 1, "flock -s -n got a lock mpctl holds exclusively")
        self.assertEqual(self.filelock_try(path), "timeout", "filelock got a lock mpctl holds")
        holders = self.listing(path)["holders"]
        self.assertEqual([(h["pid"], h["token"]) for h in holders], [(os.getpid(), grant["token"])])

        self.mpctl_ok(["lock", "release", path])
        self.assertEqual(self.flock_n(path), 0, "flock -n did not get the lock after mpctl lock release")
        self.assertEqual(self.filelock_try(path), "acquired", "filelock did not get the lock after release")
        self.assertEqual(self.listing(path)["holders"], [])
        # Released once; a second release names nothing held.
        self.assertEqual(self.mpctl(["lock", "release", path]).returncode, 4)

    def test_a_shared_lock_mpctl_acquires_admits_shared_flock_only(self):
        path = self.path("shared.lock")
        grant = json.loads(self.mpctl_ok(["lock", "acquire", "--shared", path, "--json"]))
        self.assertEqual(grant["mode"], "shared")
        self.assertEqual(self.flock_n(path, "-s"), 0, "flock -s -n was refused a lock mpctl holds shared")
        self.assertEqual(self.flock_n(path, "-x"), 1, "flock -x -n got a lock mpctl holds shared")
        self.assertEqual(self.filelock_try(path), "timeout", "filelock (exclusive) got a lock mpctl holds shared")
        self.mpctl_ok(["lock", "release", path])
        self.assertEqual(self.flock_n(path, "-x"), 0, "flock -x -n did not get the lock after release")

    # --- 2. they hold, mpctl waits --------------------------------------------------------------------------

    def check_held_outside_then_handed_over(self, path, holder, go):
        """HOLDER (pid) holds PATH with flock(2) until GO appears: mpctl is kept out and sees it outside, and a
        blocking acquire started meanwhile gets the lock once HOLDER lets go."""
        refused = self.mpctl(["lock", "acquire", "-n", path])
        self.assertEqual(refused.returncode, 5, f"lock acquire -n of a held lock: {refused.stderr.decode()}")
        timed_out = self.mpctl(["lock", "acquire", path, "--timeout", "0.2"])
        self.assertEqual(timed_out.returncode, 124, timed_out.stderr.decode())
        entry = self.listing(path)
        self.assertEqual(entry["holders"], [])
        self.assertIn({"pid": holder.pid, "kind": "FLOCK", "mode": "exclusive"}, entry["outside"], entry)

        waiter = self.spawn([MPCTL, "lock", "acquire", path, "--timeout", "60", "--json"], "blocking lock acquire")
        # The waiter's lease is its parent's: this test process.
        self.wait_for(lambda: [w["pid"] for w in self.listing(path)["waiters"]] == [os.getpid()],
                      "the blocking acquire to wait", alive=[waiter])
        self.assertEqual(self.flock_n(path), 1)  # still the outside holder's
        open(go, "w").close()
        self.assertEqual(holder.wait(120), 0, self.said(holder))
        code, out, err = self.finish(waiter)
        self.assertEqual(code, 0, err.decode())
        grant = json.loads(out)
        self.assertEqual((grant["path"], grant["mode"], grant["pid"]), (path, "exclusive", os.getpid()))
        self.assertEqual(self.flock_n(path), 1, "the lock handed to mpctl is not held")
        entry = self.listing(path)
        self.assertEqual(([h["token"] for h in entry["holders"]], entry["waiters"], entry["outside"]),
                         ([grant["token"]], [], []))
        self.mpctl_ok(["lock", "release", path])
        self.assertEqual(self.flock_n(path), 0)

    def test_a_lock_flock_holds_keeps_mpctl_out_shows_outside_and_passes_to_a_waiting_acquire(self):
        path = self.path("by-flock.lock")
        holder, go = self.hold_with_flock(path)
        self.check_held_outside_then_handed_over(path, holder, go)

    def test_a_lock_filelock_holds_keeps_mpctl_out_shows_outside_and_passes_to_a_waiting_acquire(self):
        path = self.path("by-filelock.lock")
        holder, go = self.hold_with_filelock(path)
        self.check_held_outside_then_handed_over(path, holder, go)

    # --- 3. the owner dies ----------------------------------------------------------------------------------

    def check_death_releases(self, path, owner, grant_file):
        self.wait_for(lambda: os.path.exists(grant_file), "the owner to hold " + path, alive=[owner])
        with open(grant_file) as f:
            grant = json.load(f)
        self.assertEqual(grant["lease"], {"kind": "process", "pid": owner.pid})
        self.assertEqual(self.flock_n(path), 1, "flock -n got a lock the owner holds")
        killed = time.monotonic()
        owner.kill()  # SIGKILL
        owner.wait(60)
        until(lambda: self.flock_n(path) == 0, f"{path} to be free after its owner was killed", 30)
        freed = time.monotonic() - killed
        print(f"\n  {owner.what}: lock free {freed * 1000:.0f} ms after SIGKILL", file=sys.stderr)
        until(lambda: self.listing(path)["holders"] == [], "lock list to show no holder", 30)

    def test_a_lock_is_released_when_its_python_owner_is_killed(self):
        path = self.path("python-owner.lock")
        grant = self.path("python-owner.grant")
        owner = self.spawn(lease_owner(PYTHON, grant, "lock", "acquire", path, "--json"), "python owner")
        self.check_death_releases(path, owner, grant)

    def test_a_lock_is_released_when_its_shell_owner_is_killed(self):
        path = self.path("shell-owner.lock")
        grant = self.path("shell-owner.grant")
        script = f"""'{MPCTL}' lock acquire '{path}' --json > '{grant}.tmp' || exit $?
mv '{grant}.tmp' '{grant}'
while :; do sleep 1; done"""
        owner = self.spawn(["sh", "-c", script], "sh owner")
        self.check_death_releases(path, owner, grant)

    # --- 4. lock run ----------------------------------------------------------------------------------------

    def test_lock_run_holds_the_lock_while_its_command_runs_and_exits_with_its_code(self):
        path = self.path("run.lock")
        inside = self.mpctl(["lock", "run", path, "--", "sh", "-c",
                             f"flock -n '{path}' true; echo $?; echo $MPCTL_LOCK_TOKEN; "
                             f"'{MPCTL}' lock list '{path}' --json"])
        self.assertEqual(inside.returncode, 0, inside.stderr.decode())
        lines = inside.stdout.decode().splitlines()
        self.assertEqual(lines[0], "1", "flock -n got the lock inside lock run")
        self.assertRegex(lines[1], r"^[1-9][0-9]*$", "MPCTL_LOCK_TOKEN is not a positive integer")
        listed = json.loads(lines[2])
        self.assertEqual([h["token"] for h in listed["holders"]], [int(lines[1])])
        self.assertEqual(listed["holders"][0]["mode"], "exclusive")
        self.assertEqual(self.flock_n(path), 0, "the lock is still held after lock run returned")

        self.assertEqual(self.mpctl(["lock", "run", path, "--", "sh", "-c", "exit 7"]).returncode, 7)
        self.assertEqual(self.flock_n(path), 0, "the lock is still held after lock run returned 7")
        shared = self.mpctl(["lock", "run", "--shared", path, "--", "sh", "-c",
                             f"flock -s -n '{path}' true; echo $?; flock -x -n '{path}' true; echo $?"])
        self.assertEqual((shared.returncode, shared.stdout), (0, b"0\n1\n"), shared.stderr.decode())

    def test_lock_run_gives_its_command_no_descriptor_to_the_lock_file(self):
        path = self.path("fds.lock")
        done = self.mpctl(["lock", "run", path, "--", PYTHON, "-c", LIST_FDS])
        self.assertEqual(done.returncode, 0, done.stderr.decode())
        fds = json.loads(done.stdout)
        self.assertTrue({"0", "1", "2"} <= set(fds), fds)
        real = os.path.realpath(path)
        lock_fds = {fd: target for fd, target in fds.items() if target in (path, real) or "fds.lock" in target}
        self.assertEqual(lock_fds, {}, f"the command inherited descriptors to the lock file: {fds}")
        # And with ls -l, as a shell user would look.
        ls = self.mpctl(["lock", "run", path, "--", "sh", "-c", "ls -l /proc/self/fd/"])
        self.assertEqual(ls.returncode, 0, ls.stderr.decode())
        self.assertNotIn(b"fds.lock", ls.stdout)
        # A run that is refused (held outside, --nonblock) runs nothing and says busy.
        holder, go = self.hold_with_flock(path)
        refused = self.mpctl(["lock", "run", "--nonblock", path, "--", "sh", "-c", "echo ran"])
        self.assertEqual((refused.returncode, refused.stdout), (5, b""), refused.stderr.decode())
        open(go, "w").close()
        self.assertEqual(holder.wait(120), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
