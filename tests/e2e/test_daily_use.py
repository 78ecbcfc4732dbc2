#!/usr/bin/env python3
"""Terminal manners (issue 13): what mpctl says on a terminal while it blocks, and only there. mpctl runs with
its stderr on a real pseudo-terminal (pty); the same command without one must stay silent, for scripts."""
import json, os, pty, re, subprocess, sys, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_daemon import BIN, Daemon, until  # noqa: E402

MPCTL = os.path.join(BIN, "mpctl")


class OnATerminal(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.env = dict(os.environ, MPCTL_SOCKET=self.daemon.socket,
                        MPCTL_STATE_DIR=os.path.join(self.daemon.dir, "state"), MPCTL_NO_AUTOSTART="1",
                        NO_COLOR="1")

    def tearDown(self):
        self.daemon.stop()

    def mpctl(self, args, **kw):
        return subprocess.run([MPCTL] + args, env=self.env, capture_output=True, timeout=300, **kw)

    def start_on_pty(self, args):
        """`mpctl ARGS` with its stderr on a pty: (process, master fd, what it said so far)."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([MPCTL] + args, env=self.env, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        return proc, master

    @staticmethod
    def read_until(master, text, seconds=60):
        said = b""
        def more():
            nonlocal said
            said += os.read(master, 4096)
            return text in said
        until(more, f"{text!r} on the terminal", seconds)
        return said

    @staticmethod
    def read_rest(master):
        said = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                return said
            if not chunk:
                return said
            said += chunk

    def test_a_queued_run_says_where_it_waits(self):
        self.assertEqual(self.mpctl(["pool", "set", "one", "1"]).returncode, 0)
        blocker = int(self.mpctl(["submit", "--pool", "one", "--", "sleep", "600"]).stdout)
        run, master = self.start_on_pty(["run", "--pool", "one", "--", "echo", "ran"])
        said = self.read_until(master, b"busy")
        self.assertIn(b"queued in pool one (1/1 busy, 1 queued)", said)
        self.assertEqual(self.mpctl(["cancel", "--force", str(blocker)]).returncode, 0)
        out, _ = run.communicate(timeout=120)
        os.close(master)
        self.assertEqual((run.returncode, out), (0, b"ran\n"))
        # Not on a terminal: nothing said.
        blocker = int(self.mpctl(["submit", "--pool", "one", "--", "sleep", "600"]).stdout)
        quiet = subprocess.Popen([MPCTL, "run", "--pool", "one", "--", "true"], env=self.env,
                                 stderr=subprocess.PIPE)
        until(lambda: json.loads(self.mpctl(["pool", "list", "--json"]).stdout.splitlines()[1])["pending"] == 1,
              "the quiet run to be queued")
        self.assertEqual(self.mpctl(["cancel", "--force", str(blocker)]).returncode, 0)
        _, err = quiet.communicate(timeout=120)
        self.assertEqual((quiet.returncode, err), (0, b""))

    def test_wait_on_several_names_each_one_that_did_not_succeed(self):
        ids = [self.mpctl(["submit", "--", "sh", "-c", f"exit {code}"]).stdout.decode().strip()
               for code in (0, 3, 0, 5)]
        proc, master = self.start_on_pty(["wait"] + ids)
        proc.wait(120)
        proc.stdout.close()
        said = self.read_rest(master)
        os.close(master)
        self.assertEqual(proc.returncode, 3)
        self.assertIn(f"mpctl: task {ids[1]} failed (exit 3)".encode(), said)
        self.assertIn(f"mpctl: task {ids[3]} failed (exit 5)".encode(), said)
        self.assertNotIn(f"task {ids[0]} ".encode(), said)
        self.assertEqual(self.mpctl(["wait"] + ids).stderr, b"")

    def test_daemon_stop_says_what_it_waits_for(self):
        task = int(self.mpctl(["submit", "--", "sh", "-c", "echo started; exec sleep 600"]).stdout)
        until(lambda: json.loads(self.mpctl(["status", "--json", str(task)]).stdout)["state"] == "running",
              "the task to run")
        proc, master = self.start_on_pty(["daemon", "stop"])
        said = self.read_until(master, b"--now")
        self.assertIn(b"waiting for 1 running task to finish (mpctl daemon stop --now stops them)", said)
        self.assertEqual(self.mpctl(["kill", "--signal", "KILL", str(task)]).returncode, 0)
        proc.wait(120)
        proc.stdout.close()
        os.close(master)
        self.assertEqual(proc.returncode, 0)

    def on_pty(self, args, columns):
        """`mpctl ARGS` with its stdout on a pty COLUMNS wide: what it printed."""
        master, slave = pty.openpty()
        env = dict(self.env, COLUMNS=str(columns))
        proc = subprocess.Popen([MPCTL] + args, env=env, stdout=slave, stderr=subprocess.DEVNULL)
        os.close(slave)
        proc.wait(120)
        out = self.read_rest(master)
        os.close(master)
        return out.replace(b"\r\n", b"\n")

    def test_list_fits_the_terminal_escapes_control_characters_and_says_what_pending_tasks_wait_for(self):
        long_name = "a-name-much-longer-than-any-column-should-be"
        self.mpctl(["submit", "--name", long_name, "--", "sh", "-c", "echo " + "word " * 40])
        self.mpctl(["submit", "--shell", "--", "echo \033[41mBG\necho second"])
        self.assertEqual(self.mpctl(["pool", "set", "one", "1"]).returncode, 0)
        blocker = self.mpctl(["submit", "--pool", "one", "--", "sleep", "600"]).stdout.decode().strip()
        queued = self.mpctl(["submit", "--pool", "one", "--", "true"]).stdout.decode().strip()
        after = self.mpctl(["submit", "--after", blocker, "--", "true"]).stdout.decode().strip()
        until(lambda: json.loads(self.mpctl(["status", "--json", blocker]).stdout)["state"] == "running",
              "the blocker to run")
        out = self.on_pty(["list"], 80)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 6, out)  # the header and one row per task: no row broken in two
        for line in lines:
            self.assertLessEqual(len(line), 80, line)
        self.assertNotIn(b"\x1b", out)
        self.assertIn(b"echo \\e[41mBG\\n", out)
        self.assertIn("a-n\u2026", out.decode())  # at 80 columns the name gives way to the command
        # Narrower (or with tasks seconds old: "14:03 (3.10s ago)"), how long ago gives way too.
        narrow = self.on_pty(["list"], 76).decode().splitlines()
        self.assertEqual(len(narrow), 6, narrow)
        for line in narrow:
            self.assertLessEqual(len(line), 76, line)
        self.assertFalse(re.search(r"\((now|.* ago)\)", "\n".join(narrow)), narrow)
        roomy = self.on_pty(["list"], 160).decode()
        self.assertIn("a-name-much-longer-than\u2026", roomy)  # names get 24 columns at most
        self.assertTrue(all(len(line) <= 160 for line in roomy.splitlines()))
        # When, in local time, and how long ago ("now" within the second), where there is room for it (at 80
        # columns it gives way once the tasks are seconds old).
        self.assertRegex(roomy.splitlines()[1], r"\d\d:\d\d \((now|[0-9.hms]+ ago)\)")
        rows = {line.split()[0]: line for line in lines[1:]}
        self.assertIn("pending (queued)", rows[queued])
        self.assertIn(f"pending (after {blocker})", rows[after])
        # --wide, or not a terminal: everything.
        wide = self.on_pty(["list", "--wide"], 80).decode()
        self.assertIn(long_name, wide)
        self.assertIn("word " * 39, wide)
        self.assertIn(long_name.encode(), self.mpctl(["list"]).stdout)
        self.mpctl(["cancel", "--force", blocker])

    def test_map_says_when_it_reads_its_items_from_the_terminal(self):
        master, slave = pty.openpty()
        proc = subprocess.Popen([MPCTL, "map", "--no-progress", "--", "echo"], env=self.env, stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        os.write(master, b"typed\n\x04")  # a line, then Ctrl-D
        out, err = proc.communicate(timeout=120)
        os.close(master)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out, b"typed\n")
        self.assertIn(b"map reads its items from the terminal, one per line (Ctrl-D ends them)", err)
        self.assertNotIn(b"terminal", self.mpctl(["map", "--", "echo"], input=b"piped\n").stderr)

    def test_logs_of_several_tasks_are_headed_as_tail_heads_files(self):
        a = self.mpctl(["submit", "--label", "grp=x", "--", "printf", "a1\\na2\\n"]).stdout.decode().strip()
        b = self.mpctl(["submit", "--label", "grp=x", "--", "printf", "b1\\n"]).stdout.decode().strip()
        other = self.mpctl(["submit", "--", "printf", "other\\n"]).stdout.decode().strip()
        self.assertEqual(self.mpctl(["wait", a, b, other]).returncode, 0)
        want = f"==> task {a} <==\na1\na2\n\n==> task {b} <==\nb1\n".encode()
        self.assertEqual(self.mpctl(["logs", a, b]).stdout, want)
        self.assertEqual(self.mpctl(["logs", "--label", "grp=x"]).stdout, want)
        self.assertEqual(self.mpctl(["logs", a]).stdout, b"a1\na2\n")  # one task: no header
        # Followed side by side: every task's output, each line under its task's header.
        follow = self.mpctl(["logs", "--follow", a, b]).stdout
        self.assertEqual(follow, want)
        missing = self.mpctl(["logs", "99999", a])
        self.assertEqual(missing.returncode, 4)
        self.assertIn(b"a1", missing.stdout)

    def test_logs_of_a_retried_task_heads_each_attempt_on_a_terminal_only(self):
        task = self.mpctl(["submit", "--retries", "1", "--", "sh", "-c", "echo try; exit 1"]).stdout.decode().strip()
        other = self.mpctl(["submit", "--", "echo", "once"]).stdout.decode().strip()
        self.assertEqual(self.mpctl(["wait", task, other]).returncode, 1)
        self.assertEqual(self.mpctl(["logs", task]).stdout, b"try\ntry\n")  # a pipe: the bytes alone
        master, slave = pty.openpty()
        for args, want in (([task], b"==> attempt 1 <==\r\ntry\r\n\r\n==> attempt 2 <==\r\ntry\r\n"),
                           ([other, task], b"==> task " + other.encode() + b" <==\r\nonce\r\n\r\n==> task " +
                            task.encode() + b", attempt 1 <==\r\ntry\r\n\r\n==> task " + task.encode() +
                            b", attempt 2 <==\r\ntry\r\n"),
                           (["--attempt", "2", task], b"try\r\n")):
            proc = subprocess.Popen([MPCTL, "logs"] + args, env=self.env, stdout=slave, stderr=subprocess.PIPE)
            _, err = proc.communicate(timeout=120)
            self.assertEqual((proc.returncode, err), (0, b""))
            self.assertEqual(self.read_until(master, want[-6:]), want, args)
        os.close(slave)
        os.close(master)

    def test_run_says_where_each_retry_begins_on_a_terminal(self):
        proc, master = self.start_on_pty(["run", "--retries", "2", "--", "sh", "-c", "echo try; exit 3"])
        out, _ = proc.communicate(timeout=120)
        said = self.read_rest(master)
        self.assertEqual((proc.returncode, out), (3, b"try\ntry\ntry\n"))
        self.assertIn(b"attempt 2 of 3", said)
        self.assertIn(b"attempt 3 of 3", said)
        self.assertNotIn(b"attempt 1", said)


if __name__ == "__main__":
    unittest.main(verbosity=2)
