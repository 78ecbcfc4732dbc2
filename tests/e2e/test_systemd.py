"""mpctld under systemd, with the test playing systemd's part (systemd is not PID 1 here): the listening
socket made before the daemon runs and passed as descriptor 3 with LISTEN_FDS/LISTEN_PID, and the
NOTIFY_SOCKET datagrams read (READY=1, STATUS=, STOPPING=1, RELOADING=1). Also `systemd-analyze verify` of
the units in packaging/systemd, when the tool is there. Waits poll against deadlines; nothing sleeps."""
import fcntl, json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_daemon import BIN, Connection, until  # noqa: E402

SOURCE = os.environ.get("MPCTL_TEST_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNITS = os.path.join(SOURCE, "packaging", "systemd")
DEADLINE = 60


class Notifications:
    """The datagram socket NOTIFY_SOCKET names, and every message that reached it, in order. Each message
    also has "_pid": the sender's pid from its credentials, which is what NotifyAccess=main checks."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.messages = []

    def receive(self, seconds):
        self.sock.settimeout(seconds)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(struct.calcsize("3i")))
        except socket.timeout:
            return None
        message = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                message["_pid"] = struct.unpack("3i", payload[:struct.calcsize("3i")])[0]
        self.messages.append(message)
        return message

    def wait_for(self, predicate, what, seconds=DEADLINE):
        """The first message from now on that PREDICATE accepts."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what}; heard {self.messages}")
            message = self.receive(left)
            if message is not None and predicate(message):
                return message

    def drain(self):
        while self.receive(0.001) is not None:
            pass

    def close(self):
        self.sock.close()


