#!/usr/bin/env python3
"""mpctl.futures.ProcessPoolExecutor against the standard library's own executor tests (Debian's
libpython3.11-testsuite: test.test_concurrent_futures), run as they are, with our executor type in place of
concurrent.futures.ProcessPoolExecutor, against a real mpctld; then what only the daemon adds: every call a
task the shell sees, a worker that dies fails only its call, the daemon killed under the executor.

NOT_APPLICABLE lists the standard tests that cannot apply, each with why; they are skipped by name, so a
new test in the suite runs unless it is added there. The module needs the test suite; without it the
standard part is skipped (the README's setup installs the package)."""
import base64, json, os, pickle, signal, subprocess, sys, unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("MPCTL_TEST_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))
from py_case import DaemonCase  # noqa: E402
from py_daemon import Daemon  # noqa: E402
import mpctl  # noqa: E402
from mpctl.futures import BrokenProcessPool, ProcessPoolExecutor  # noqa: E402

try:
    from test import test_concurrent_futures as std
except ImportError:  # no libpython3.11-testsuite
    std = None

DEADLINE = 60

# Standard tests that cannot apply to an executor whose workers are the daemon's, and why.
NOT_APPLICABLE = {
    # They reach into the standard executor's private state: its worker processes (_processes), its
    # manager thread, its call queue. Our workers are the daemon's (`mpctl pool list` shows them).
    "test_killed_child": "kills one of executor._processes (our equivalent is test_a_worker_killed_...)",
    "test_max_tasks_per_child": "counts executor._processes (our equivalent is test_max_tasks_per_child_...)",
    "test_max_tasks_early_shutdown": "reads executor._processes",
    "test_idle_process_reuse_one": "reads executor._processes",
    "test_idle_process_reuse_multiple": "reads executor._processes",
    "test_saturation": "counts executor._processes",
    "test_processes_terminate": "reads executor._processes",
    "test_shutdown_deadlock_pickle": "reads executor._executor_manager_thread",
    # They run a script in a new interpreter that imports the executor by name from concurrent.futures:
    # they would test the standard one, whatever the type under test.
    "test_interpreter_shutdown": "tests concurrent.futures.ProcessPoolExecutor in a subprocess, not this type",
    "test_submit_after_interpreter_shutdown": "the same",
    "test_hang_gh83386": "the same",
    # It asserts that some of 50 calls ran although shutdown(cancel_futures=True) came right after their
    # submit: the standard executor counts a call as started once it is in its call queue; here a call
    # starts when a worker has it, and the workers of a new executor may not be up yet: all are cancelled.
    "test_cancel_futures": "counts calls in the standard executor's call queue as started",
    "test_ressources_gced_in_workers": "needs a multiprocessing Manager's Event pickled into the call",
    # The start method is the daemon's worker's, not a multiprocessing context's.
    "test_max_tasks_per_child_defaults_to_spawn_context": "reads executor._mp_context",
}


def stdin_of_call(payload):
    """Run in a worker: what the call's task has as stdin (descriptor 0), and PAYLOAD back."""
    return os.readlink("/proc/self/fd/0"), payload


def context_of_call():
    """Run in a worker: the last entry of the call's sys.path, its sys.argv, and whether its task's environment
    carried them."""
    return sys.path[-1], list(sys.argv), "MPCTL_CALL_CONTEXT" in os.environ


def setUpModule():
    """One daemon for the standard tests, which make their executors without a socket: found in the
    environment, as a program's would be."""
    daemon = Daemon()
    unittest.addModuleCleanup(daemon.stop)
    saved = {name: os.environ.get(name) for name in ("MPCTL_SOCKET", "MPCTL_NO_AUTOSTART")}
    unittest.addModuleCleanup(restore_environ, saved)
    os.environ.update(MPCTL_SOCKET=daemon.socket, MPCTL_NO_AUTOSTART="1")


def restore_environ(saved):
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class MpctlPoolMixin:
    """In place of test_concurrent_futures' ProcessPool*Mixin: our executor, made without an mp_context (no
    `ctx`); get_context(), which some tests pass as mp_context, answers a spawn context, which ours accepts
    and ignores."""
    executor_type = ProcessPoolExecutor

    def get_context(self):
        import multiprocessing
        return multiprocessing.get_context("spawn")

    def run(self, result=None):
        reason = NOT_APPLICABLE.get(self._testMethodName)
        if reason is not None:
            test_method = getattr(self, self._testMethodName)
            setattr(self, self._testMethodName, unittest.skip(f"cannot apply: {reason}")(test_method))
        return super().run(result)


if std is not None:
    _BASES = (std.BaseTestCase,)

    class MpctlWaitTests(MpctlPoolMixin, std.WaitTests, std.ExecutorMixin, *_BASES):
        pass

    class MpctlAsCompletedTests(MpctlPoolMixin, std.AsCompletedTests, std.ExecutorMixin, *_BASES):
        pass

    class MpctlExecutorTest(MpctlPoolMixin, std.ProcessPoolExecutorTest, std.ExecutorMixin, *_BASES):
        pass

    class MpctlShutdownTest(MpctlPoolMixin, std.ProcessPoolShutdownTest, std.ExecutorMixin, *_BASES):
        pass

    class MpctlDeadlockTest(MpctlPoolMixin, std.ExecutorDeadlockTest, std.ExecutorMixin, *_BASES):
        pass

    class MpctlInitializerTest(MpctlPoolMixin, std.InitializerMixin, *_BASES):
        pass

    class MpctlFailingInitializerTest(MpctlPoolMixin, std.FailingInitializerMixin, *_BASES):
        """Without `ctx`, the standard test looks for the initializer's traceback in this process's log, as
        for a thread pool (with one, it hands the child a multiprocessing Queue, which only a spawned child
        can take): ours logs there what the worker said."""


class ProcessPoolOnTheDaemon(DaemonCase):
    """What the daemon adds to the standard executor's behaviour."""

    def setUp(self):
        super().setUp()
        self.ex = ProcessPoolExecutor(2, socket=self.daemon.socket)
        self.addCleanup(self.ex.shutdown, cancel_futures=True)

    def test_every_call_is_a_task_the_shell_sees_and_output_goes_to_its_logs(self):
        future = self.ex.submit(print, "from the call", flush=True)
        self.assertIsNone(future.result(DEADLINE))
        status = json.loads(self.mpctl_ok(["status", str(future.task_id), "--json"]))
        self.assertEqual((status["state"], status["argv"][:2]), ("succeeded", ["-m", "mpctl.call"]))
        self.assertEqual(self.mpctl_ok(["logs", str(future.task_id)]), b"from the call\n")

    def test_calls_on_one_worker_each_have_their_own_output_and_an_empty_stdin(self):
        # One worker: the calls share its process, and the streams a call prints to (kept between calls).
        ex = ProcessPoolExecutor(1, socket=self.daemon.socket)
        self.addCleanup(ex.shutdown)
        code = ("import sys\nprint('out', {n})\nprint('err', {n}, file=sys.stderr)\nsys.stdout.write('tail')\n"
                "assert sys.stdin.read() == '', 'stdin is /dev/null, as in a multiprocessing child'")
        futures = [ex.submit(exec, code.format(n=n)) for n in range(3)]
        for n, future in enumerate(futures):
            self.assertIsNone(future.result(DEADLINE))
            task = str(future.task_id)
            self.assertEqual(self.mpctl_ok(["logs", task]), f"out {n}\ntail".encode())
            self.assertEqual(self.mpctl_ok(["logs", task, "--stderr"]), f"err {n}\n".encode())
        # A call that closes its streams leaves none closed for the next.
        self.assertIsNone(ex.submit(exec, "import sys\nsys.stdout.close()\nsys.stderr.close()").result(DEADLINE))
        after = ex.submit(print, "after", flush=True)
        self.assertIsNone(after.result(DEADLINE))
        self.assertEqual(self.mpctl_ok(["logs", str(after.task_id)]), b"after\n")

    def test_a_small_call_travels_in_its_spec_and_one_too_large_for_it_through_a_file(self):
        small, large = bytes(range(256)) * 4, bytes(range(256)) * 400  # 1 KiB and 100 KiB, pickled with the call
        # What the call's stdin was: /dev/null, the call having come in its run (the spec's input, which the
        # worker takes there: no memory file), or the caller's file.
        self.assertEqual(self.ex.submit(stdin_of_call, small).result(DEADLINE), ("/dev/null", small))
        where, back = self.ex.submit(stdin_of_call, large).result(DEADLINE)
        self.assertEqual((os.path.dirname(where), back), (os.path.realpath(self.ex._spool), large))
        # The large one's call file and result file go once its future is settled.
        self.wait_for(lambda: os.listdir(self.ex._spool) == [], "the calls' files to be removed")

    def test_each_call_runs_with_the_sys_path_and_argv_of_its_submit_through_its_env_while_they_fit(self):
        saved = list(sys.path), list(sys.argv)
        self.addCleanup(lambda: (sys.path.__setitem__(slice(None), saved[0]),
                                 sys.argv.__setitem__(slice(None), saved[1])))
        first = self.ex.submit(context_of_call)
        sys.path.append("/nonexistent/mpctl-test")
        second = self.ex.submit(context_of_call)
        sys.argv[:] = ["prog", "one"]
        again = self.ex.submit(context_of_call)
        sys.path.append("/x" * 5000)  # no longer fits in an environment: it goes with the call itself
        third = self.ex.submit(context_of_call)
        sys.path.pop()
        fourth = self.ex.submit(context_of_call)
        self.assertEqual(first.result(DEADLINE), (saved[0][-1], saved[1], True))
        self.assertEqual(second.result(DEADLINE), ("/nonexistent/mpctl-test", saved[1], True))
        self.assertEqual(again.result(DEADLINE), ("/nonexistent/mpctl-test", ["prog", "one"], True))
        self.assertEqual(third.result(DEADLINE), ("/x" * 5000, ["prog", "one"], False))
        self.assertEqual(fourth.result(DEADLINE), ("/nonexistent/mpctl-test", ["prog", "one"], True))

    def test_a_brief_as_completed_status_is_the_full_ones_id_state_reason_codes_error_and_result(self):
        with mpctl.Client(self.daemon.socket) as client:
            argvs = (["sh", "-c", "exit 3"], ["true"], ["/nonexistent/mpctl-brief"], ["sh", "-c", "kill -9 $$"])
            ids = [client.call("task.submit", argv=argv, cwd="/")["id"] for argv in argvs]
            ids.append(self.ex.submit(divmod, 7, 2).task_id)  # a call: a result
            for brief in (True, False):
                got = {}
                client.call("task.as_completed", ids=ids, brief=brief, timeout=DEADLINE,
                            on_notification=lambda method, p: got.setdefault(p["task"]["id"], p["task"]))
                full = {t["id"]: t for t in client.call("task.get", ids=ids)["tasks"]}
                self.assertEqual(sorted(got), sorted(ids))
                for task_id in ids:
                    keys = ["id", "state", "reason", "exit_code", "signal", "error"] + (
                        ["result"] if "result" in full[task_id] else [])
                    self.assertEqual(got[task_id], {k: full[task_id][k] for k in keys} if brief else full[task_id])
            self.assertEqual([full[i]["state"] for i in ids], ["failed", "succeeded", "failed", "failed", "succeeded"])
            self.assertEqual((full[ids[3]]["signal"], "result" in full[ids[4]]), (9, True))
            with self.assertRaises(mpctl.Error):  # task.wait answers with whole statuses: no brief there
                client.call("task.wait", ids=ids, brief=True)

    def test_a_small_result_comes_back_with_its_task_and_is_journaled_with_it(self):
        small = self.ex.submit(divmod, 17, 5)
        self.assertEqual(small.result(DEADLINE), (3, 2))
        big = self.ex.submit(bytes, 20000)  # pickled, more than a done message carries: through a file
        self.assertEqual(big.result(DEADLINE), bytes(20000))

        def status(task):
            return json.loads(self.mpctl_ok(["status", str(task), "--json"]))
        self.assertEqual(pickle.loads(base64.b64decode(status(small.task_id)["result"])), ("ok", (3, 2)))
        self.assertNotIn("result", status(big.task_id))
        self.wait_for(lambda: os.listdir(self.ex._spool) == [], "the large result's file to be removed")
        # Kept with the task's end in the journal: the same after the daemon started again.
        self.ex.shutdown()
        self.mpctl_ok(["daemon", "stop"])
        self.daemon.wait_exit()
        self.daemon.start()
        self.assertEqual(pickle.loads(base64.b64decode(status(small.task_id)["result"])), ("ok", (3, 2)))

    def test_a_worker_killed_during_a_call_fails_only_that_call(self):
        self.assertEqual(self.ex.submit(abs, -1).result(DEADLINE), 1)
        killed = self.ex.submit(os._exit, 3)
        with self.assertRaises(BrokenProcessPool):
            killed.result(DEADLINE)
        self.assertEqual(self.ex.submit(pow, 2, 10).result(DEADLINE), 1024)  # the pool goes on
        self.assertFalse(self.ex._broken)

    def test_max_tasks_per_child_replaces_the_workers(self):
        ex = ProcessPoolExecutor(1, max_tasks_per_child=2, socket=self.daemon.socket)
        self.addCleanup(ex.shutdown)
        pids = [ex.submit(os.getpid).result(DEADLINE) for _ in range(6)]
        self.assertEqual([pids.count(p) for p in dict.fromkeys(pids)], [2, 2, 2], pids)

    def test_the_daemon_killed_under_the_executor_fails_its_futures(self):
        import time
        futures = [self.ex.submit(time.sleep, 60) for _ in range(3)]
        self.daemon.proc.send_signal(signal.SIGKILL)
        for future in futures:
            with self.assertRaises(ConnectionError):
                future.result(DEADLINE)

    def test_a_script_s_own_functions_run_in_the_workers(self):
        script = os.path.join(self.daemon.dir, "script.py")
        with open(script, "w") as f:
            f.write("import os, sys\n"
                    "sys.path.insert(0, sys.argv[1])\n"
                    "from mpctl.futures import ProcessPoolExecutor\n"
                    "def cube(x):\n    return x ** 3\n"
                    "if __name__ == '__main__':\n"
                    "    with ProcessPoolExecutor(2) as ex:\n"
                    "        print(list(ex.map(cube, range(5))), ex.submit(os.getpid).result() != os.getpid())\n")
        done = subprocess.run(["/usr/bin/python3", script, os.path.join(SOURCE_DIR, "python")], env=self.env,
                              capture_output=True, timeout=DEADLINE)
        self.assertEqual((done.returncode, done.stdout), (0, b"[0, 1, 8, 27, 64] True\n"), done.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
