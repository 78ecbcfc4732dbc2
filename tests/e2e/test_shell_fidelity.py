#!/usr/bin/env python3
"""mpctl against the shell it stands in for: what a command gets and what comes back must be what bash, xargs
and GNU parallel give, byte for byte. Each test runs the reference and mpctl on the same input in the same run
and compares; where mpctl differs on purpose, the README says so next to the rule it follows."""
import json, os, shlex, shutil, signal, subprocess, sys, tempfile, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_daemon import BIN, Connection, Daemon, until  # noqa: E402

MPCTL = os.path.join(BIN, "mpctl")
# Every byte a word, a value or a line can hold: all but NUL (and, in lines, the newline).
BYTES = [bytes([b]) for b in range(1, 256)]


def read(path):
    with open(path) as f:
        return f.read()


def words_of(output):
    """The words of `printf '%s\\0' WORD...` output."""
    assert output.endswith(b"\0"), output
    return output[:-1].split(b"\0")


class ShellFidelity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()
        cls.env = dict(os.environ, MPCTL_SOCKET=cls.daemon.socket,
                       MPCTL_STATE_DIR=os.path.join(cls.daemon.dir, "state"), MPCTL_NO_AUTOSTART="1",
                       NO_COLOR="1")
        cls.scratch = tempfile.TemporaryDirectory(prefix="mpt-fid-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.scratch.cleanup()

    def mpctl(self, args, input=None, cwd=None, env=None, check=True):
        r = subprocess.run([MPCTL] + args, input=input, cwd=cwd, env=env or self.env, capture_output=True,
                           timeout=300)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def status(self, task_id):
        return json.loads(self.mpctl(["status", "--json", str(task_id)]).stdout)

    def tasks_named(self, name):
        out = self.mpctl(["list", "--json", "--name", name]).stdout
        return [json.loads(line) for line in out.splitlines()]

    def task_named(self, name):
        """The one task named NAME, once it exists."""
        until(lambda: len(self.tasks_named(name)) == 1, f"task {name} to exist")
        return self.tasks_named(name)[0]

    def finished(self, name):
        until(lambda: self.task_named(name)["state"] in ("succeeded", "failed", "cancelled"), f"{name} to end")
        return self.task_named(name)

    def start_run(self, args):
        """`mpctl run ARGS` in the background, its output readable line by line."""
        return subprocess.Popen([MPCTL, "run"] + args, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)

    @staticmethod
    def kill(run):
        run.kill()
        run.wait()
        run.stdout.close()

    # Bytes -----------------------------------------------------------------------------------------------

    def test_argv_words_reach_the_command_byte_for_byte(self):
        words = [b"x" + b + b"y" for b in BYTES] + BYTES + [b"\xff\xfe", b"\xed\xa0\x80", b"\xf0\x9f\x98",
                                                           "\U0001F4FF".encode(), "\ufdd0".encode() + b"41"]
        reference = subprocess.run([b"printf", b"%s\\0"] + words, capture_output=True, check=True).stdout
        got = self.mpctl(["run", "--", "printf", "%s\\0"] + words).stdout
        self.assertEqual(words_of(got), words)
        self.assertEqual(got, reference)

    def test_status_json_gives_the_words_back_exactly_and_a_terminal_gets_them_escaped(self):
        words = [b"a\xffb", b"new\nline", b"\x1b[41mred", "caf\u00e9".encode(), b"\xc0\xaf"]
        task_id = int(self.mpctl(["submit", "--", "printf", "%s"] + words).stdout)
        self.mpctl(["wait", str(task_id)])
        # Python's surrogateescape is the protocol's encoding: os.fsencode gives the bytes back.
        argv = [os.fsencode(w) for w in self.status(task_id)["argv"]]
        self.assertEqual(argv, [b"printf", b"%s"] + words)
        shown = self.mpctl(["status", str(task_id)]).stdout
        command = [line for line in shown.split(b"\n") if line.startswith(b"command:")][0]
        self.assertNotIn(b"\x1b", shown)
        self.assertNotIn(b"\xff", shown)
        # What the terminal shows is a command bash reads back as the same words.
        text = command[len(b"command:"):].strip()
        back = subprocess.run([b"bash", b"-c", b"set -- " + text + b"; shift; shift; printf '%s\\0' \"$@\""],
                              capture_output=True, check=True).stdout
        self.assertEqual(words_of(back), words)

    def test_environment_names_and_values_reach_the_command_byte_for_byte(self):
        env = dict(self.env)
        env = {k.encode(): v.encode() for k, v in env.items()}
        for b in BYTES:
            env[b"MPT_%02X" % b[0]] = b"<" + b + b">"
        env[b"MPT_NAME_\xff"] = b"value"
        env[b"MPT_MIXED"] = b"\xff\xfe=\n"
        got = self.mpctl(["run", "--", "env", "-0"], env=env).stdout
        reference = subprocess.run(["env", "-0"], env=env, capture_output=True, check=True).stdout

        def ours(output):
            return sorted(e for e in words_of(output) if e.startswith(b"MPT_"))

        self.assertEqual(len(ours(reference)), len(BYTES) + 2)
        self.assertEqual(ours(got), ours(reference))

    def test_a_working_directory_of_any_bytes_is_the_command_s(self):
        root = os.fsencode(self.scratch.name)
        for b in BYTES:
            if b == b"/":
                continue
            d = os.path.join(root, b"d" + b + b"\xff")
            os.makedirs(d, exist_ok=True)
            got = self.mpctl(["run", "--", "pwd"], cwd=d).stdout
            self.assertEqual(got, d + b"\n", b)

    def test_map_items_from_lines_and_after_triple_colon_are_every_byte_of_them(self):
        lines = [b"l" + b + b"\xfe" for b in BYTES if b != b"\n"]
        stdin = b"\n".join(lines) + b"\n"
        reference = subprocess.run(["xargs", "-d", "\\n", "-n", "1", "printf", "%s\\0"], input=stdin,
                                   capture_output=True, check=True).stdout
        got = self.mpctl(["map", "--", "printf", "%s\\0"], input=stdin).stdout
        self.assertEqual(words_of(got), lines)
        self.assertEqual(got, reference)
        words = [b"w" + b for b in BYTES]
        got = self.mpctl([b"map", b"--", b"printf", b"%s\\0", b":::"] + words).stdout
        self.assertEqual(words_of(got), words)

    def test_bytes_survive_a_restart_of_the_daemon(self):
        word = b"keep\xff\x01\xfe"
        task_id = int(self.mpctl(["submit", "--", "printf", "%s", word]).stdout)
        self.mpctl(["wait", str(task_id)])
        conn = Connection(self.daemon.socket)
        conn.result("daemon.stop", {})
        conn.close()
        self.daemon.wait_exit()
        self.daemon.start()
        self.assertEqual(os.fsencode(self.status(task_id)["argv"][2]), word)
        self.assertEqual(self.mpctl(["logs", str(task_id)]).stdout, word)

    # A client that goes away -----------------------------------------------------------------------------

    def test_a_closed_stdout_ends_the_task_with_sigpipe_and_exit_141_as_in_bash(self):
        reference = subprocess.run(["bash", "-c", "yes | head -1; echo ${PIPESTATUS[0]}"], capture_output=True,
                                   check=True).stdout
        got = subprocess.run(["bash", "-c", shlex.quote(MPCTL) + " run --name yes-head -- yes | head -1; "
                              "echo ${PIPESTATUS[0]}"], env=self.env, capture_output=True, check=True,
                             timeout=300).stdout
        self.assertEqual(reference, b"y\n141\n")
        self.assertEqual(got, reference)
        task = self.finished("yes-head")
        self.assertEqual((task["state"], task["signal"]), ("failed", signal.SIGPIPE))

    def test_a_run_that_is_killed_hangs_its_running_task_up(self):
        run = self.start_run(["--name", "hung-up", "--", "sh", "-c", "echo started; exec sleep 600"])
        self.assertEqual(run.stdout.readline(), b"started\n")
        self.kill(run)
        task = self.finished("hung-up")
        self.assertEqual((task["state"], task["signal"]), ("failed", signal.SIGHUP))
        self.assertIn("client went away", task["error"])

    def test_a_task_that_ignores_the_hang_up_runs_on_as_under_nohup(self):
        marks = os.path.join(self.scratch.name, "nohup-marks")
        go = os.path.join(self.scratch.name, "nohup-go")
        script = (f"trap 'echo hup >> {marks}' HUP; echo started; "
                  f"while [ ! -e {go} ]; do sleep 0.01; done; echo done >> {marks}")
        run = self.start_run(["--name", "nohup", "--shell", "--", script])
        self.assertEqual(run.stdout.readline(), b"started\n")
        self.kill(run)
        until(lambda: os.path.exists(marks) and read(marks) == "hup\n", "the task to hear SIGHUP")
        open(go, "w").close()
        self.assertEqual(self.finished("nohup")["state"], "succeeded")
        self.assertEqual(read(marks), "hup\ndone\n")

    def test_a_run_that_is_killed_while_its_task_is_queued_cancels_it_and_nothing_runs(self):
        self.mpctl(["pool", "set", "fid-one", "--workers", "1"])
        self.mpctl(["submit", "--pool", "fid-one", "--name", "fid-blocker", "--", "sleep", "600"])
        marker = os.path.join(self.scratch.name, "queued-ran")
        run = self.start_run(["--pool", "fid-one", "--name", "fid-queued", "--", "touch", marker])
        until(lambda: self.tasks_named("fid-queued") != [], "the run's task to be queued")
        self.assertEqual(self.task_named("fid-queued")["state"], "pending")
        self.kill(run)
        task = self.finished("fid-queued")
        self.assertEqual(task["state"], "cancelled")
        self.assertIn("client went away", task["error"])
        blocker = self.task_named("fid-blocker")["id"]
        self.mpctl(["cancel", "--force", str(blocker)])
        self.finished("fid-blocker")
        self.assertFalse(os.path.exists(marker))

    def test_ctrl_c_on_a_run_whose_task_is_queued_cancels_it_and_exits_130(self):
        self.mpctl(["pool", "set", "fid-ctrlc", "--workers", "1"])
        self.mpctl(["submit", "--pool", "fid-ctrlc", "--name", "fid-ctrlc-blocker", "--", "sleep", "600"])
        marker = os.path.join(self.scratch.name, "ctrl-c-ran")
        run = self.start_run(["--pool", "fid-ctrlc", "--name", "fid-ctrlc-queued", "--", "touch", marker])
        until(lambda: self.tasks_named("fid-ctrlc-queued") != [], "the run's task to be queued")
        run.send_signal(signal.SIGINT)
        self.assertEqual(run.wait(120), 128 + signal.SIGINT)
        run.stdout.close()
        task = self.finished("fid-ctrlc-queued")
        self.assertEqual((task["state"], task["started_at"]), ("cancelled", None))
        blocker = self.task_named("fid-ctrlc-blocker")["id"]
        self.mpctl(["cancel", "--force", str(blocker)])
        self.finished("fid-ctrlc-blocker")
        self.assertFalse(os.path.exists(marker))
        # On a running task Ctrl-C is still SIGINT to it, and the exit is the task's: 130 for its death.
        run = self.start_run(["--name", "fid-ctrlc-running", "--", "sh", "-c", "echo started; exec sleep 600"])
        self.assertEqual(run.stdout.readline(), b"started\n")
        run.send_signal(signal.SIGINT)
        self.assertEqual(run.wait(120), 128 + signal.SIGINT)
        run.stdout.close()
        task = self.finished("fid-ctrlc-running")
        self.assertEqual((task["state"], task["signal"]), ("failed", signal.SIGINT))

    # Halts ------------------------------------------------------------------------------------------------

    def parallel(self, args):
        self.assertTrue(shutil.which("parallel"), "GNU parallel is the reference here: apt-get install parallel")
        return subprocess.run(["parallel", "--will-cite", "-q"] + args, capture_output=True, timeout=300)

    def test_halt_soon_starts_nothing_after_the_failure_as_gnu_parallel(self):
        script = "sleep 0.1; echo $1; exit $1"
        for _ in range(3):  # the slot the failure frees is there to take at once, every time
            reference = self.parallel(["-j1", "--halt", "soon,fail=1", "sh", "-c", script, "_", ":::",
                                       "1", "0", "0", "0"])
            got = self.mpctl(["map", "-j1", "--halt", "soon,fail=1", "--", "sh", "-c", script, "_", ":::", "1",
                              "0", "0", "0"], check=False)
            self.assertEqual(reference.stdout, b"1\n")
            self.assertEqual(got.stdout, reference.stdout)
            self.assertEqual(got.returncode, reference.returncode)

    def test_halt_now_runs_nothing_after_the_failure_as_gnu_parallel(self):
        for tool in ("parallel", "mpctl"):
            effects = os.path.join(self.scratch.name, f"halt-now-{tool}")
            script = f"echo $1 >> {effects}; exit $1"
            args = ["-j1", "--halt", "now,fail=1", "sh", "-c", script, "_", ":::", "0", "1", "0", "0"]
            for _ in range(3):
                if tool == "parallel":
                    self.parallel(args)
                else:
                    self.mpctl(["map"] + args[:3] + ["--"] + args[3:], check=False)
            self.assertEqual(read(effects), "0\n1\n" * 3, tool)

    # Map's items, columns and start failures -------------------------------------------------------------

    def test_several_triple_colons_give_the_cross_product_as_gnu_parallel(self):
        for template in (["echo"], ["echo", "{2}-{1}"], ["echo", "[{}]"], ["printf", "%s|", "{1}", "{3}"]):
            args = template + [":::", "a b", "c", ":::", "1", "2", ":::", "x"]
            reference = self.parallel(["-k"] + args)
            got = self.mpctl(["map", "--"] + args)
            self.assertEqual(got.stdout, reference.stdout, template)

    def test_columns_split_where_colsep_matches_as_gnu_parallel(self):
        lines = b"  a  b\nx,,z\n\tt1\tt2\nx , y \n"
        for colsep in (" ", " +", ",", "\\s+", "\\t"):
            args = ["--colsep", colsep, "-k", "echo", "[{1}]", "[{2}]", "[{3}]"]
            reference = subprocess.run(["parallel", "--will-cite", "-q"] + args, input=lines, capture_output=True,
                                       timeout=300)
            got = self.mpctl(["map", "--colsep", colsep, "--", "echo", "[{1}]", "[{2}]", "[{3}]"], input=lines)
            self.assertEqual(got.stdout, reference.stdout, colsep)
        # Without --colsep {1} is the whole item, as in parallel.
        got = self.mpctl(["map", "--", "echo", "[{1}]"], input=b"  a  b\n")
        self.assertEqual(got.stdout, self.parallel(["echo", "[{1}]", ":::", "  a  b"]).stdout)

    def test_map_says_why_a_task_could_not_start_as_run_does(self):
        got = self.mpctl(["map", "--", "no-such-command-fid", ":::", "a"], check=False)
        ran = self.mpctl(["run", "--", "no-such-command-fid", "a"], check=False)
        reference = subprocess.run(["xargs", "no-such-command-fid"], input=b"a\n", capture_output=True)
        self.assertEqual(got.returncode, reference.returncode)
        self.assertEqual(got.returncode, ran.returncode)
        self.assertIn(b"command not found: no-such-command-fid", got.stderr)
        self.assertEqual(got.stderr.split(b": ", 2)[2], ran.stderr.split(b": ", 2)[2])
        # An item too long for execve: 126 and the reason, where xargs refuses the line.
        long_line = b"a" * 200000 + b"\n"
        too_long = self.mpctl(["map", "--", "echo"], input=long_line, check=False)
        self.assertEqual(too_long.returncode, 126)
        self.assertIn(b"Argument list too long", too_long.stderr)

    def test_merged_inside_the_task_stdout_and_stderr_keep_the_order_bash_gives(self):
        # The documented way to the exact interleaving: let the task merge its streams.
        script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done 2>&1"
        reference = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
        got = self.mpctl(["run", "--shell", "--", script]).stdout
        self.assertEqual(got, reference)
        self.assertEqual(reference.count(b"\n"), 10)

    # Redirections -----------------------------------------------------------------------------------------

    def test_a_stdin_file_that_cannot_be_opened_exits_1_with_why_as_bash(self):
        missing = os.path.join(self.scratch.name, "no-such-input")
        reference = subprocess.run(["bash", "-c", f"cat < {shlex.quote(missing)}"], capture_output=True)
        got = self.mpctl(["run", "--stdin", missing, "--", "cat"], check=False)
        self.assertEqual(got.returncode, reference.returncode)
        self.assertEqual(got.returncode, 1)
        self.assertIn(b"No such file or directory", reference.stderr)
        self.assertIn(missing.encode() + b": No such file or directory", got.stderr)

    # What the submitting shell hands down -----------------------------------------------------------------

    def test_the_shell_s_umask_and_raised_niceness_are_the_task_s_unless_given(self):
        mpctl = shlex.quote(MPCTL)
        for setup, command in (("umask 077", "umask"), ("umask 002", "umask"), ("renice -n 7 -p $$ >/dev/null", "nice")):
            reference = subprocess.run(["bash", "-c", f"{setup}; sh -c {command}"], capture_output=True, check=True)
            got = subprocess.run(["bash", "-c", f"{setup}; {mpctl} run -- sh -c {command}"], env=self.env,
                                 capture_output=True, check=True, timeout=300)
            self.assertEqual(got.stdout, reference.stdout, setup)
        # The options still win.
        got = subprocess.run(["bash", "-c", f"umask 077; renice -n 7 -p $$ >/dev/null; "
                              f"{mpctl} run --umask 022 --nice 3 --shell -- 'umask; nice'"], env=self.env,
                             capture_output=True, check=True, timeout=300)
        self.assertEqual(got.stdout, b"0022\n3\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
