#!/usr/bin/env python3
"""The mpctl Python package's client and command executor (python/mpctl/client.py, futures.py) against a
real mpctld: mpctl.Client's calls, errors, threads, notifications, autostart and a daemon that dies under
it; CommandExecutor's futures against subprocess.run itself (the same CompletedProcess, the same
exceptions), concurrent.futures.wait and as_completed on them, cancel, shutdown, dependencies, and a
future that the shell follows (`mpctl wait ID`) while Python waits on it too.

Every wait has a deadline (60 s); nothing sleeps for a result."""
import base64, concurrent.futures, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time, unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("MPCTL_TEST_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))
from py_case import MPCTL, DaemonCase  # noqa: E402
import mpctl  # noqa: E402
from mpctl.futures import CommandExecutor, TaskError, TaskFuture  # noqa: E402

DEADLINE = 60
SLEEP = ["sleep", "60"]  # a task that runs until something ends it


def kill_group_quietly(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class ClientTest(DaemonCase):
    def setUp(self):
        super().setUp()
        self.client = mpctl.Client(self.daemon.socket, autostart=False)
        self.addCleanup(self.client.close)

    def test_calls_return_results_and_errors_carry_their_code_and_name(self):
        self.assertEqual(self.client.call("daemon.status")["workers"], 2)
        cases = [(("task.get",), {"id": 424242}, mpctl.UnknownId, -32001, "unknown_id"),
                 (("task.get",), {"id": "x"}, mpctl.InvalidParams, -32602, "invalid_params"),
                 (("no.such",), {}, mpctl.MethodNotFound, -32601, "method_not_found"),
                 (("lock.acquire",), {"path": "/nonexistent-dir/x/y", "nonblock": True}, mpctl.DaemonIOError,
                  -32007, "io_error")]
        for (method,), params, cls, code, name in cases:
            with self.subTest(method=method, params=params):
                with self.assertRaises(cls) as caught:
                    self.client.call(method, params)
                self.assertIsInstance(caught.exception, mpctl.Error)
                self.assertEqual((caught.exception.code, caught.exception.name, caught.exception.data["error"]),
                                 (code, name, name))
        with self.assertRaises(mpctl.InvalidRequest):  # over the 1 MiB line: refused before it is sent
            self.client.call("task.submit", argv=["echo", "x" * (1 << 20)])
        self.assertEqual(self.client.call("daemon.status")["workers"], 2)  # and the connection goes on
        self.assertIsInstance(mpctl.UnknownTask("x"), LookupError)
        self.assertIs(mpctl.UnknownTask, mpctl.UnknownId)
        self.assertTrue(issubclass(mpctl.Timeout, TimeoutError))

    def test_one_client_serves_many_threads_and_a_parked_wait_blocks_none_of_them(self):
        task = self.client.call("task.submit", argv=SLEEP, cwd="/")["id"]
        parked = self.client.call_async("task.wait", ids=[task])  # answered only when the task ends
        errors, counts = [], [0] * 8

        def worker(n):
            try:
                for _ in range(50):
                    self.assertEqual(self.client.call("task.get", id=task)["id"], task)
                    counts[n] += 1
            except BaseException as error:
                errors.append(error)
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        self.assertEqual((errors, counts), ([], [50] * 8))
        self.assertFalse(parked.done())
        self.client.call("task.cancel", id=task, force=True)
        self.assertEqual(parked.result(DEADLINE)["tasks"][0]["state"], "cancelled")

    def test_notifications_go_to_the_call_that_streams_them(self):
        task = self.client.call("task.submit", argv=["sh", "-c", "echo out; echo err >&2"], cwd="/")["id"]
        self.client.call("task.wait", id=task, timeout=DEADLINE)
        seen = []
        final = self.client.call("task.logs", id=task, stream="both",
                                 on_notification=lambda method, params: seen.append((method, params["stream"])))
        self.assertEqual(final["task"]["state"], "succeeded")
        self.assertEqual(sorted(seen), [("task.output", "stderr"), ("task.output", "stdout")])

    def test_a_daemon_that_dies_fails_the_calls_in_flight_and_every_later_one(self):
        task = self.client.call("task.submit", argv=SLEEP, cwd="/")["id"]
        parked = self.client.call_async("task.wait", id=task)
        self.daemon.proc.kill()
        self.daemon.proc.wait(DEADLINE)
        with self.assertRaises(mpctl.ConnectionLost):
            parked.result(DEADLINE)
        with self.assertRaises(mpctl.ConnectionLost):
            self.client.call("daemon.status")

    def test_input_is_the_task_s_stdin_on_every_attempt_in_a_warm_worker_and_after_a_restart(self):
        data = bytes(range(256)) * 3
        encoded = base64.b64encode(data).decode()

        def output(task, attempt=None):
            with open(self.client.call("task.get", id=task)["stdout_path"], "rb") as f:
                return f.read()
        # Every attempt reads it from the start: the first fails after copying it, the retry succeeds.
        marker = os.path.join(self.daemon.dir, "tried")
        retried = self.client.call("task.submit", cwd="/", input=encoded, retries=1,
                                   shell=f"cat; test -e {marker} || {{ touch {marker}; exit 1; }}")["id"]
        status = self.client.call("task.wait", id=retried, timeout=DEADLINE)["tasks"][0]
        self.assertEqual((status["state"], status["attempts"]), ("succeeded", 2))
        self.assertEqual(output(retried), data)
        # A warm worker gets it as descriptor 0, as any task's stdin.
        package = os.path.join(SOURCE_DIR, "python")
        self.client.call("pool.set", name="warm-input", workers=1,
                         worker=["env", f"PYTHONPATH={package}", sys.executable, "-m", "mpctl.worker", "--in-process"])
        warm = self.client.call("task.submit", cwd="/", pool="warm-input", input=encoded,
                                argv=["-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"])["id"]
        self.assertEqual(self.client.call("task.wait", id=warm, timeout=DEADLINE)["tasks"][0]["state"], "succeeded")
        self.assertEqual(output(warm), data[::-1])
        # Journaled with the task: one still queued when the daemon stops reads it after the next start.
        self.client.call("pool.set", name="one", workers=1)
        blocker = self.client.call("task.submit", cwd="/", pool="one", argv=SLEEP)["id"]
        queued = self.client.call("task.submit", cwd="/", pool="one", input=encoded, argv=["cat"])["id"]
        self.assertEqual(self.client.call("task.get", id=queued)["state"], "pending")
        self.client.call("daemon.stop", now=True, kill_after=1)  # the blocker is cancelled, the other kept
        self.daemon.wait_exit()
        self.client.close()
        self.daemon.start()
        self.client = mpctl.Client(self.daemon.socket, autostart=False)
        self.addCleanup(self.client.close)
        self.assertEqual(self.client.call("task.get", id=blocker)["state"], "cancelled")
        self.assertEqual(self.client.call("task.wait", id=queued, timeout=DEADLINE)["tasks"][0]["state"], "succeeded")
        self.assertEqual(output(queued), data)

    def test_no_daemon_without_autostart_and_autostart_through_mpctl(self):
        directory = tempfile.mkdtemp(dir=self.daemon.dir)
        sock = os.path.join(directory, "auto.sock")
        with self.assertRaises(mpctl.NoDaemon) as caught:
            mpctl.Client(sock, autostart=False)
        self.assertIn("autostart is off", str(caught.exception))
        saved = os.environ.get("MPCTL_STATE_DIR")
        os.environ["MPCTL_STATE_DIR"] = os.path.join(directory, "state")  # the started daemon's, not the user's
        try:
            client = mpctl.Client(sock, autostart=True, mpctl=MPCTL)
        finally:
            if saved is None:
                del os.environ["MPCTL_STATE_DIR"]
            else:
                os.environ["MPCTL_STATE_DIR"] = saved
        with client:
            status = client.call("daemon.status")
            self.assertEqual((status["socket"], status["state_dir"]), (sock, os.path.join(directory, "state")))
            client.call("daemon.stop")
        deadline = time.monotonic() + DEADLINE
        while os.path.exists(f"/proc/{status['pid']}") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(f"/proc/{status['pid']}"), "the autostarted daemon stopped")


class ClientFramingTest(unittest.TestCase):
    """The client's reader against a server that writes what the protocol allows in awkward pieces: a
    notification split at every byte, hundreds of lines in one write, a line of megabytes in many writes (a
    task.wait or task.list of thousands of tasks), a blank line. No daemon: the server is a socket here."""

    def test_lines_split_anywhere_or_packed_together_come_through_whole_and_in_order(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "fake.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(1)
        self.addCleanup(server.close)
        big = {"tasks": [{"id": n, "name": "x" * 200} for n in range(20000)]}  # some 4.5 MB on one line

        def serve():
            conn, _ = server.accept()
            with conn:
                reader = conn.makefile("rb")
                request = json.loads(reader.readline())
                note = json.dumps({"jsonrpc": "2.0", "method": "task.completed", "params": {"n": 0}}).encode()
                for byte in range(len(note)):  # one byte a write
                    conn.sendall(note[byte:byte + 1])
                conn.sendall(b"\n\n" + b"".join(
                    json.dumps({"jsonrpc": "2.0", "method": "task.completed", "params": {"n": n}}).encode() + b"\n"
                    for n in range(1, 501)))
                answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": big}).encode() + b"\n"
                for start in range(0, len(answer), 7001):
                    conn.sendall(answer[start:start + 7001])
                reader.readline()  # until the client closes
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = mpctl.Client(path, autostart=False)
        seen = []
        client.subscribe("task.completed", lambda params: seen.append(params["n"]))
        self.assertEqual(client.call("task.list", timeout=DEADLINE), big)
        self.assertEqual(seen, list(range(501)))
        client.close()
        thread.join(DEADLINE)


class PackageTest(DaemonCase):
    def test_pip_installs_the_package_and_it_runs_from_where_it_was_installed(self):
        """`pip install ./python` with what Debian has (no index: the installed setuptools builds it), into
        a directory of its own; a python3 that finds mpctl only there runs a CommandExecutor task."""
        work = tempfile.mkdtemp(dir=self.daemon.dir)
        shutil.copytree(os.path.join(SOURCE_DIR, "python"), os.path.join(work, "src"))  # pip builds in place
        target = os.path.join(work, "site")
        done = subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "--no-build-isolation", "--no-index",
                               "--no-deps", "--target", target, os.path.join(work, "src")],
                              capture_output=True, timeout=300, env=dict(self.env, PIP_ROOT_USER_ACTION="ignore"))
        self.assertEqual(done.returncode, 0, done.stderr.decode())
        code = ("import mpctl, mpctl.futures, sys; print(mpctl.__file__.startswith(sys.argv[1]));"
                "ex = mpctl.futures.CommandExecutor(); print(ex.submit(['echo', 'installed']).result().stdout);"
                "ex.shutdown()")
        ran = subprocess.run(["/usr/bin/python3", "-c", code, target], capture_output=True, timeout=DEADLINE,
                             env={**self.env, "PYTHONPATH": target})
        self.assertEqual((ran.returncode, ran.stdout), (0, b"True\nb'installed\\n'\n"), ran.stderr.decode())


