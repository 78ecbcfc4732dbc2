#!/usr/bin/env python3
"""The Python warm worker (python/mpctl/worker.py, proto/PROTOCOL.md "Warm workers") driven as the daemon
drives it, without the daemon: started with one end of a socketpair at descriptor 3, stdin /dev/null and its
output to a log; run messages carry the task's stdin, stdout and stderr as SCM_RIGHTS descriptors (files here,
as the daemon's). Each task is also run by /usr/bin/python3 itself with the same argv, cwd, environment and
stdin: the worker must give the same stdout and stderr bytes (tracebacks included) and the same exit status.
Then what only a worker has: --init and --preload paid once and seen by tasks, tasks isolated from each
other, an unknown kind, a run short of descriptors, descriptors on a part of a line, end of file.

Every wait has a deadline of 60 s (a socket timeout, a process wait); nothing sleeps."""
import base64, json, os, pickle, signal, socket, subprocess, tempfile, textwrap, unittest

SOURCE_DIR = os.environ.get("MPCTL_TEST_SOURCE_DIR") or \
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3"
TIMEOUT = 60
# The environment of the workers and their tasks: nothing from whoever runs the tests (PYTHONUNBUFFERED...).
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def python3(argv, cwd, env, stdin):
    """ARGV run by /usr/bin/python3 itself, with files for stdin, stdout and stderr: (status, out, err)."""
    with tempfile.TemporaryFile() as i, tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        i.write(stdin)
        i.seek(0)
        code = subprocess.run(argv, executable=PYTHON, cwd=cwd, env=env, stdin=i, stdout=o, stderr=e,
                              timeout=TIMEOUT).returncode
        o.seek(0)
        e.seek(0)
        return ({"exit_code": code} if code >= 0 else {"signal": -code}), o.read(), e.read()


class WorkerHarness:
    """`python3 -m mpctl.worker OPTIONS` started as the daemon starts one: its socket at descriptor 3 and no
    other descriptor above 2, stdin /dev/null, stdout and stderr to a log, in DIRECTORY."""

    def __init__(self, directory, *options, env=None):
        self.dir, self.tasks, self.buffer, self.dead = directory, 0, b"", False
        self.log = os.path.join(directory, "worker.log")
        self.sock, theirs = socket.socketpair()
        self.sock.settimeout(TIMEOUT)

        def at_3():  # in the child, before exec: close_fds would close 3 after this, hence close_fds=False
            os.dup2(theirs.fileno(), 3)
            os.set_inheritable(3, True)
            for fd in map(int, os.listdir("/proc/self/fd")):
                if fd > 3:
                    try:
                        os.set_inheritable(fd, False)
                    except OSError:  # listdir's own, closed since
                        pass

        env = {**BASE_ENV, "PYTHONPATH": os.path.join(SOURCE_DIR, "python"), "PYTHONDONTWRITEBYTECODE": "1",
               **(env or {})}  # no __pycache__ left in the source tree
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([PYTHON, "-m", "mpctl.worker", *options], cwd=directory, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False,
                                         preexec_fn=at_3)
        theirs.close()
        self.hello = self.receive()

    def receive(self, eof_ok=False):
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data and eof_ok:
                return None
            if not data:
                raise AssertionError(f"the worker closed its socket; its log:\n{read(self.log).decode()}")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def run(self, argv, cwd, env, stdin=b"", chunks=None, extra_fds=(), **members):
        """Run a task: (status, stdout, stderr). CHUNKS: split points of the line, the descriptors on the first;
        EXTRA_FDS go after the three (the caller's to close)."""
        self.tasks += 1
        paths = [os.path.join(self.dir, f"task{self.tasks}.{name}") for name in ("in", "out", "err")]
        with open(paths[0], "wb") as f:
            f.write(stdin)
        fds = [os.open(paths[0], os.O_RDONLY)] + [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                                                   for p in paths[1:]]
        run = {"task": self.tasks, "attempt": 1, "kind": "argv", "argv": argv, "cwd": cwd, **members}
        if env is not None:  # else the run has none: the worker keeps the last one it was sent
            run["env"] = [f"{k}={v}" for k, v in env.items()]
        line = json.dumps({"run": run}).encode() + b"\n"  # lone surrogates go out as \udcXX
        try:
            points = [0, *(chunks or []), len(line)]
            for n, (start, end) in enumerate(zip(points, points[1:])):
                socket.send_fds(self.sock, [line[start:end]], [*fds, *extra_fds] if n == 0 else [])
        finally:
            for fd in fds:
                os.close(fd)
        done = self.receive(eof_ok=True)
        if done is None:  # the worker ended during the task: the task's status is the worker's, as the daemon says
            self.dead = True
            code = self.proc.wait(TIMEOUT)
            return ({"exit_code": code} if code >= 0 else {"signal": -code}), read(paths[1]), read(paths[2])
        done = done["done"]
        assert done.pop("task") == self.tasks, done
        return done, read(paths[1]), read(paths[2])

    def close(self):
        """End of file on the worker's socket: its exit status."""
        self.sock.close()
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