class ActivatedDaemon:
    """mpctld --foreground started as systemd starts a socket-activated Type=notify service."""

    def __init__(self, test, config_text=None, listening=True, log_level_flag=True, supervise=False):
        self.tmp = tempfile.TemporaryDirectory(prefix="mpt-sd-", dir="/tmp")
        test.addCleanup(self.cleanup)
        self.dir = self.tmp.name
        self.socket_path = os.path.join(self.dir, "run", "mpctld.sock")
        os.mkdir(os.path.dirname(self.socket_path), 0o700)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        if listening:
            self.listener.listen(64)
        self.socket_inode = os.stat(self.socket_path).st_ino
        self.notify = Notifications(os.path.join(self.dir, "notify.sock"))
        self.state_dir = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "mpctld.toml")
        with open(self.config, "w") as f:
            f.write(config_text or "")
        self.log = os.path.join(self.dir, "mpctld.log")
        self.proc = None
        self.log_level_flag = log_level_flag
        self.supervise = supervise

    def start(self):
        listen_fd = self.listener.fileno()
        notify_path = self.notify.path

        def as_systemd_does():
            # In the child, before exec: the socket as descriptor 3, and LISTEN_PID naming the child itself.
            if listen_fd == 3:
                os.set_inheritable(3, True)  # dup2 onto itself would leave it close-on-exec
            else:
                os.dup2(listen_fd, 3)
            os.putenv("LISTEN_FDS", "1")
            os.putenv("LISTEN_PID", str(os.getpid()))
            os.putenv("NOTIFY_SOCKET", notify_path)
            os.putenv("MPCTL_TEST_MARKER", "daemon-environment")

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [os.path.join(BIN, "mpctld"), "--foreground", "--exit-with-parent", "--socket", self.socket_path,
                 "--state-dir", self.state_dir, "--config", self.config]
                + (["--log-level", "debug"] if self.log_level_flag else [])
                + (["--supervise"] if self.supervise else []),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, close_fds=False,
                preexec_fn=as_systemd_does)

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def mpctl(self, *args):
        out = subprocess.run([os.path.join(BIN, "mpctl"), "--no-autostart", "--socket", self.socket_path, *args],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError(f"mpctl {args}: exit {out.returncode}: {out.stderr}")
        return out.stdout

    def pool_sizes(self):
        with _closing(Connection(self.socket_path)) as conn:
            pools = conn.result("pool.list")
        pools = pools["pools"] if isinstance(pools, dict) else pools
        return {p["name"]: p["workers"] for p in pools}

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        self.listener.close()
        self.tmp.cleanup()


class _closing:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()


def has(field, value=None):
    return lambda m: field in m and (value is None or m[field] == value)


class SocketActivation(unittest.TestCase):
    def test_a_client_that_connected_before_the_daemon_ran_is_answered_then_ready_status_and_stopping(self):
        d = ActivatedDaemon(self)
        # Connected while nobody runs: systemd's socket holds the connection in its backlog.
        early = Connection(d.socket_path)
        self.addCleanup(early.close)
        early.send(early.line("daemon.status", {}))
        d.start()
        answer = early.answer()
        self.assertIsNotNone(answer, d.read_log())
        self.assertEqual(answer["result"]["pid"], d.proc.pid)
        ready = d.notify.wait_for(has("READY", "1"), "READY=1")
        before_ready = d.notify.messages[:d.notify.messages.index(ready)]
        self.assertFalse([m for m in before_ready if "READY" in m or "STOPPING" in m], d.notify.messages)
        # The socket systemd made is served as it is: not unlinked, not bound again.
        self.assertEqual(os.stat(d.socket_path).st_ino, d.socket_inode)
        self.assertIn("socket passed by systemd", d.read_log())
        d.notify.wait_for(has("STATUS", "serving: 0 running, 0 queued"), "the first STATUS=")

        # STATUS= follows the counts (at most once a second).
        conn = Connection(d.socket_path)
        self.addCleanup(conn.close)
        out = os.path.join(d.dir, "env.txt")
        gate = os.path.join(d.dir, "gate")
        # No "env" in the spec: the task gets the daemon's environment, which must not carry systemd's
        # variables (a task could speak for the daemon on NOTIFY_SOCKET, or take descriptor 3 for a socket).
        task = conn.result("task.submit", {
            "argv": ["/bin/sh", "-c", f"env > {out}.tmp && mv {out}.tmp {out} && while [ ! -e {gate} ]; do sleep 0.05; done"],
            "cwd": d.dir})
        d.notify.wait_for(has("STATUS", "serving: 1 running, 0 queued"), "STATUS= with the running task")
        until(lambda: os.path.exists(out), "the task's environment")
        with open(out) as f:
            env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
        self.assertEqual(env.get("MPCTL_TEST_MARKER"), "daemon-environment")  # the daemon's environment it is
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
            self.assertNotIn(name, env)
        open(gate, "w").close()
        conn.result("task.wait", {"ids": [task["id"]], "timeout": 120})
        d.notify.wait_for(has("STATUS", "serving: 0 running, 0 queued"), "STATUS= once the task ended")

        d.proc.send_signal(signal.SIGTERM)
        d.notify.wait_for(has("STOPPING", "1"), "STOPPING=1 after SIGTERM")
        self.assertEqual(d.proc.wait(120), 0, d.read_log())
        # The socket is its unit's: the daemon leaves the file for the next activation.
        self.assertEqual(os.stat(d.socket_path).st_ino, d.socket_inode)

    def test_a_supervised_daemon_speaks_to_systemd_through_its_supervisor_across_a_crash_and_an_upgrade(self):
        # The unit's main pid is the supervisor; systemd (NotifyAccess=main) drops what any other pid says.
        d = ActivatedDaemon(self, supervise=True)
        d.start()
        main = d.proc.pid
        d.notify.wait_for(has("READY", "1"), "READY=1")
        d.notify.wait_for(has("STATUS", "serving: 0 running, 0 queued"), "the first STATUS=")
        status = json.loads(d.mpctl("daemon", "status", "--json"))
        self.assertEqual(status["supervisor"]["pid"], main)
        first_daemon = status["pid"]
        self.assertNotEqual(first_daemon, main)
        gate = os.path.join(d.dir, "gate")
        task = json.loads(d.mpctl("submit", "--json", "--", "/bin/sh", "-c",
                                  f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 3"))["id"]
        d.notify.wait_for(has("STATUS", "serving: 1 running, 0 queued"), "STATUS= with the running task")

        # A crash: the supervisor says so itself, and the next daemon's READY=1 comes through it too.
        with _closing(Connection(d.socket_path)) as conn:
            until(lambda: conn.result("task.get", {"id": task})["state"] == "running", "the task running")
        os.kill(first_daemon, signal.SIGKILL)
        d.notify.wait_for(lambda m: "starting it again" in m.get("STATUS", ""), "the supervisor's STATUS=")
        d.notify.wait_for(has("READY", "1"), "READY=1 from the restarted daemon")
        second_daemon = json.loads(d.mpctl("daemon", "status", "--json"))["pid"]
        self.assertNotIn(second_daemon, (main, first_daemon))

        # An upgrade (systemctl reload): the same daemon pid, READY=1 again through the supervisor.
        d.notify.drain()
        d.mpctl("daemon", "upgrade")
        d.notify.wait_for(has("READY", "1"), "READY=1 from the upgraded image")
        status = json.loads(d.mpctl("daemon", "status", "--json"))
        self.assertEqual((status["pid"], status["upgrades"]), (second_daemon, 1))

        open(gate, "w").close()
        with _closing(Connection(d.socket_path)) as conn:
            conn.result("task.wait", {"ids": [task], "timeout": 120})
            ended = conn.result("task.get", {"id": task})
        self.assertEqual((ended["state"], ended["exit_code"]), ("failed", 3), ended)
        d.proc.send_signal(signal.SIGTERM)
        d.notify.wait_for(has("STOPPING", "1"), "STOPPING=1 after SIGTERM")
        self.assertEqual(d.proc.wait(120), 0, d.read_log())
        d.notify.drain()
        self.assertEqual({m.get("_pid") for m in d.notify.messages}, {main}, d.notify.messages)

    def test_no_ready_when_the_start_fails(self):
        d = ActivatedDaemon(self)
        os.makedirs(d.state_dir, 0o700)
        lock = open(os.path.join(d.state_dir, "mpctld.lock"), "a")
        self.addCleanup(lock.close)
        fcntl.flock(lock, fcntl.LOCK_EX)  # another daemon holds the state dir
        d.start()
        self.assertEqual(d.proc.wait(120), 3, d.read_log())
        d.notify.drain()
        self.assertFalse([m for m in d.notify.messages if "READY" in m], d.notify.messages)
        self.assertEqual(os.stat(d.socket_path).st_ino, d.socket_inode)

    def test_a_passed_descriptor_that_does_not_listen_is_refused(self):
        d = ActivatedDaemon(self, listening=False)
        d.start()
        self.assertEqual(d.proc.wait(120), 1)
        self.assertIn("not a listening Unix stream socket", d.read_log())


class Reload(unittest.TestCase):
    def test_sighup_reloads_pool_sizes_and_log_level_between_reloading_and_ready(self):
        # No --log-level: it would win over the file's log_level.
        d = ActivatedDaemon(self, 'workers = 2\nlog_level = "info"\n[pools.gpu]\nworkers = 1\n', log_level_flag=False)
        d.start()
        d.notify.wait_for(has("READY", "1"), "READY=1")
        self.assertEqual(d.pool_sizes().get("default"), 2)

        with open(d.config, "w") as f:
            f.write('workers = 3\nlog_level = "debug"\n[pools.gpu]\nworkers = 4\n')
        d.proc.send_signal(signal.SIGHUP)
        reloading = d.notify.wait_for(has("RELOADING", "1"), "RELOADING=1")
        self.assertTrue(int(reloading["MONOTONIC_USEC"]) > 0, reloading)
        d.notify.wait_for(has("READY", "1"), "READY=1 after the reload")
        sizes = d.pool_sizes()
        self.assertEqual(sizes.get("default"), 3)
        self.assertEqual(sizes.get("gpu"), 4)
        listed = d.mpctl("pool", "list")
        self.assertRegex(listed, r"(?m)^\s*default\s+3\b")
        self.assertRegex(listed, r"(?m)^\s*gpu\s+4\b")
        log = d.read_log()
        self.assertIn("reload: pool default: 2 -> 3 workers", log)
        self.assertIn("reload: pool gpu: 1 -> 4 workers", log)
        self.assertIn("reload: log_level info -> debug", log)

        # A file that cannot be read changes nothing, says why, and the daemon is ready all the same.
        with open(d.config, "w") as f:
            f.write("workers = [oops\n")
        d.proc.send_signal(signal.SIGHUP)
        d.notify.wait_for(has("RELOADING", "1"), "RELOADING=1 for the broken file")
        d.notify.wait_for(has("READY", "1"), "READY=1 after the broken file")
        self.assertEqual(d.pool_sizes().get("default"), 3)
        until(lambda: "nothing changed, the settings in use are kept" in d.read_log(), "the reload's error logged")

        d.proc.send_signal(signal.SIGTERM)
        d.notify.wait_for(has("STOPPING", "1"), "STOPPING=1")
        self.assertEqual(d.proc.wait(120), 0)


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class UnitFiles(unittest.TestCase):
    """Each unit as systemd itself reads it, with ExecStart pointed at the built mpctld (verify wants the
    binary to exist). systemd-analyze exits 0 even for settings it ignores, so any output fails too."""

    def verify(self, folder, user):
        with tempfile.TemporaryDirectory(prefix="mpt-units-", dir="/tmp") as tmp:
            names = []
            for name in ("mpctld.service", "mpctld.socket"):
                with open(os.path.join(folder, name)) as f:
                    text = f.read()
                self.assertIn("ExecStart=/usr/bin/mpctld " if name.endswith(".service") else "ListenStream=", text)
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text.replace("/usr/bin/mpctld", os.path.join(BIN, "mpctld"))
                            .replace("/usr/bin/mpctl ", os.path.join(BIN, "mpctl") + " "))
                names.append(os.path.join(tmp, name))
            env = dict(os.environ)
            args = ["systemd-analyze"]
            if user:
                runtime = os.path.join(tmp, "runtime")
                os.mkdir(runtime, 0o700)
                env["XDG_RUNTIME_DIR"] = runtime
                args.append("--user")
            # --man=no: the man page is installed with the package, not here.
            out = subprocess.run(args + ["verify", "--man=no"] + names, capture_output=True, text=True, env=env,
                                 timeout=120)
            self.assertEqual((out.returncode, out.stdout + out.stderr), (0, ""))

    def test_system_units(self):
        self.verify(UNITS, user=False)

    def test_user_units(self):
        self.verify(os.path.join(UNITS, "user"), user=True)

    def test_units_ask_for_what_the_daemon_does(self):
        for folder in (UNITS, os.path.join(UNITS, "user")):
            with open(os.path.join(folder, "mpctld.service")) as f:
                text = f.read()
            for line in ("Type=notify", "NotifyAccess=main", "KillMode=mixed", "UMask=0077", "StateDirectory=mpctl",
                         "Requires=mpctld.socket"):
                self.assertIn(line + "\n", text, folder)
            # Supervised, so that a crash keeps the tasks; a reload is an upgrade in place, which keeps them too.
            self.assertRegex(text, r"(?m)^ExecStart=/usr/bin/mpctld --foreground --supervise\b", folder)
            self.assertRegex(text, r"(?m)^ExecReload=/usr/bin/mpctl --no-autostart .*daemon upgrade$", folder)
        with open(os.path.join(UNITS, "mpctld.socket")) as f:
            text = f.read()
        for line in ("ListenStream=/run/mpctl/mpctld.sock", "SocketGroup=mpctl", "SocketMode=0660"):
            self.assertIn(line + "\n", text)
        with open(os.path.join(UNITS, "user", "mpctld.socket")) as f:
            self.assertIn("ListenStream=%t/mpctl/mpctld.sock\n", f.read())


if __name__ == "__main__":
    unittest.main()
