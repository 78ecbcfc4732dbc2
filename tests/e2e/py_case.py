"""What the Python e2e tests that drive `mpctl` against helper processes share: a TestCase with its own
daemon, `mpctl` run against it, helper processes in sessions of their own (killed with their whole group
and reaped on cleanup, whatever happens to the test), waits that fail at once when a helper dies, and
shared-memory segment names that no other test uses and that are unlinked on cleanup."""
import os, signal, subprocess, unittest

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
