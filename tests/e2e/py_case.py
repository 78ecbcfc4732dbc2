"""What the Python e2e tests that drive `mpctl` against helper processes share: a TestCase with its own
daemon, `mpctl` run against it, helper processes in sessions of their own (killed with their whole group
and reaped on cleanup, whatever happens to the test), waits that fail at once when a helper dies, and
shared-memory segment names that no other test uses and that are unlinked on cleanup."""
import os, signal, subprocess, threading, unittest

from py_daemon import BIN, Daemon, until

MPCTL = os.path.join(BIN, "mpctl")
SHM_DIR = "/dev/shm"


# A Python process that owns a lease: runs `mpctl ARGS...` (its lease is this process's), writes the answer
# to GRANT once it is whole (renamed into place), and waits to be killed. argv: MPCTL GRANT ARGS...
LEASE_OWNER = r"""
import os, signal, subprocess, sys
mpctl, grant, args = sys.argv[1], sys.argv[2], sys.argv[3:]
done = subprocess.run([mpctl, *args], stdout=subprocess.PIPE)
if done.returncode != 0:
    sys.exit(done.returncode)
with open(grant + ".tmp", "wb") as f:
    f.write(done.stdout)
os.rename(grant + ".tmp", grant)
while True:
    signal.pause()
"""


def lease_owner(python, grant, *args):
    """The command line of a LEASE_OWNER run by PYTHON that runs `mpctl ARGS...`."""
    return [python, "-c", LEASE_OWNER, MPCTL, grant, *args]


def shm_path(name):
    return os.path.join(SHM_DIR, name)


def unlink_quietly(name):
    try:
        os.unlink(shm_path(name))
    except FileNotFoundError:
        pass


