"""A real mpctld in a directory of its own, and a connection to it that speaks JSON-RPC line by line, for the
Python e2e tests. Nothing here sleeps a fixed time: waits poll a condition against a deadline."""
import json, os, signal, socket, subprocess, tempfile, time

BIN = os.environ["MPCTL_TEST_BIN_DIR"]


def until(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.005)


class Connection:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(120)  # a daemon that never answers fails the test instead of hanging it
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.file = self.sock.makefile("rb")
        self.next_id = 0

    def line(self, method, params):
        self.next_id += 1
        return json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).encode() + b"\n"

    def send(self, data, fds=()):
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def answer(self):
        """The answer to the last request sent (notifications before it are skipped); None if the daemon closed."""
        while True:
            raw = self.file.readline()
            if not raw:
                return None
            msg = json.loads(raw)
            if msg.get("id") == self.next_id:
                return msg

    def call(self, method, params=None, fds=()):
        self.send(self.line(method, params or {}), fds)
        return self.answer()

    def result(self, method, params=None):
        reply = self.call(method, params)
        if reply is None or "error" in reply:
            raise RuntimeError(f"{method} {params}: {reply}")
        return reply["result"]

    def close(self):
        self.file.close()
        self.sock.close()


class Daemon:
    """mpctld --foreground in DIRECTORY (a fresh one by default), started again after a daemon.stop."""

    def __init__(self, directory=None):
        self.tmp = None if directory else tempfile.TemporaryDirectory(prefix="mpt-py-", dir="/tmp")
        self.dir = directory or self.tmp.name
        self.socket = os.path.join(self.dir, "d.sock")
        self.proc = None
        self.start()

    def start(self):
        # MPCTL_TEST_DAEMON_STDERR=1 shows the daemon's log (at debug level) when a test needs looking into.
        verbose = bool(os.environ.get("MPCTL_TEST_DAEMON_STDERR"))
        self.proc = subprocess.Popen([os.path.join(BIN, "mpctld"), "--foreground", "--exit-with-parent",
                                      "--socket", self.socket, "--state-dir", os.path.join(self.dir, "state"),
                                      "--workers", "2"] + (["--log-level", "debug"] if verbose else []),
                                     stderr=None if verbose else subprocess.DEVNULL)

        def serving():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpctld exited with {self.proc.returncode}")
            try:
                Connection(self.socket).close()
                return True
            except OSError:
                return False

        until(serving, "mpctld to serve")

    def wait_exit(self):
        self.proc.wait(120)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp:
            self.tmp.cleanup()
