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

    # Flags after the usual ones (--listen ...); LOG: a file name in the directory for the daemon's log (at
    # info level), which log() reads.
    extra_args = ()
    log_name = None

    def __init__(self, directory=None):
        self.tmp = None if directory else tempfile.TemporaryDirectory(prefix="mpt-py-", dir="/tmp")
        self.dir = directory or self.tmp.name
        self.socket = os.path.join(self.dir, "d.sock")
        self.state = os.path.join(self.dir, "state")
        self.log_path = os.path.join(self.dir, self.log_name) if self.log_name else None
        self.proc = None
        self.start()

    def start(self):
        # MPCTL_TEST_DAEMON_STDERR=1 shows the daemon's log (at debug level) when a test needs looking into.
        verbose = bool(os.environ.get("MPCTL_TEST_DAEMON_STDERR"))
        log = open(self.log_path, "ab") if self.log_path else None
        self.proc = subprocess.Popen([os.path.join(BIN, "mpctld"), "--foreground", "--exit-with-parent",
                                      "--socket", self.socket, "--state-dir", self.state,
                                      "--workers", "2", *self.extra_args] + (["--log-level", "debug"] if verbose else []),
                                     stdin=subprocess.DEVNULL,
                                     stderr=log or (None if verbose else subprocess.DEVNULL))
        if log:
            log.close()

        def serving():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpctld exited with {self.proc.returncode}: {self.log()}")
            try:
                Connection(self.socket).close()
                return True
            except OSError:
                return False

        until(serving, "mpctld to serve")

    def log(self):
        """The daemon's log so far (empty without a log file)."""
        if not self.log_path:
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

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


class ListeningDaemon(Daemon):
    """A Daemon that also serves remote clients on tcp://127.0.0.1:PORT (a free port: ADDRESS, PORT), its log
    in DIR/daemon.log."""
    extra_args = ("--listen", "tcp://127.0.0.1:0")
    log_name = "daemon.log"

    def start(self):
        super().start()
        conn = Connection(self.socket)
        try:
            listen = conn.result("daemon.status")["listen"]
        finally:
            conn.close()
        tcp = [a for a in listen if a.startswith("tcp://127.0.0.1:")]
        if len(tcp) != 1:
            raise RuntimeError(f"daemon.status listen: {listen}")
        self.address = tcp[0]
        self.port = int(self.address.rsplit(":", 1)[1])