class DaemonCase(unittest.TestCase):
    serial = 0  # across the tests of this process, so that no two tests share a segment name

    def setUp(self):
        self.daemon = Daemon()
        self.addCleanup(self.daemon.stop)  # registered first, so it runs after every process is gone
        self.env = dict(os.environ, MPCTL_SOCKET=self.daemon.socket,
                        MPCTL_STATE_DIR=os.path.join(self.daemon.dir, "state"), MPCTL_NO_AUTOSTART="1",
                        NO_COLOR="1")
        self.procs = 0

    def path(self, name):
        return os.path.join(self.daemon.dir, name)

    def mpctl(self, args, **kw):
        if "input" not in kw and "stdin" not in kw:
            kw["stdin"] = subprocess.DEVNULL
        return subprocess.run([MPCTL] + args, env=self.env, capture_output=True, timeout=300, **kw)

    def mpctl_ok(self, args, **kw):
        done = self.mpctl(args, **kw)
        self.assertEqual(done.returncode, 0, f"mpctl {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout

    def segment(self, tag):
        """A segment name no other test (nor another run of this file) uses; /dev/shm/NAME is unlinked on
        cleanup whatever made it and whatever happens to the test."""
        DaemonCase.serial += 1
        name = f"mpctl-test-{os.getpid()}-{DaemonCase.serial}-{tag}"
        self.addCleanup(unlink_quietly, name)
        return name

    def spawn(self, args, what):
        """A background process in a session of its own, its output in files; killed (whole group, which
        holds a Python's resource tracker too) and reaped on cleanup, whatever happens to the test."""
        self.procs += 1
        out = open(self.path(f"proc-{self.procs}.out"), "wb+")
        err = open(self.path(f"proc-{self.procs}.err"), "wb+")
        proc = subprocess.Popen(args, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        proc.what, proc.out, proc.err = what, out, err

        def reap():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(60)
            out.close()
            err.close()
        self.addCleanup(reap)
        return proc

    @staticmethod
    def said(proc):
        proc.out.flush()
        proc.err.flush()
        with open(proc.out.name, "rb") as o, open(proc.err.name, "rb") as e:
            return o.read(), e.read()

    def in_thread(self, function):
        """FUNCTION() in a thread: (thread, box), box["result"] or box["error"] once the thread is done."""
        box = {}

        def run():
            try:
                box["result"] = function()
            except BaseException as error:  # handed to the test, which fails with it
                box["error"] = error
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, box

    def joined(self, thread, box, seconds=120):
        """What in_thread's FUNCTION returned (or raised), once its thread ended within SECONDS."""
        thread.join(seconds)
        self.assertFalse(thread.is_alive(), "the thread is still waiting")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def wait_for(self, condition, what, seconds=60, alive=()):
        """until(condition), failing at once with its output if a process in ALIVE exits meanwhile."""
        def check():
            for proc in alive:
                if proc.poll() is not None:
                    out, err = self.said(proc)
                    self.fail(f"{proc.what} exited with {proc.returncode} while waiting for {what}: "
                              f"stdout {out!r}, stderr {err!r}")
            return condition()
        until(check, what, seconds)


# ---- the tools people already lock files with: util-linux flock(1) and Debian's python3-filelock ----------

SYSTEM_PYTHON = "/usr/bin/python3"  # whose filelock is Debian's python3-filelock

# filelock.FileLock(PATH).acquire(timeout=0) in a Python of its own: prints "acquired" (then lets go) or "timeout".
FILELOCK_TRY = r"""
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
try:
    lock.acquire(timeout=0)
except filelock.Timeout:
    print("timeout")
else:
    lock.release()
    print("acquired")
"""

# Holds filelock.FileLock(PATH), says so by creating HELD, and lets go when GO appears.
FILELOCK_HOLD = r"""
import os, sys, time, filelock
path, held, go = sys.argv[1:4]
lock = filelock.FileLock(path)
lock.acquire(timeout=0)
open(held, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
lock.release()
"""

_filelock_check = None


def filelock_problem():
    """None if the system Python can import filelock, else what went wrong."""
    global _filelock_check
    if _filelock_check is None:
        done = subprocess.run([SYSTEM_PYTHON, "-c", "import filelock"], capture_output=True, timeout=120)
        why = (done.stderr.decode().strip().splitlines() or [f"exit {done.returncode}"])[-1]
        _filelock_check = ("" if done.returncode == 0 else
                           f"{SYSTEM_PYTHON} cannot import filelock ({why}): apt-get install python3-filelock")
    return _filelock_check or None


class LockPeers:
    """For a DaemonCase: flock(1) and filelock trying and holding a lock file, in processes of their own."""

    def flock_n(self, path, *mode):
        """`flock [MODE] -n PATH true`: 0 if it got the lock, 1 if it is held."""
        return subprocess.run(["flock", *mode, "-n", path, "true"], timeout=120).returncode

    def need_filelock(self):
        problem = filelock_problem()
        if problem:
            self.fail(problem)

    def filelock_try(self, path):
        """FILELOCK_TRY on PATH: "acquired" or "timeout"."""
        self.need_filelock()
        done = subprocess.run([SYSTEM_PYTHON, "-c", FILELOCK_TRY, path], env=self.env, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr.decode())
        return done.stdout.decode().strip()

    def hold_with_flock(self, path):
        """A flock(1) process holding PATH exclusively until GO appears: (process, GO)."""
        held, go = path + ".held", path + ".go"
        proc = self.spawn(["flock", path, "sh", "-c", f"touch '{held}'; while [ ! -e '{go}' ]; do sleep 0.01; done"],
                          "flock(1) holding " + path)
        self.addCleanup(lambda: open(go, "a").close())  # and the loop ends even if a kill missed it
        self.wait_for(lambda: os.path.exists(held), "flock(1) to hold " + path, alive=[proc])
        return proc, go

    def hold_with_filelock(self, path):
        """A Python process holding filelock.FileLock(PATH) until GO appears: (process, GO)."""
        self.need_filelock()
        held, go = path + ".held", path + ".go"
        proc = self.spawn([SYSTEM_PYTHON, "-c", FILELOCK_HOLD, path, held, go], "python holding filelock " + path)
        self.addCleanup(lambda: open(go, "a").close())
        self.wait_for(lambda: os.path.exists(held), "filelock to hold " + path, alive=[proc])
        return proc, go