class CommandExecutorTest(DaemonCase):
    def setUp(self):
        super().setUp()
        self.ex = CommandExecutor(max_workers=2, socket=self.daemon.socket)
        self.addCleanup(self.ex.shutdown, cancel_futures=True)

    def same_as_subprocess(self, args, **kw):
        """ARGS through the executor and through subprocess.run(capture_output=True): the same outcome."""
        want = subprocess.run(args, shell=isinstance(args, str), capture_output=True, timeout=DEADLINE, **kw)
        got = self.ex.submit(args, **kw).result(DEADLINE)
        self.assertEqual((got.args, got.returncode, got.stdout, got.stderr),
                         (want.args, want.returncode, want.stdout, want.stderr))
        return got

    def test_results_are_what_subprocess_run_gives(self):
        self.same_as_subprocess(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.same_as_subprocess("printf '%s|' \"$FOO\" $PWD", env={"FOO": "b a r"}, cwd="/tmp")
        self.same_as_subprocess(["sh", "-c", "kill -9 $$"])  # returncode -9
        self.same_as_subprocess(["cat"], input=b"\x00\xff" * 70000)  # more than a spec's input: a descriptor
        self.same_as_subprocess(["cat"], input=b"\x00\xff" * 1000)  # in the spec
        self.same_as_subprocess(["cat"], input=b"")
        self.same_as_subprocess(["head", "-c", "300000", "/dev/zero"])

    def test_exceptions_are_what_subprocess_run_raises(self):
        with self.assertRaises(subprocess.CalledProcessError) as caught:
            self.ex.submit(["sh", "-c", "echo o; echo e >&2; exit 4"], check=True).result(DEADLINE)
        self.assertEqual((caught.exception.returncode, caught.exception.cmd, caught.exception.stdout,
                          caught.exception.stderr), (4, ["sh", "-c", "echo o; echo e >&2; exit 4"], b"o\n", b"e\n"))
        with self.assertRaises(subprocess.TimeoutExpired) as caught:
            self.ex.submit(["sh", "-c", "echo started; exec sleep 60"], timeout=1).result(DEADLINE)
        self.assertEqual((caught.exception.timeout, caught.exception.stdout), (1, b"started\n"))
        with self.assertRaises(FileNotFoundError) as caught:
            self.ex.submit(["no-such-command-here"]).result(DEADLINE)
        self.assertEqual(caught.exception.filename, "no-such-command-here")

    def test_wait_and_as_completed_and_the_tasks_are_the_daemons(self):
        futures = [self.ex.submit(["sh", "-c", f"exit {n}"], name=f"f{n}") for n in range(6)]
        done, pending = concurrent.futures.wait(futures, timeout=DEADLINE)
        self.assertEqual((len(done), pending), (6, set()))
        self.assertEqual(sorted(f.result().returncode for f in
                                concurrent.futures.as_completed(futures, timeout=DEADLINE)), list(range(6)))
        self.assertTrue(all(isinstance(f, TaskFuture) for f in futures))
        listed = {json.loads(line)["id"]: json.loads(line) for line in
                  self.mpctl_ok(["list", "--json"]).decode().splitlines()}
        for n, future in enumerate(futures):
            self.assertEqual((listed[future.task_id]["name"], listed[future.task_id]["exit_code"]), (f"f{n}", n))

    def test_the_shell_follows_a_future_while_python_waits_on_it(self):
        gate = os.path.join(self.daemon.dir, "gate")
        future = self.ex.submit(["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; echo through; exit 7"])
        shell = subprocess.Popen([MPCTL, "wait", str(future.task_id)], env=self.env, stdout=subprocess.PIPE)
        python = concurrent.futures.ThreadPoolExecutor(1).submit(future.result, DEADLINE)
        self.assertFalse(future.done())
        open(gate, "w").close()
        self.assertEqual(python.result(DEADLINE).stdout, b"through\n")
        self.assertEqual(shell.wait(DEADLINE), 7)  # mpctl wait exits with the task's code
        shell.stdout.close()

    def test_cancel_of_a_queued_future_and_not_of_a_running_one(self):
        running = [self.ex.submit(SLEEP) for _ in range(2)]  # both slots
        queued = self.ex.submit(["true"])
        deadline = time.monotonic() + DEADLINE
        while not all(f.running() for f in running):
            self.assertLess(time.monotonic(), deadline, "two tasks running")
            time.sleep(0.05)
        self.assertTrue(queued.cancel())
        self.assertTrue(queued.cancelled())
        self.assertEqual(concurrent.futures.wait([queued], timeout=DEADLINE).done, {queued})
        with self.assertRaises(concurrent.futures.CancelledError):
            queued.result()
        self.assertEqual(self.client_status(queued.task_id)["state"], "cancelled")
        self.assertFalse(running[0].cancel())  # running: left alone, as Future.cancel does
        self.assertEqual(self.client_status(running[0].task_id)["state"], "running")
        self.mpctl_ok(["cancel", "--force", str(running[0].task_id), str(running[1].task_id)])
        for future in running:  # cancelled by someone else while running: so is the future
            with self.assertRaises(concurrent.futures.CancelledError):
                future.result(DEADLINE)
            self.assertTrue(future.cancelled())

    def client_status(self, task_id):
        return json.loads(self.mpctl_ok(["status", str(task_id), "--json"]))

    def test_shutdown_with_cancel_futures_cancels_what_is_queued(self):
        ex = CommandExecutor(max_workers=1, socket=self.daemon.socket)
        gate = os.path.join(self.daemon.dir, "gate")
        first = ex.submit(["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"])
        deadline = time.monotonic() + DEADLINE
        while not first.running():  # what has started is left to finish
            self.assertLess(time.monotonic(), deadline, "the first task running")
            time.sleep(0.01)
        rest = [ex.submit(["true"]) for _ in range(3)]
        ex.shutdown(wait=False, cancel_futures=True)  # the cancels are made before it returns
        self.assertTrue(all(f.cancelled() for f in rest))
        open(gate, "w").close()
        self.assertEqual(first.result(DEADLINE).returncode, 0)
        with self.assertRaises(RuntimeError):
            ex.submit(["true"])

    def test_after_runs_on_the_success_of_its_dependencies(self):
        path = os.path.join(self.daemon.dir, "order")
        first = self.ex.submit(["sh", "-c", f"sleep 0.3; echo first >> {path}"])
        second = self.ex.submit(["sh", "-c", f"echo second >> {path}"], after=[first])
        self.assertEqual(second.result(DEADLINE).returncode, 0)
        with open(path) as f:
            self.assertEqual(f.read(), "first\nsecond\n")
        failed = self.ex.submit(["false"])
        never = self.ex.submit(["true"], after=[failed])
        with self.assertRaises(TaskError) as caught:
            never.result(DEADLINE)
        self.assertEqual(caught.exception.status["reason"], "dependency")

    def test_submissions_past_a_request_line_go_in_several_batches_and_one_too_big_fails_alone(self):
        word = "x" * 100000  # 11 of these pass 1 MiB together: the executor splits them over requests
        futures = [self.ex.submit(["sh", "-c", 'printf %s "$1" | wc -c', "sh", word]) for _ in range(12)]
        too_big = self.ex.submit(["echo", "y" * (1 << 20)])
        after = self.ex.submit(["true"])
        self.assertEqual([f.result(DEADLINE).stdout for f in futures], [b"100000\n"] * 12)
        with self.assertRaises(mpctl.InvalidRequest):
            too_big.result(DEADLINE)
        self.assertEqual(after.result(DEADLINE).returncode, 0)

    def test_map_gives_results_in_order(self):
        results = list(self.ex.map([["sh", "-c", f"sleep 0.{3 - n}; echo {n}"] for n in range(4)], timeout=DEADLINE))
        self.assertEqual([r.stdout for r in results], [b"0\n", b"1\n", b"2\n", b"3\n"])

    def test_the_daemon_killed_under_a_running_executor_fails_its_futures(self):
        futures = [self.ex.submit(SLEEP) for _ in range(3)]
        deadline = time.monotonic() + DEADLINE
        while sum(f.running() for f in futures) < 2:
            self.assertLess(time.monotonic(), deadline, "two tasks running")
            time.sleep(0.05)
        for future in futures:  # their groups outlive the killed daemon: killed on cleanup
            pid = self.client_status(future.task_id)["pid"]
            if pid:
                self.addCleanup(kill_group_quietly, pid)
        self.daemon.proc.send_signal(signal.SIGKILL)
        for future in futures:
            with self.assertRaises(mpctl.ConnectionLost):
                future.result(DEADLINE)
        with self.assertRaises(mpctl.ConnectionLost):
            self.ex.submit(["true"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
