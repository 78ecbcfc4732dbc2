#!/usr/bin/env python3
"""mpctl.sync (mpctl.FileLock, Semaphore, BoundedSemaphore, Event, Barrier) against a real daemon, across real
processes: a FileLock is a flock(2) that util-linux flock(1) and Debian's python3-filelock see, both ways; it
counts re-entrant acquires as filelock does; its holder's death (SIGKILL) frees it. Semaphores, events and
barriers behave as threading's do, for separate Python processes.

Every helper process runs in a session of its own and is killed with its whole group on cleanup, pass or
fail. Nothing sleeps a fixed time for correctness: waits poll a condition against a generous deadline, and
no test asserts how long anything took."""
import gc, json, os, subprocess, sys, threading, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import DaemonCase, LockPeers  # noqa: E402

SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(SOURCE_DIR, "python")
sys.path.insert(0, PYTHON_DIR)
import mpctl  # noqa: E402
import mpctl.sync  # noqa: E402

PYTHON = "/usr/bin/python3"  # the system Python, whose filelock is Debian's python3-filelock
LONG = 60  # seconds: every wait that should end does so long before this

# Holds mpctl.FileLock(PATH) and writes its token to GRANT (renamed into place), then waits to be killed.
MPCTL_LOCK_HOLD = r"""
import os, signal, sys, mpctl
path, grant = sys.argv[1:3]
lock = mpctl.FileLock(path)
lock.acquire()
with open(grant + ".tmp", "w") as f:
    f.write(str(lock.token))
os.rename(grant + ".tmp", grant)
while True:
    signal.pause()
"""

# mpctl.FileLock(PATH).acquire(timeout=SECONDS): prints "acquired" (then lets go) or "timeout".
MPCTL_LOCK_TRY = r"""
import sys, mpctl, mpctl.sync
lock = mpctl.FileLock(sys.argv[1])
try:
    lock.acquire(timeout=float(sys.argv[2]))
except mpctl.sync.Timeout:
    print("timeout")
else:
    lock.release()
    print("acquired")
"""

# Takes a unit of Semaphore(LIMIT, name=NAME) within SECONDS, writes its tokens to GOT, gives it back when GO
# appears (or keeps it until killed if GO is "-"). Exit 3 when it timed out.
SEM_HOLD = r"""
import json, os, signal, sys, time, mpctl
name, limit, seconds, got, go = sys.argv[1:6]
sem = mpctl.Semaphore(int(limit), name=name)
if not sem.acquire(timeout=float(seconds)):
    print("timeout")
    sys.exit(3)
with open(got + ".tmp", "w") as f:
    json.dump(list(sem.tokens), f)
os.rename(got + ".tmp", got)
if go == "-":
    while True:
        signal.pause()
while not os.path.exists(go):
    time.sleep(0.01)
sem.release()
print("released")
"""

# Event(NAME).wait(SECONDS): prints what it returned.
EVENT_WAIT = r"""
import sys, mpctl
print(mpctl.Event(sys.argv[1]).wait(float(sys.argv[2])))
"""

# Barrier(PARTIES, action, name=NAME).wait(SECONDS): prints {"index": I} or {"broken": ...}; the action creates
# DIR/action-PID.
BARRIER_WAIT = r"""
import json, os, sys, threading, mpctl
name, parties, seconds, where = sys.argv[1:5]
def action():
    open(os.path.join(where, "action-%d" % os.getpid()), "w").close()
barrier = mpctl.Barrier(int(parties), action=action, name=name)
try:
    print(json.dumps({"index": barrier.wait(float(seconds))}))
except mpctl.BrokenBarrierError as error:
    print(json.dumps({"broken": barrier.broken, "threading": isinstance(error, threading.BrokenBarrierError)}))
"""