class PythonWorkerTest(unittest.TestCase):
    """The default worker: a task per forked child. The worker itself never ends during a task."""
    OPTIONS = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="mpctl-worker-")
        cls.dir = cls.tmp.name
        cls.worker = WorkerHarness(cls.dir, *cls.OPTIONS)

    def tearDown(self):
        self.assertFalse(self.worker.dead, "the worker ended during a task")

    @classmethod
    def tearDownClass(cls):
        cls.worker.close()
        cls.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def new_worker(self, *options, env=None):
        directory = tempfile.mkdtemp(dir=self.dir)
        worker = WorkerHarness(directory, *self.OPTIONS, *options, env=env)
        self.addCleanup(worker.close)
        return worker

    def shared_worker(self):
        """The class's worker, alive: only --in-process's can end with a task, and another takes its place."""
        if self.worker.dead:
            self.worker.close()
            type(self).worker = WorkerHarness(self.dir, *self.OPTIONS)
        return self.worker

    def assertSameAsPython3(self, argv, cwd=None, env=None, stdin=b"", worker=None, **run):
        """The worker's task and python3 itself give the same: returns (status, stdout, stderr)."""
        cwd, env = cwd or self.dir, {**BASE_ENV, **(env or {})}
        got = (worker or self.shared_worker()).run(argv, cwd, env, stdin, **run)
        self.assertEqual(got, python3(argv, cwd, env, stdin))
        return got

    # ---- as python3 would ----

    def test_a_script_with_arguments_sees_python3s_argv_path_and_main_module(self):
        self.write("scripts/helper.py", "WHERE = 'beside the script'\n")
        self.write("scripts/show.py", """\
            import sys, helper
            print(sys.argv, sys.orig_argv, sys.path, __name__, __file__, helper.WHERE)
            print([(k, type(v).__name__) for k, v in globals().items()], __loader__.name, __spec__)
            """)
        status, out, _ = self.assertSameAsPython3(["python3", "scripts/show.py", "a", "b c"])
        self.assertEqual(status, {"exit_code": 0})
        self.assertIn(b"['scripts/show.py', 'a', 'b c']", out)
        self.assertIn(f"'{self.dir}/scripts', ".encode(), out)  # sys.path[0]: the script's directory
        self.assertNotIn(b"/python'", out)  # not the worker's own PYTHONPATH
        self.assertIn(b"beside the script", out)
        self.assertSameAsPython3(["python3", "./show.py"], cwd=os.path.join(self.dir, "scripts"))

    def test_dash_m_runs_a_module_found_on_the_tasks_pythonpath(self):
        self.write("pkgs/tool/__init__.py", "")
        self.write("pkgs/tool/cli.py", """\
            import sys
            print(sys.argv, sys.path[:3], __name__, __package__, __spec__.name, list(globals()))
            """)
        self.write("pkgs/tool/boom.py", "def go():\n    raise RuntimeError('from -m')\ngo()\n")
        env = {"PYTHONPATH": os.path.join(self.dir, "pkgs")}
        status, out, _ = self.assertSameAsPython3(["python3", "-m", "tool.cli", "x", "-m"], env=env)
        self.assertEqual(status, {"exit_code": 0})
        self.assertIn(f"['{self.dir}/pkgs/tool/cli.py', 'x', '-m'] ['{self.dir}', '{self.dir}/pkgs'".encode(), out)
        # python3 -m shows runpy's frames in a traceback: so does the worker, and none of its own.
        status, _, err = self.assertSameAsPython3(["python3", "-m", "tool.boom"], env=env)
        self.assertEqual(status, {"exit_code": 1})
        self.assertIn(b'File "<frozen runpy>"', err)
        self.assertIn(b"RuntimeError: from -m", err)
        self.assertNotIn(b"mpctl/worker.py", err)
        status, _, err = self.assertSameAsPython3(["python3", "-m", "no_such_module"], env=env)
        self.assertEqual((status, err), ({"exit_code": 1}, b"/usr/bin/python3: No module named no_such_module\n"))

    def test_dash_c_code_with_arguments(self):
        code = "import sys; print(sys.argv, sys.path[0] == '', list(globals()), __loader__)"
        status, out, _ = self.assertSameAsPython3(["python3", "-c", code, "p", "q"])
        self.assertEqual(status, {"exit_code": 0})
        self.assertIn(b"['-c', 'p', 'q'] True", out)
        self.assertSameAsPython3(["python3", "-cprint('attached')"])
        self.assertSameAsPython3(["python3", "-u", "-c", "import sys; print(sys.stdout.write_through)"])

    def test_a_directory_and_stdin_as_the_program(self):
        self.write("app/__main__.py", "import sys; print('app', sys.argv, sys.path[0], __file__)\n")
        self.assertEqual(self.assertSameAsPython3(["python3", "app", "z"])[1][:4], b"app ")
        _, out, _ = self.assertSameAsPython3(["python3", "-", "a"], stdin=b"import sys\nprint(sys.argv, __file__)\n")
        self.assertEqual(out, b"['-', 'a'] <stdin>\n")

    def test_exit_statuses_as_python3s(self):
        cases = {"import sys; sys.exit(3)": {"exit_code": 3},
                 "import sys; sys.exit('a message')": {"exit_code": 1},
                 "raise SystemExit": {"exit_code": 0},
                 "raise SystemExit(256 + 7)": {"exit_code": 7},
                 "raise SystemExit(2 ** 70)": {"exit_code": 255},
                 "import os; os._exit(9)": {"exit_code": 9},
                 "raise KeyboardInterrupt": {"signal": signal.SIGINT}}
        for code, status in cases.items():
            with self.subTest(code):
                self.assertEqual(self.assertSameAsPython3(["python3", "-c", code])[0], status)

    def test_an_uncaught_exception_prints_python3s_traceback(self):
        self.write("fail.py", """\
            def inner(n):
                return {}[n]

            try:
                inner('key')
            except KeyError as e:
                raise ValueError('while handling') from e
            """)
        status, out, err = self.assertSameAsPython3(["python3", "fail.py"])
        self.assertEqual((status, out), ({"exit_code": 1}, b""))
        self.assertTrue(err.startswith(f'Traceback (most recent call last):\n  File "{self.dir}/fail.py"'.encode()),
                        err)
        self.assertIn(b"ValueError: while handling", err)
        self.assertNotIn(b"mpctl/worker.py", err)
        self.write("bad_syntax.py", "print('never'\n")
        status, _, err = self.assertSameAsPython3(["python3", "bad_syntax.py"])
        self.assertEqual(status, {"exit_code": 1})
        self.assertIn(b"SyntaxError", err)

    def test_a_segfault_is_signal_11_and_output_buffering_is_the_tasks(self):
        code = "print('before'); import ctypes; ctypes.string_at(0)"
        status, out, _ = self.assertSameAsPython3(["python3", "-c", code])
        self.assertEqual((status, out), ({"signal": signal.SIGSEGV}, b""))  # block-buffered to a file: lost
        status, out, _ = self.assertSameAsPython3(["python3", "-c", code], env={"PYTHONUNBUFFERED": "1"})
        self.assertEqual((status, out), ({"signal": signal.SIGSEGV}, b"before\n"))

    def test_output_over_64_kib_on_stdout_and_stderr(self):
        code = "import sys\nfor i in range(5000): print(f'{i:08} out ' * 5); print(f'{i:08} err', file=sys.stderr)"
        _, out, err = self.assertSameAsPython3(["python3", "-c", code])
        self.assertEqual((len(out), len(err)), (5000 * 66, 5000 * 13))

    def test_reading_stdin(self):
        code = ("import sys; print(repr(sys.stdin.readline()), repr(sys.stdin.read()), sys.stdin.seekable(),"
                "sys.stdout.line_buffering, sys.stderr.line_buffering, sys.stdin.encoding)")
        _, out, _ = self.assertSameAsPython3(["python3", "-c", code], stdin=b"one\r\ntwo\nthree")
        self.assertTrue(out.startswith(b"'one\\r\\n' 'two\\nthree' True False True"), out)

    def test_an_input_in_the_run_is_the_tasks_stdin_as_python3_reads_a_file_of_it(self):
        data = b"one\r\ntwo\n\xff\x00three"
        argv = ["python3", "-c", "import sys, os; print(repr(sys.stdin.buffer.read()), sys.stdin.seekable(), "
                                 "os.readlink('/proc/self/fd/0').startswith(('/memfd:mpctl-input', '/tmp/')))"]
        # The run's descriptor 0 (an empty file here, /dev/null from the daemon) gives way to the input.
        got = self.shared_worker().run(argv, self.dir, BASE_ENV, b"", input=base64.b64encode(data).decode())
        self.assertEqual(got, python3(argv, self.dir, BASE_ENV, data))
        self.assertEqual(got[1], repr(data).encode() + b" True True\n")

    def test_a_call_in_the_runs_input_is_handed_to_mpctl_call_in_process_or_read_from_a_memory_file(self):
        result = os.path.join(self.dir, "call.result")
        in_process = "--in-process" in self.OPTIONS
        opened = []  # the descriptors open during each of two calls: the same (nothing a run brought is left)
        # A worker of its own: the shared one's earlier tasks may leave file objects that its collector closes
        # at any moment, between the two listings too.
        worker = self.new_worker()
        for function, args, expected in ((divmod, (17, 5), (3, 2)), (os.readlink, ("/proc/self/fd/0",), None),
                                         (os.listdir, ("/proc/self/fd",), opened), (os.listdir, ("/proc/self/fd",), opened)):
            call = pickle.dumps(([os.path.join(SOURCE_DIR, "python")], ["caller"], None, None,
                                 pickle.dumps((function, args, {}))))
            status, out, err = worker.run(["-m", "mpctl.call", result], self.dir, BASE_ENV, b"",
                                          input=base64.b64encode(call).decode())
            self.assertEqual((status.pop("exit_code"), out, err), (0, b"", b""))
            # In process, the outcome comes back in the done (mpctl.call's inline), else in the result file.
            self.assertEqual("result" in status, in_process)
            kind, value = pickle.loads(base64.b64decode(status["result"]) if in_process else read(result))
            self.assertEqual(kind, "ok")
            if expected is opened:
                opened.append(sorted(value, key=int))
            elif expected is not None:
                self.assertEqual(value, expected)
            else:  # in process, the bytes went to the call and its stdin is the worker's /dev/null
                self.assertEqual(value, "/dev/null" if in_process else "/memfd:mpctl-input (deleted)")
        self.assertEqual(opened[0], opened[1])

    def test_a_missing_script_exits_2_with_python3s_message(self):
        status, out, err = self.assertSameAsPython3(["python3", "missing.py"])
        self.assertEqual((status, out), ({"exit_code": 2}, b""))
        self.assertEqual(err, f"python3: can't open file '{self.dir}/missing.py': [Errno 2] No such file or "
                              "directory\n".encode())

    def test_unflushed_output_threads_and_atexit_at_the_end(self):
        code = textwrap.dedent("""\
            import atexit, threading
            atexit.register(print, '|atexit')
            started = threading.Event()
            threading.Thread(target=lambda: (started.wait(), print('|thread', end=''))).start()
            print('no newline', end='')
            started.set()
            """)
        status, out, _ = self.assertSameAsPython3(["python3", "-c", code])
        self.assertEqual((status, out), ({"exit_code": 0}, b"no newline|thread|atexit\n"))

    def test_the_tasks_environment_and_cwd_bytes_included(self):
        cwd = os.fsdecode(os.path.join(os.fsencode(self.dir), b"dir \xff"))
        os.makedirs(cwd, exist_ok=True)
        code = ("import os, subprocess, sys; print(ascii(os.getcwd()), ascii(sorted(os.environ.items())), flush=True);"
                "subprocess.run(['sh', '-c', 'printf \"%s|\" \"$FOO\"; pwd'])")
        status, out, _ = self.assertSameAsPython3(["python3", "-c", code], cwd=cwd, env={"FOO": "bar \udcfe"})
        self.assertEqual(status, {"exit_code": 0})
        self.assertIn(b"dir \\udcff", out)
        self.assertIn(b"('FOO', 'bar \\udcfe')", out)
        self.assertIn(b"bar \xfe|" + os.fsencode(cwd) + b"\n", out)  # a subprocess inherits them too
        self.assertNotIn(b"PYTHONPATH", out)  # the worker's own environment is not the task's

    def test_a_run_without_env_has_the_last_one_sent_not_what_a_task_made_of_it(self):
        worker = self.new_worker()
        show = "import os; print(os.environ.get('FOO'), os.environ.get('LEAK'))"
        leak = "import os; os.environ['FOO'] = 'changed'; os.environ['LEAK'] = '1'; " + show
        self.assertEqual(worker.run(["python3", "-c", show], self.dir, None), ({"exit_code": 0}, b"None None\n", b""))
        self.assertEqual(worker.run(["python3", "-c", leak], self.dir, {**BASE_ENV, "FOO": "bar \udcfe"}),
                         ({"exit_code": 0}, b"changed 1\n", b""))
        for _ in range(2):
            self.assertEqual(worker.run(["python3", "-c", show], self.dir, None),
                             ({"exit_code": 0}, b"bar \xfe None\n", b""))
        self.assertEqual(worker.run(["python3", "-c", show], self.dir, {**BASE_ENV, "FOO": "other"}),
                         ({"exit_code": 0}, b"other None\n", b""))
        self.assertEqual(worker.run(["python3", "-c", show], self.dir, None), ({"exit_code": 0}, b"other None\n", b""))

    def test_a_non_utf8_byte_in_an_argument(self):
        code = "import os, sys; print(ascii(sys.argv), flush=True); sys.stdout.buffer.write(os.fsencode(sys.argv[1]))"
        _, out, _ = self.assertSameAsPython3(["python3", "-c", code, "caf\udcff"])  # python3 gets b"caf\xff"
        self.assertEqual(out, b"['-c', 'caf\\udcff']\ncaf\xff")

    def test_no_descriptor_but_stdio_and_python3s_signal_dispositions(self):
        code = ("import os, signal; print(sorted(os.listdir('/proc/self/fd'))); print([signal.getsignal(s) for s in "
                "(signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGHUP)])")
        _, out, _ = self.assertSameAsPython3(["python3", "-c", code])
        self.assertTrue(out.startswith(b"['0', '1', '2', '3']\n[<built-in function default_int_handler>"), out)

    # ---- what only a worker has ----

    # Whether a task's imported modules, and what it did to them, are there for the next task (as Pool
    # leaves them, in an --in-process worker); everything else a task changes is never seen by the next.
    MODULES_STAY = False

    def test_tasks_are_isolated_from_each_other(self):
        leak = ("import json, os, sys, colorsys; json.LEAKED = 1; os.environ['LEAKED'] = '1'; os.chdir('/');"
                "sys.path.append('/leaked'); sys.modules['__main__'].x = 1; sys.argv.append('leaked')")
        self.assertEqual(self.worker.run(["python3", "-c", leak], self.dir, BASE_ENV)[0], {"exit_code": 0})
        look = ("import json, os, sys; print(hasattr(json, 'LEAKED'), 'LEAKED' in os.environ, os.getcwd(),"
                "'/leaked' in sys.path, 'colorsys' in sys.modules, 'x' in globals(), sys.argv)")
        _, out, _ = self.worker.run(["python3", "-c", look], self.dir, BASE_ENV)
        stay = self.MODULES_STAY
        self.assertEqual(out, f"{stay} False {self.dir} False {stay} False ['-c']\n".encode())

    def test_init_runs_once_per_worker_and_tasks_see_its_effect(self):
        mods = tempfile.mkdtemp(dir=self.dir)
        with open(os.path.join(mods, "initmod.py"), "w") as f:
            f.write("import os\nSTATE = 'cold'\ndef setup():\n    global STATE\n    STATE = 'warm'\n"
                    "    with open(os.environ['INIT_LOG'], 'a') as f:\n        f.write(f'setup {os.getpid()}\\n')\n")
        log = os.path.join(mods, "init.log")
        worker = self.new_worker("--init", "initmod:setup",
                                 env={"PYTHONPATH": f"{SOURCE_DIR}/python:{mods}", "INIT_LOG": log})
        for _ in range(3):  # the task's environment has no PYTHONPATH: initmod is there since the worker's set-up
            got = worker.run(["python3", "-c", "import initmod; print(initmod.STATE)"], self.dir, BASE_ENV)
            self.assertEqual(got, ({"exit_code": 0}, b"warm\n", b""))
        self.assertEqual(read(log), f"setup {worker.hello['hello']['pid']}\n".encode())
        self.assertEqual(worker.hello, {"hello": {"protocol": 1, "pid": worker.proc.pid,
                                                  "features": ["input", "keeps_env"]}})

    def test_preload_imports_modules_once(self):
        mods = tempfile.mkdtemp(dir=self.dir)
        log = os.path.join(mods, "imports.log")
        with open(os.path.join(mods, "preloadmod.py"), "w") as f:
            f.write(f"with open({log!r}, 'a') as f:\n    f.write('imported\\n')\n")
        worker = self.new_worker("--preload", "preloadmod,colorsys", "--preload", "wave",
                                 env={"PYTHONPATH": f"{SOURCE_DIR}/python:{mods}"})
        code = "import sys; print([m in sys.modules for m in ('preloadmod', 'colorsys', 'wave')]); import preloadmod"
        for _ in range(3):
            self.assertEqual(worker.run(["python3", "-c", code], self.dir, BASE_ENV),
                             ({"exit_code": 0}, b"[True, True, True]\n", b""))
        self.assertEqual(read(log), b"imported\n")

    def test_an_unknown_kind_exits_2_and_the_worker_goes_on(self):
        got = self.worker.run(["python3", "-c", "print(1)"], self.dir, BASE_ENV, kind="pickle")
        self.assertEqual(got, ({"exit_code": 2}, b"", b"mpctl.worker: unknown task kind 'pickle'\n"))
        self.assertEqual(self.worker.run(["python3", "-c", "print(2)"], self.dir, BASE_ENV),
                         ({"exit_code": 0}, b"2\n", b""))

    def test_unsupported_python3_options_and_a_bad_cwd_are_refused(self):
        status, _, err = self.worker.run(["python3", "-O", "x.py"], self.dir, BASE_ENV)
        self.assertEqual(status, {"exit_code": 2})
        self.assertIn(b"python3 option -O is not supported", err)
        status, _, err = self.worker.run(["python3", "-c", "pass"], self.dir + "/no/such/dir", BASE_ENV)
        self.assertEqual(status, {"exit_code": 126})
        self.assertIn(b"/no/such/dir': No such file or directory", err)

    LIMITS = ("import os, resource; print(os.getpriority(os.PRIO_PROCESS, 0), oct(os.umask(0)), "
              "resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_CORE), flush=True)")

    def limited_run(self, worker=None, **limits):
        """A LIMITS task run with LIMITS and a fourth descriptor, a file standing for cgroup.procs: (its
        result, what was written to the file)."""
        procs = os.path.join(tempfile.mkdtemp(dir=self.dir), "cgroup.procs")
        fd = os.open(procs, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            got = (worker or self.worker).run(["python3", "-c", self.LIMITS], self.dir, BASE_ENV, cgroup=True,
                                              extra_fds=[fd], **limits)
        finally:
            os.close(fd)
        return got, read(procs)

    def test_a_runs_limits_and_cgroup_apply_to_the_tasks_process_only(self):
        got, procs = self.limited_run(nice=5, umask=0o27, rlimits={"nofile": 64, "core": 0})
        self.assertEqual((got, procs), (({"exit_code": 0}, b"5 0o27 (64, 64) (0, 0)\n", b""), b"0"))
        # The worker's own are untouched: the next task, without limits, has python3's.
        self.assertSameAsPython3(["python3", "-c", self.LIMITS])
        got = self.worker.run(["python3", "-c", "pass"], self.dir, BASE_ENV, rlimits={"nofile": "many"})
        self.assertEqual(got[0], {"exit_code": 126})
        self.assertIn(b"mpctl.worker: cannot apply the task's limits", got[2])

    def test_descriptors_on_one_part_of_a_line_split_over_several_sends(self):
        got = self.worker.run(["python3", "-c", "print('split')"], self.dir, BASE_ENV, chunks=[1, 40, 41])
        self.assertEqual(got, ({"exit_code": 0}, b"split\n", b""))

    def test_a_run_with_fewer_than_3_descriptors_breaks_the_protocol(self):
        worker = self.new_worker()
        with open(os.devnull, "rb") as null:
            socket.send_fds(worker.sock, [b'{"run":{"task":1,"kind":"argv","argv":["true"],"cwd":"/","env":[]}}\n'],
                            [null.fileno()] * 2)
        self.assertEqual(worker.proc.wait(TIMEOUT), 1)
        self.assertIn(b"mpctl.worker: protocol broken: a run came with 2 descriptor(s), not 3", read(worker.log))

    def test_an_input_that_is_not_base64_breaks_the_protocol(self):
        worker = self.new_worker()
        with open(os.devnull, "rb") as null:
            socket.send_fds(worker.sock, [b'{"run":{"task":1,"kind":"argv","argv":["-c","pass"],"cwd":"/","env":[],'
                                          b'"input":"not base64!"}}\n'], [null.fileno()] * 3)
        self.assertEqual(worker.proc.wait(TIMEOUT), 1)
        self.assertIn(b"mpctl.worker: protocol broken: an input that is not base64", read(worker.log))

    def test_end_of_file_ends_the_worker_with_status_0(self):
        worker = self.new_worker()
        self.assertEqual(worker.run(["python3", "-c", "pass"], self.dir, BASE_ENV)[0], {"exit_code": 0})
        self.assertEqual(worker.close(), 0)
        self.assertEqual(read(worker.log), b"")


class InProcessWorkerTest(PythonWorkerTest):
    """`--in-process`: every task in the worker's own process. Each of PythonWorkerTest's tests holds as well
    (the same bytes and status as python3), but for those overridden here, which show what is documented to
    differ. A task that ends its process (os._exit, a signal, an uncaught KeyboardInterrupt) ends the worker,
    with the status python3 would have had: the daemon reports that and starts another worker."""
    OPTIONS = ("--in-process",)
    MODULES_STAY = True

    def tearDown(self):
        pass

    def test_the_tasks_that_end_the_process_end_the_worker_with_the_same_status(self):
        for code, status in {"import os; os._exit(9)": {"exit_code": 9},
                             "raise KeyboardInterrupt": {"signal": signal.SIGINT},
                             "import ctypes; ctypes.string_at(0)": {"signal": signal.SIGSEGV}}.items():
            with self.subTest(code):
                worker = self.new_worker()
                self.assertEqual(self.assertSameAsPython3(["python3", "-c", code], worker=worker)[0], status)
                self.assertTrue(worker.dead)
        self.assertEqual(self.assertSameAsPython3(["python3", "-c", "import sys; sys.exit(3)"])[0], {"exit_code": 3})
        self.assertFalse(self.worker.dead)

    def test_no_descriptor_but_stdio_and_python3s_signal_dispositions(self):
        # The worker's own descriptors are there (close-on-exec): a program the task starts has only 0-2.
        code = ("import subprocess, signal; print([signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM,"
                "signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGHUP)], flush=True); "
                "subprocess.run(['ls', '/proc/self/fd'], close_fds=False)")
        _, out, _ = self.assertSameAsPython3(["python3", "-c", code])
        self.assertTrue(out.startswith(b"[<built-in function default_int_handler>"), out)
        self.assertTrue(out.endswith(b"]\n0\n1\n2\n3\n"), out)  # 3: ls's own listing

    def test_a_runs_limits_and_cgroup_apply_to_the_tasks_process_only(self):
        # They could not be taken back from the worker's process: refused, and the worker goes on. A umask is.
        for limits in ({"nice": 5}, {"rlimits": {"nofile": 64}}, {}):  # {}: with the fourth descriptor only
            with self.subTest(limits):
                got, procs = self.limited_run(**limits)
                self.assertEqual((got, procs), (({"exit_code": 126}, b"", b"mpctl.worker: a task's nice, rlimits and "
                                                 b"cgroup need a worker that forks a process per task (not "
                                                 b"--in-process)\n"), b""))
        got = self.worker.run(["python3", "-c", "import os; print(oct(os.umask(0)))"], self.dir, BASE_ENV, umask=0o77)
        self.assertEqual(got, ({"exit_code": 0}, b"0o77\n", b""))
        self.assertSameAsPython3(["python3", "-c", self.LIMITS])  # the worker's umask is back

    def test_a_module_or_script_changed_between_tasks_runs_as_it_is_now(self):
        # The worker keeps what it compiled: never past a change of the file.
        env = {"PYTHONPATH": os.path.join(self.dir, "changing")}
        for n, text in enumerate(("print('one')\n", "print('second version')\n", "print('3')\n")):
            self.write("changing/changing_mod.py", text)
            self.write("changing_script.py", text)
            for argv in (["python3", "-m", "changing_mod"], ["python3", "changing_script.py"]):
                with self.subTest(n=n, argv=argv):
                    self.assertEqual(self.assertSameAsPython3(argv, env=env)[1], text[7:-3].encode() + b"\n")
        # The same name on another sys.path is another module.
        self.write("elsewhere/changing_mod.py", "print('elsewhere')\n")
        self.assertEqual(self.assertSameAsPython3(["python3", "-m", "changing_mod"],
                                                  env={"PYTHONPATH": os.path.join(self.dir, "elsewhere")})[1],
                         b"elsewhere\n")

    def test_the_workers_own_exit_handlers_run_at_its_end_not_a_tasks(self):
        mods = tempfile.mkdtemp(dir=self.dir)
        with open(os.path.join(mods, "exitmod.py"), "w") as f:
            f.write("import atexit\ndef setup():\n    atexit.register(print, 'worker exit handler')\n")
        worker = self.new_worker("--init", "exitmod:setup", env={"PYTHONPATH": f"{SOURCE_DIR}/python:{mods}"})
        code = "import atexit; atexit.register(print, 'task 1'); atexit.register(print, 'task 2')"
        for _ in range(2):
            self.assertEqual(worker.run(["python3", "-c", code], self.dir, BASE_ENV),
                             ({"exit_code": 0}, b"task 2\ntask 1\n", b""))
        self.assertEqual(worker.close(), 0)
        self.assertEqual(read(worker.log), b"worker exit handler\n")


if __name__ == "__main__":
    unittest.main()