class PythonSync(LockPeers, DaemonCase):
    def setUp(self):
        super().setUp()
        self.env["PYTHONPATH"] = PYTHON_DIR
        self.client = mpctl.Client(self.daemon.socket, autostart=False)
        self.addCleanup(self.client.close)

    # --- helpers -----------------------------------------------------------------------------------------

    def python(self, script, *args, what):
        """SCRIPT in a Python process of its own (a separate lease), in the background."""
        return self.spawn([PYTHON, "-c", script, *map(str, args)], what)

    def run_python(self, script, *args):
        """SCRIPT in a Python process of its own, waited for: its stdout, stripped (it must exit 0)."""
        done = subprocess.run([PYTHON, "-c", script, *map(str, args)], env=self.env, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr.decode())
        return done.stdout.decode().strip()

    def finish(self, proc, seconds=300):
        """Wait for PROC to exit 0: its stdout."""
        proc.wait(seconds)
        out, err = self.said(proc)
        self.assertEqual(proc.returncode, 0, f"{proc.what}: stdout {out!r}, stderr {err!r}")
        return out.decode()

    def lock_entry(self, path):
        locks = self.client.call("lock.list", {"path": path})["locks"]
        return next((e for e in locks if e["path"] == path), {"holders": [], "waiters": [], "outside": []})

    def sem_entry(self, name):
        found = self.client.call("sem.list", {"name": name})["semaphores"]
        return next((e for e in found if e["name"] == name), {"holders": [], "waiters": []})

    # --- 1. FileLock against flock(1) and filelock, both ways -----------------------------------------------

    def test_the_package_names_are_the_sync_module_classes(self):
        self.assertIs(mpctl.FileLock, mpctl.sync.FileLock)
        self.assertIs(mpctl.BrokenBarrierError, mpctl.sync.BrokenBarrierError)
        self.assertTrue(issubclass(mpctl.sync.Timeout, TimeoutError))
        self.assertTrue(issubclass(mpctl.BrokenBarrierError, threading.BrokenBarrierError))

    def test_a_filelock_mpctl_holds_keeps_flock_and_filelock_out_until_released(self):
        path = self.path("held-by-mpctl.lock")
        lock = mpctl.FileLock(path, client=self.client)
        self.assertFalse(lock.is_locked)
        proxy = lock.acquire()
        self.assertIs(proxy.lock, lock)
        self.assertTrue(lock.is_locked)
        self.assertEqual(lock.lock_counter, 1)
        self.assertEqual(self.flock_n(path), 1, "flock -n got a lock mpctl.FileLock holds")
        self.assertEqual(self.filelock_try(path), "timeout", "filelock got a lock mpctl.FileLock holds")
        holders = self.lock_entry(path)["holders"]
        self.assertEqual([(h["pid"], h["token"], h["lease"]) for h in holders],
                         [(os.getpid(), lock.token, {"kind": "process", "pid": os.getpid()})])
        # Another process using mpctl is kept out too (and told with mpctl.sync.Timeout).
        self.assertEqual(self.run_python(MPCTL_LOCK_TRY, path, 0), "timeout")

        lock.release()
        self.assertFalse(lock.is_locked)
        self.assertIsNone(lock.token)
        self.assertEqual(self.flock_n(path), 0, "flock -n did not get the lock after release")
        self.assertEqual(self.filelock_try(path), "acquired", "filelock did not get the lock after release")
        self.assertEqual(self.run_python(MPCTL_LOCK_TRY, path, 0), "acquired")
        self.assertEqual(self.lock_entry(path)["holders"], [])
        lock.release()  # not held: nothing happens, as with filelock

    def check_kept_out_then_handed_over(self, path, holder, go):
        """HOLDER holds PATH with flock(2) outside the daemon until GO appears."""
        lock = mpctl.FileLock(path, client=self.client)
        for attempt in (lambda: lock.acquire(timeout=0), lambda: lock.acquire(blocking=False),
                        lambda: lock.acquire(timeout=0.2), lambda: mpctl.FileLock(path, 0, client=self.client)
                        .acquire()):
            with self.assertRaises(mpctl.sync.Timeout) as caught:
                attempt()
            self.assertIsInstance(caught.exception, TimeoutError)
            self.assertEqual(caught.exception.lock_file, path)
            self.assertEqual(str(caught.exception), f"The file lock '{path}' could not be acquired.")
            self.assertFalse(lock.is_locked)
            self.assertEqual(lock.lock_counter, 0)

        thread, box = self.in_thread(lambda: lock.acquire(timeout=LONG))
        self.wait_for(lambda: [w["pid"] for w in self.lock_entry(path)["waiters"]] == [os.getpid()],
                      "the blocking acquire to wait at the daemon", alive=[holder])
        self.assertFalse(lock.is_locked)
        open(go, "w").close()
        self.assertEqual(holder.wait(120), 0, self.said(holder))
        self.joined(thread, box)
        self.assertTrue(lock.is_locked)
        self.assertEqual(self.flock_n(path), 1, "the lock handed to mpctl is not held")
        lock.release()
        self.assertEqual(self.flock_n(path), 0)

    def test_a_lock_flock_holds_keeps_mpctl_out_then_passes_to_a_waiting_acquire(self):
        path = self.path("held-by-flock.lock")
        holder, go = self.hold_with_flock(path)
        self.check_kept_out_then_handed_over(path, holder, go)

    def test_a_lock_filelock_holds_keeps_mpctl_out_then_passes_to_a_waiting_acquire(self):
        path = self.path("held-by-filelock.lock")
        holder, go = self.hold_with_filelock(path)
        self.check_kept_out_then_handed_over(path, holder, go)

    # --- 2. filelock's API: counting, context managers, paths ------------------------------------------------

    def test_acquires_are_counted_and_the_lock_goes_at_the_last_release(self):
        path = self.path("counted.lock")
        lock = mpctl.FileLock(path, client=self.client)
        lock.acquire()
        first = lock.token
        lock.acquire()
        self.assertEqual((lock.is_locked, lock.lock_counter, lock.token), (True, 2, first))
        lock.release()
        self.assertEqual((lock.is_locked, lock.lock_counter), (True, 1))
        self.assertEqual(self.flock_n(path), 1, "one release of two let the lock go")
        lock.release()
        self.assertEqual((lock.is_locked, lock.lock_counter), (False, 0))
        self.assertEqual(self.flock_n(path), 0, "the last release kept the lock")

        with lock as entered:
            self.assertIs(entered, lock)
            self.assertEqual(self.flock_n(path), 1)
            with lock:
                self.assertEqual(lock.lock_counter, 2)
            self.assertEqual((lock.lock_counter, self.flock_n(path)), (1, 1))
            self.assertGreater(lock.token, first, "a later grant has a smaller fencing token")
        self.assertEqual((lock.is_locked, self.flock_n(path)), (False, 0))

        with lock.acquire() as entered:
            self.assertIs(entered, lock)
            self.assertEqual(lock.lock_counter, 1)
        self.assertEqual((lock.is_locked, self.flock_n(path)), (False, 0))

        lock.acquire()
        lock.acquire()
        lock.release(force=True)
        self.assertEqual((lock.is_locked, lock.lock_counter, self.flock_n(path)), (False, 0, 0))

        @lock
        def locked():
            return lock.lock_counter, self.flock_n(path)
        self.assertEqual(locked(), (1, 1))
        self.assertEqual(self.flock_n(path), 0)

    def test_timeout_property_relative_paths_and_a_second_object_in_the_same_process(self):
        path = self.path("relative.lock")
        relative = os.path.relpath(path)
        lock = mpctl.FileLock(relative, timeout=5, client=self.client)
        self.assertEqual((lock.lock_file, lock.timeout), (relative, 5))
        lock.timeout = "0"
        self.assertEqual(lock.timeout, 0.0)
        with lock:
            self.assertEqual(self.lock_entry(path)["holders"][0]["token"], lock.token)  # the absolute path
            self.assertEqual(self.flock_n(path), 1)
            # Another object of this process on the same file is kept out, as filelock's would be.
            other = mpctl.FileLock(path, client=self.client)
            with self.assertRaises(mpctl.sync.Timeout):
                other.acquire(timeout=0)
            thread, box = self.in_thread(lambda: other.acquire(timeout=LONG))
        self.joined(thread, box)
        self.assertTrue(other.is_locked)
        self.assertEqual(self.flock_n(path), 1)
        other.release()
        self.assertEqual(self.flock_n(path), 0)

    def test_a_held_filelock_that_is_dropped_lets_go(self):
        path = self.path("dropped.lock")
        lock = mpctl.FileLock(path, client=self.client)
        lock.acquire()
        self.assertEqual(self.flock_n(path), 1)
        del lock
        gc.collect()
        self.wait_for(lambda: self.flock_n(path) == 0, "the dropped lock to be released")
        again = mpctl.FileLock(path, timeout=LONG, client=self.client)
        with again:  # the process-wide gate of the path was let go too
            self.assertEqual(self.flock_n(path), 1)

    # --- 3. the holder dies -------------------------------------------------------------------------------------

    def test_a_filelock_is_freed_when_its_holder_is_killed(self):
        path, grant = self.path("killed.lock"), self.path("killed.grant")
        owner = self.python(MPCTL_LOCK_HOLD, path, grant, what="python holding mpctl.FileLock")
        self.wait_for(lambda: os.path.exists(grant), "the owner to hold the lock", alive=[owner])
        with open(grant) as f:
            token = int(f.read())
        self.assertEqual([(h["pid"], h["token"]) for h in self.lock_entry(path)["holders"]], [(owner.pid, token)])
        self.assertEqual(self.flock_n(path), 1)
        self.assertEqual(self.run_python(MPCTL_LOCK_TRY, path, 0), "timeout")
        # A process waiting for it meanwhile gets it once the owner is killed.
        waiter = self.python(MPCTL_LOCK_TRY, path, LONG, what="python waiting for the lock")
        self.wait_for(lambda: len(self.lock_entry(path)["waiters"]) == 1, "the waiter to queue", alive=[waiter])
        owner.kill()  # SIGKILL: no chance to release
        owner.wait(60)
        self.assertEqual(self.finish(waiter).strip(), "acquired")
        self.wait_for(lambda: self.flock_n(path) == 0, "the lock to be free")
        self.assertEqual(self.lock_entry(path)["holders"], [])

    # --- 4. semaphores ------------------------------------------------------------------------------------------

    def test_a_semaphore_of_two_admits_two_processes_and_the_third_after_a_release(self):
        name = f"slots-{os.getpid()}"
        got = [self.path(f"sem-{i}.got") for i in range(3)]
        go = [self.path(f"sem-{i}.go") for i in range(3)]
        holders = [self.python(SEM_HOLD, name, 2, LONG, got[i], go[i], what=f"semaphore holder {i}")
                   for i in range(2)]
        self.wait_for(lambda: all(map(os.path.exists, got[:2])), "two processes to hold a unit", alive=holders)
        self.assertEqual(sorted(h["pid"] for h in self.sem_entry(name)["holders"]), sorted(p.pid for p in holders))

        mine = mpctl.Semaphore(2, name=name, client=self.client)
        self.assertFalse(mine.acquire(blocking=False))
        self.assertFalse(mine.acquire(timeout=0.2))
        self.assertFalse(mine.acquire(timeout=0))
        self.assertEqual(mine.tokens, ())
        with self.assertRaises(ValueError):
            mine.acquire(blocking=False, timeout=1)
        with self.assertRaises(mpctl.InvalidState):  # another limit while it is in use
            mpctl.Semaphore(3, name=name, client=self.client).acquire(blocking=False)

        third = self.python(SEM_HOLD, name, 2, LONG, got[2], go[2], what="semaphore holder 2")
        self.wait_for(lambda: [w["pid"] for w in self.sem_entry(name)["waiters"]] == [third.pid],
                      "the third process to wait", alive=holders + [third])
        self.assertFalse(os.path.exists(got[2]), "the third process got a unit while two were held")
        open(go[0], "w").close()
        self.assertEqual(self.finish(holders[0]).strip(), "released")
        self.wait_for(lambda: os.path.exists(got[2]), "the third process to get the unit given back", alive=[third])
        self.assertFalse(mine.acquire(blocking=False))
        for i in (1, 2):
            open(go[i], "w").close()
        self.assertEqual(self.finish(holders[1]).strip(), "released")
        self.assertEqual(self.finish(third).strip(), "released")
        with mine as took:
            self.assertTrue(took)
            self.assertEqual(len(mine.tokens), 1)
            self.assertEqual([h["token"] for h in self.sem_entry(name)["holders"]], list(mine.tokens))
        self.assertEqual(self.sem_entry(name)["holders"], [])

    def test_a_semaphore_unit_is_freed_when_its_holder_is_killed(self):
        name = f"killed-{os.getpid()}"
        got = self.path("sem-killed.got")
        owner = self.python(SEM_HOLD, name, 1, LONG, got, "-", what="semaphore holder")
        self.wait_for(lambda: os.path.exists(got), "the owner to hold the unit", alive=[owner])
        sem = mpctl.Semaphore(1, name=name, client=self.client)
        self.assertFalse(sem.acquire(blocking=False))
        thread, box = self.in_thread(lambda: sem.acquire(timeout=LONG))
        self.wait_for(lambda: len(self.sem_entry(name)["waiters"]) == 1, "the acquire to wait")
        owner.kill()
        owner.wait(60)
        self.assertTrue(self.joined(thread, box))
        sem.release()

    def test_bounded_semaphore_over_release_is_a_value_error(self):
        name = f"bounded-{os.getpid()}"
        sem = mpctl.BoundedSemaphore(2, name=name, client=self.client)
        with self.assertRaises(ValueError):
            sem.release()
        self.assertTrue(sem.acquire())
        self.assertTrue(sem.acquire())
        self.assertFalse(sem.acquire(blocking=False))
        with self.assertRaises(ValueError):
            sem.release(3)  # all or nothing: both units are still held
        self.assertEqual(len(self.sem_entry(name)["holders"]), 2)
        sem.release(2)
        self.assertEqual(self.sem_entry(name)["holders"], [])
        with self.assertRaises(ValueError):
            sem.release()
        # An unbounded Semaphore cannot add units past its fixed limit either: a ValueError, not a release.
        with self.assertRaises(ValueError):
            mpctl.Semaphore(2, name=name, client=self.client).release()
        with self.assertRaises(ValueError):
            mpctl.Semaphore(0, name=name)
        with self.assertRaises(ValueError):
            mpctl.Semaphore(1, name="no spaces")

    def test_threads_of_one_process_wait_for_each_other_at_a_semaphore(self):
        # The daemon sees one owner per process and would call this a deadlock; the module waits instead.
        name = f"threads-{os.getpid()}"
        first = mpctl.Semaphore(1, name=name, client=self.client)
        second = mpctl.Semaphore(1, name=name, client=self.client)
        self.assertTrue(first.acquire())
        self.assertFalse(second.acquire(timeout=0.2))
        thread, box = self.in_thread(lambda: second.acquire(timeout=LONG))
        first.release()
        self.assertTrue(self.joined(thread, box))
        self.assertEqual([h["pid"] for h in self.sem_entry(name)["holders"]], [os.getpid()])
        second.release()
        self.assertEqual(self.sem_entry(name)["holders"], [])

    # --- 5. events ----------------------------------------------------------------------------------------------

    def test_an_event_wakes_a_waiting_process_and_clear_makes_waits_wait_again(self):
        name = f"ready-{os.getpid()}"
        event = mpctl.Event(name, client=self.client)
        self.assertFalse(event.is_set())
        self.assertFalse(event.wait(timeout=0.2))
        self.assertFalse(event.wait(timeout=0))

        waiter = self.python(EVENT_WAIT, name, LONG, what="event waiter")
        self.wait_for(lambda: self.client.call("event.list", {"name": name})["events"][0]["waiters"] == 1,
                      "the process to wait for the event", alive=[waiter])
        self.assertIsNone(waiter.poll(), "the waiter returned before the event was set")
        event.set()
        self.assertEqual(self.finish(waiter).strip(), "True")
        self.assertTrue(event.is_set())
        self.assertTrue(event.wait(timeout=0.2))
        self.assertTrue(event.wait())
        self.assertEqual(self.run_python(EVENT_WAIT, name, 0), "True")

        event.clear()
        self.assertFalse(event.is_set())
        self.assertFalse(event.wait(timeout=0.2))
        self.assertEqual(self.run_python(EVENT_WAIT, name, 0.2), "False")
        # Another object of the same name, in this process, is the same event.
        thread, box = self.in_thread(lambda: mpctl.Event(name, socket=self.daemon.socket).wait(LONG))
        self.wait_for(lambda: self.client.call("event.list", {"name": name})["events"][0]["waiters"] == 1,
                      "the thread to wait for the event")
        event.set()
        self.assertTrue(self.joined(thread, box))

    # --- 6. barriers --------------------------------------------------------------------------------------------

    def barrier_waiters(self, name, parties, count, seconds):
        return [self.python(BARRIER_WAIT, name, parties, seconds, self.daemon.dir, what=f"barrier waiter {i}")
                for i in range(count)]

    def test_a_barrier_of_three_releases_three_processes_with_indexes_0_1_2(self):
        name = f"meet-{os.getpid()}"
        waiters = self.barrier_waiters(name, 3, 3, LONG)
        answers = [json.loads(self.finish(w)) for w in waiters]
        self.assertEqual(sorted(a["index"] for a in answers), [0, 1, 2])
        actions = [f for f in os.listdir(self.daemon.dir) if f.startswith("action-")]
        first = next(w for w, a in zip(waiters, answers) if a["index"] == 0)
        self.assertEqual(actions, [f"action-{first.pid}"], "the action ran elsewhere than in index 0's process")
        # The name is free for the next round: this process is one of three.
        barrier = mpctl.Barrier(3, name=name, client=self.client)
        self.assertEqual((barrier.parties, barrier.n_waiting, barrier.broken), (3, 0, False))
        waiters = self.barrier_waiters(name, 3, 2, LONG)
        self.wait_for(lambda: barrier.n_waiting == 2, "two processes at the barrier", alive=waiters)
        mine = barrier.wait(timeout=LONG)
        others = [json.loads(self.finish(w))["index"] for w in waiters]
        self.assertEqual(sorted(others + [mine]), [0, 1, 2])
        self.assertEqual(mine, 2, "the last to arrive is not index 2")

    def test_a_waiter_that_times_out_breaks_the_barrier_for_the_others(self):
        name = f"broken-{os.getpid()}"
        barrier = mpctl.Barrier(4, name=name, client=self.client)
        waiters = self.barrier_waiters(name, 4, 2, LONG)
        self.wait_for(lambda: barrier.n_waiting == 2, "two processes at the barrier", alive=waiters)
        with self.assertRaises(mpctl.BrokenBarrierError) as caught:
            barrier.wait(timeout=0.2)
        self.assertIsInstance(caught.exception, threading.BrokenBarrierError)
        self.assertTrue(barrier.broken)
        for w in waiters:
            self.assertEqual(json.loads(self.finish(w)), {"broken": True, "threading": True})
        self.assertEqual(barrier.n_waiting, 0)
        self.assertEqual([f for f in os.listdir(self.daemon.dir) if f.startswith("action-")], [])
        # The daemon's barrier starts afresh: the next round passes.
        waiters = self.barrier_waiters(name, 4, 1, LONG)
        self.wait_for(lambda: barrier.n_waiting == 1, "a process at the barrier", alive=waiters)
        with self.assertRaises(mpctl.InvalidState):  # another parties count while the name is in use
            mpctl.Barrier(2, name=name, client=self.client).wait(timeout=LONG)
        waiters += self.barrier_waiters(name, 4, 2, LONG)
        self.wait_for(lambda: barrier.n_waiting == 3, "three processes at the barrier", alive=waiters)
        mine = barrier.wait(timeout=LONG)
        self.assertFalse(barrier.broken)
        others = [json.loads(self.finish(w))["index"] for w in waiters]
        self.assertEqual(sorted(others + [mine]), [0, 1, 2, 3])
        with self.assertRaises(NotImplementedError):
            barrier.abort()
        with self.assertRaises(NotImplementedError):
            barrier.reset()


if __name__ == "__main__":
    unittest.main(verbosity=2)
