#!/usr/bin/env python3
"""Pools backed by Slurm (issue 21) through the real `mpctl` against a real `mpctld` and a real single-node
Slurm (Debian 12's slurm-wlm, started by tests/slurm/start-slurm.sh in a directory of this test's own and
stopped with it): a task runs as a batch job with its argv, cwd and environment, its exit code, signal and
output come back through the status file, the job id is in its status; cancel (running, with the signal
passed on to the command; pending, cancelled in Slurm), a timeout (and sbatch's --time), a job scancel'd
outside mpctl, an unknown partition and a missing sbatch (reason spawn, Slurm's words), a status file that
is garbage, and a kill -9 of the daemon while jobs run (re-attached, each job's own outcome, run once).

Without Slurm (not root, or start-slurm.sh cannot start it) the tests skip saying why, unless
MPCTL_REQUIRE_SLURM=1 (CI sets it), which makes that a failure. Nothing sleeps a fixed time: every wait
polls a condition (squeue, the task's state) against a generous deadline."""
import datetime, json, os, re, shutil, signal, subprocess, sys, tempfile, time, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_case import MPCTL, DaemonCase  # noqa: E402
from py_daemon import Connection, until  # noqa: E402

SOURCE = os.environ.get("MPCTL_TEST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
START_SLURM = os.path.join(SOURCE, "tests", "slurm", "start-slurm.sh")
REQUIRED = os.environ.get("MPCTL_REQUIRE_SLURM") == "1"
LONG = 120  # seconds: every wait that should end does so long before this

cluster = {"dir": None, "why_not": None}


def setUpModule():
    why = None
    if os.geteuid() != 0:
        why = "a throwaway Slurm cluster needs root (SlurmUser=root)"
    else:
        # Short: munged's socket path must fit in 107 bytes.
        d = tempfile.mkdtemp(prefix="sl", dir=os.environ.get("TMPDIR", "/tmp"))
        os.chmod(d, 0o755)  # munged wants every directory above its socket searchable by all
        done = subprocess.run(["bash", START_SLURM, os.path.join(d, "c")], capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            why = f"start-slurm.sh failed: {(done.stderr.strip().splitlines() or ['(nothing said)'])[-1]}"
            shutil.rmtree(d, ignore_errors=True)
        else:
            cluster["dir"] = d
            for line in done.stdout.splitlines():  # export SLURM_CONF=...
                if line.startswith("export "):
                    key, _, value = line[len("export "):].partition("=")
                    os.environ[key] = value.strip("'\"")
    if why:
        cluster["why_not"] = why
        if REQUIRED:
            raise RuntimeError(f"MPCTL_REQUIRE_SLURM=1 but Slurm could not start: {why}")


def tearDownModule():
    if cluster["dir"]:
        subprocess.run(["bash", START_SLURM, "stop", os.path.join(cluster["dir"], "c")], timeout=600)
        shutil.rmtree(cluster["dir"], ignore_errors=True)


def when(iso):
    """A status object's time ("...Z") as a datetime."""
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def squeue(*args):
    """squeue -r -h -t all -o '%i %j %T' ARGS...: {job id: (name, state)}, an array's elements each as "A_I"."""
    done = subprocess.run(["squeue", "-r", "-h", "-t", "all", "-o", "%i %j %T", *args], capture_output=True,
                          text=True, timeout=60)
    jobs = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and re.fullmatch(r"\d+(_\d+)?", parts[0]):
            jobs[parts[0]] = (parts[1], parts[2])
    return jobs


class SlurmCase(DaemonCase):
    def setUp(self):
        if cluster["why_not"]:
            self.skipTest(cluster["why_not"])
        super().setUp()
        self.addCleanup(self.cancel_every_job)
        self.mpctl_ok(["pool", "set", "hpc", "8", "--backend", "slurm"])

    def cancel_every_job(self):
        """The cluster is this file's own: whatever a test left in it goes, so the next finds every CPU free."""
        subprocess.run(["scancel", "--user", "root"], timeout=60)
        until(lambda: not [j for j, (_, state) in squeue().items() if state in ("PENDING", "RUNNING", "COMPLETING")],
              "the cluster to be idle", LONG)

    def status(self, task):
        return json.loads(self.mpctl_ok(["--json", "status", str(task)]))

    def submit(self, *args):
        return int(self.mpctl_ok(["submit", "--pool", "hpc", *args]).decode().strip())

    def wait_state(self, task, states, seconds=LONG):
        until(lambda: self.status(task)["state"] in states, f"task {task} to be {states}", seconds)
        return self.status(task)

    def job_of(self, task):
        """The Slurm job id of running task TASK, once sbatch gave it one."""
        until(lambda: self.status(task)["backend_id"] is not None, f"task {task}'s job id", LONG)
        return self.status(task)["backend_id"]

    def job_state(self, job, states):
        until(lambda: squeue().get(job, (None, None))[1] in states, f"job {job} to be {states}", LONG)

    def words(self, path):
        """The words of file PATH (none while it is not there)."""
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().split()

    def kill_and_take_back(self, tasks, jobs, gate):
        """kill -9 of the daemon while TASKS run as JOBS, GATE opened so that the jobs end while no daemon
        watches, and a new daemon on the same state dir: task I ends as its job did (exit 4+I, one attempt,
        the same job), with finished_at when the job ended, before the restart."""
        self.mpctl_ok(["pool", "set", "hpc", "8", "--backend", "slurm"])  # answered after the journal has the jobs
        self.daemon.proc.kill()
        self.daemon.proc.wait(60)
        open(gate, "w").close()
        for job in jobs:
            self.job_state(job, {"FAILED"})
        restarted = datetime.datetime.now(datetime.timezone.utc)
        self.daemon.start()
        for i, task in enumerate(tasks):
            st = self.wait_state(task, {"failed"})
            self.assertEqual((st["exit_code"], st["attempts"], st["backend_id"]), (i + 4, 1, jobs[i]))
            self.assertLess(when(st["finished_at"]), restarted)


class TestSlurmPools(SlurmCase):
    def test_a_task_runs_as_a_batch_job_with_its_argv_cwd_environment_exit_code_and_output(self):
        cwd = self.path("work dir")
        os.mkdir(cwd)
        done = self.mpctl(["run", "--pool", "hpc", "--cwd", cwd, "--env", "GREETING=hello 'there'", "--name",
                           "first", "--", "sh", "-c", 'echo "$GREETING" "$SLURM_JOB_ID"; pwd; echo oops >&2; exit 3'])
        self.assertEqual(done.returncode, 3, done.stderr)
        out = done.stdout.decode().splitlines()
        st = self.status(1)
        self.assertEqual((st["state"], st["exit_code"], st["backend"]), ("failed", 3, "slurm"))
        self.assertIsNone(st["pid"])  # no process of this machine
        job = st["backend_id"]
        self.assertTrue(job and job.isdigit(), st)
        self.assertEqual(out, [f"hello 'there' {job}", cwd])
        self.assertEqual(self.mpctl_ok(["logs", "--stderr", "1"]).decode(), "oops\n")
        self.job_state(job, {"FAILED"})
        self.assertEqual(squeue("-j", job)[job][0], "first")
        text = self.mpctl_ok(["status", "1"]).decode()
        self.assertIn(f"slurm:       job {job}", text)
        pools = {p["name"]: p for p in map(json.loads, self.mpctl_ok(["--json", "pool", "list"]).decode().split("\n")[:-1])}
        self.assertEqual(pools["hpc"]["backend"]["kind"], "slurm")
        self.assertTrue(pools["hpc"]["backend"]["reachable"])
        self.assertEqual(pools["default"]["backend"], {"kind": "local"})

    def test_an_input_or_a_passed_stdin_cannot_reach_a_job_and_fails_the_task_saying_so(self):
        conn = Connection(self.daemon.socket)
        self.addCleanup(conn.close)
        ids = [conn.result("task.submit", {"argv": ["cat"], "pool": "hpc", "input": "aGVsbG8K"})["id"]]
        with open(os.devnull, "rb") as null:
            reply = conn.call("task.submit", {"argv": ["cat"], "pool": "hpc", "stdin_fd": True}, fds=[null.fileno()])
        ids.append(reply["result"]["id"])
        for task in ids:  # not a job that reads /dev/null instead
            st = self.wait_state(task, {"failed", "succeeded"})
            self.assertEqual((st["state"], st["reason"], st["backend_id"]), ("failed", "spawn", None), st)
            self.assertIn("an input it holds, cannot reach a Slurm job", st["error"])

    def test_a_command_killed_by_a_signal_ends_with_that_signal(self):
        done = self.mpctl(["run", "--pool", "hpc", "--", "sh", "-c", "kill -USR1 $$"])
        self.assertEqual(done.returncode, 128 + 10, done.stderr)
        st = self.status(1)
        self.assertEqual((st["state"], st["signal"], st["exit_code"]), ("failed", 10, None))

    def test_cancel_of_a_running_job_passes_the_signal_on_to_the_command(self):
        ready = self.path("trapping")
        task = self.submit("--", "sh", "-c", f'trap "echo got TERM; exit 7" TERM; touch "{ready}"; '
                                             'sleep 300 & wait')
        job = self.job_of(task)
        until(lambda: os.path.exists(ready), "the job's command to set its trap", LONG)
        self.mpctl_ok(["cancel", "--force", str(task)])
        st = self.wait_state(task, {"cancelled"})
        self.assertEqual(st["exit_code"], 7)  # its trap ran: the TERM reached the command, once
        self.assertEqual(self.mpctl_ok(["logs", str(task)]).decode(), "got TERM\n")
        self.job_state(job, {"COMPLETED", "FAILED", "CANCELLED"})

    def test_cancel_of_a_pending_job_cancels_it_in_slurm(self):
        # The node has as many CPUs as this machine: that many jobs that hold one each, and one more waits.
        cpus = os.cpu_count()
        holders = [self.submit("--", "sleep", "300") for _ in range(cpus)]
        for h in holders:
            self.job_state(self.job_of(h), {"RUNNING"})
        # Only now: submitted with the holders, its sbatch could have run first and taken a CPU.
        waiting = self.submit("--", "sh", "-c", f'touch "{self.path("ran")}"')
        job = self.job_of(waiting)
        self.job_state(job, {"PENDING"})
        self.mpctl_ok(["cancel", "--force", str(waiting)])
        st = self.wait_state(waiting, {"cancelled"})
        self.assertEqual(st["signal"], 15, st)
        self.job_state(job, {"CANCELLED"})
        self.assertFalse(os.path.exists(self.path("ran")))
        for h in holders:
            self.mpctl_ok(["cancel", "--force", str(h)])
        for h in holders:
            self.wait_state(h, {"cancelled"})

    def test_a_timeout_stops_the_job_and_is_its_time_limit_in_slurm_too(self):
        task = self.submit("--timeout", "2", "--", "sleep", "300")
        job = self.job_of(task)
        limit = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        self.assertIn("TimeLimit=00:02:00", limit)  # 2 s rounded up to a minute, and one more
        st = self.wait_state(task, {"failed"})
        self.assertEqual((st["reason"], st["signal"]), ("timeout", 15))
        self.job_state(job, {"COMPLETED", "FAILED", "CANCELLED"})

    def test_a_pipeline_runs_as_one_job_its_stages_connected_on_the_node_with_every_stage_reported(self):
        task = self.submit("--pipe", "--", "yes", "row", "|", "sh", "-c", "head -n 3; echo mid >&2; exit 4",
                           "|", "sh", "-c", 'cat; echo "$SLURM_JOB_ID" >&2')
        st = self.wait_state(task, {"failed"})
        self.assertEqual((st["reason"], st["exit_code"]), ("exit", 4))  # pipefail: the middle stage decides
        stages = st["stages"]
        self.assertEqual([s["state"] for s in stages], ["succeeded", "failed", "succeeded"])  # SIGPIPE forgiven
        self.assertEqual((stages[0]["signal"], stages[1]["exit_code"], stages[2]["exit_code"]), (13, 4, 0))
        self.assertEqual(self.mpctl_ok(["logs", str(task)]), b"row\nrow\nrow\n")
        # Each stage's stderr in its own file; one job, which the last stage saw (never an array's element).
        self.assertEqual(self.mpctl_ok(["logs", "--stage", "1", str(task)]), b"mid\n")
        self.assertEqual(self.mpctl_ok(["logs", "--stage", "2", str(task)]).decode().strip(), st["backend_id"])
        self.assertNotIn("_", st["backend_id"])
        ok = self.submit("--pipe", "--", "echo", "a b", "|", "tr", "a-z", "A-Z")
        self.assertEqual(self.wait_state(ok, {"succeeded"})["exit_code"], 0)
        self.assertEqual(self.mpctl_ok(["logs", str(ok)]), b"A B\n")

    def test_a_pipeline_cancelled_while_running_ends_every_stage_with_the_signal(self):
        ready = self.path("ready")
        task = self.submit("--pipe", "--", "sh", "-c", f'touch "{ready}"; sleep 300 & wait', "|", "cat")
        until(lambda: os.path.exists(ready), "the pipeline to run on the node", LONG)
        self.mpctl_ok(["cancel", "--force", str(task)])
        st = self.wait_state(task, {"cancelled"})
        # The runner passed the TERM on to the stages' process group: each stage died of it.
        self.assertEqual([s["signal"] for s in st["stages"]], [signal.SIGTERM, signal.SIGTERM])

    def test_a_job_scancelled_outside_mpctl_ends_the_task(self):
        ready = self.path("running")
        task = self.submit("--", "sh", "-c", f'touch "{ready}"; exec sleep 300')
        job = self.job_of(task)
        until(lambda: os.path.exists(ready), "the job's command to run", LONG)
        subprocess.run(["scancel", job], check=True, timeout=60)
        st = self.wait_state(task, {"failed"})
        self.assertEqual((st["reason"], st["signal"]), ("signal", 15), st)

    def test_a_job_scancelled_outside_mpctl_before_it_started_ends_the_task_saying_so(self):
        holders = [self.submit("--", "sleep", "300") for _ in range(os.cpu_count())]
        for h in holders:
            self.job_state(self.job_of(h), {"RUNNING"})
        task = self.submit("--", "true")
        job = self.job_of(task)
        self.job_state(job, {"PENDING"})
        subprocess.run(["scancel", job], check=True, timeout=60)
        st = self.wait_state(task, {"failed"})
        self.assertEqual(st["signal"], 15, st)
        self.assertIn(f"Slurm job {job} was cancelled outside mpctl", st["error"])

    def test_an_unknown_partition_fails_the_task_with_slurms_words(self):
        self.mpctl_ok(["pool", "set", "nowhere", "2", "--backend", "slurm", "--partition", "no-such-partition"])
        done = self.mpctl(["run", "--pool", "nowhere", "--", "true"])
        self.assertEqual(done.returncode, 126, done.stderr)
        st = self.status(1)
        self.assertEqual((st["state"], st["reason"]), ("failed", "spawn"))
        self.assertIn("Invalid partition", st["error"])
        self.assertTrue(st["error"].startswith("sbatch: "), st["error"])

    def test_cpus_and_memory_are_asked_of_slurm_and_what_the_node_lacks_is_refused_in_slurms_words(self):
        done = self.mpctl(["run", "--pool", "hpc", "--cpus", "2", "--mem", "100M", "--", "sh", "-c",
                           'echo "$SLURM_CPUS_PER_TASK $SLURM_MEM_PER_NODE"'])
        self.assertEqual((done.returncode, done.stdout), (0, b"2 100\n"), done.stderr)
        done = self.mpctl(["run", "--pool", "hpc", "--gpus", "1", "--", "true"])  # the node has none
        self.assertEqual(done.returncode, 126, done.stderr)
        st = self.status(2)
        self.assertEqual(st["reason"], "spawn")
        self.assertIn("sbatch: error:", st["error"])
        # A local pool runs the task and ignores what only Slurm understands.
        done = self.mpctl(["run", "--cpus", "2", "--mem", "1G", "--", "echo", "here"])
        self.assertEqual((done.returncode, done.stdout), (0, b"here\n"), done.stderr)

    def test_settings_for_slurm_are_refused_for_a_local_pool_and_local_undoes_slurm(self):
        done = self.mpctl(["pool", "set", "plain", "2", "--partition", "debug"])
        self.assertEqual(done.returncode, 6, done.stderr)  # invalid params
        self.assertIn("are for a Slurm pool", done.stderr.decode())
        self.mpctl_ok(["pool", "set", "hpc", "2", "--backend", "local"])
        done = self.mpctl(["run", "--pool", "hpc", "--", "sh", "-c", 'echo "${SLURM_JOB_ID:-here}"'])
        self.assertEqual(done.stdout, b"here\n")
        self.assertEqual(self.status(1)["backend"], "local")

    def test_a_status_file_that_is_garbage_ends_the_task_saying_so(self):
        status_dir = os.path.join(self.daemon.state, "slurm")
        task = self.submit("--", "sh", "-c", f'echo garbage > "{status_dir}/job-$SLURM_JOB_ID.status.tmp" && '
                                             f'mv "{status_dir}/job-$SLURM_JOB_ID.status.tmp" '
                                             f'"{status_dir}/job-$SLURM_JOB_ID.status"; sleep 300')
        st = self.wait_state(task, {"failed", "lost"})
        self.assertEqual(st["reason"], "lost")  # how it ended cannot be told
        self.assertIn("not a job status", st["error"] or "", st)
        self.mpctl(["cancel", "--force", str(task)])  # the job itself is still Slurm's: cancelled, not left
        subprocess.run(["scancel", st["backend_id"]], timeout=60)

    def test_the_daemon_killed_while_a_pipeline_job_runs_takes_it_back_with_every_stages_outcome(self):
        go, ready = self.path("go"), self.path("ready")
        task = self.submit("--pipe", "--", "sh", "-c",
                           f'touch "{ready}"; while [ ! -e "{go}" ]; do sleep 0.05; done; echo out; exit 3',
                           "|", "sh", "-c", "cat; exit 5")
        job = self.job_of(task)
        until(lambda: os.path.exists(ready), "the pipeline to run on the node", LONG)
        self.mpctl_ok(["pool", "set", "hpc", "8", "--backend", "slurm"])  # answered after the journal has the job
        self.daemon.proc.kill()
        self.daemon.proc.wait(60)
        open(go, "w").close()
        self.job_state(job, {"FAILED"})
        self.daemon.start()
        st = self.wait_state(task, {"failed"})
        self.assertEqual((st["exit_code"], st["attempts"], st["backend_id"]), (5, 1, job))
        self.assertEqual([s["exit_code"] for s in st["stages"]], [3, 5])
        self.assertEqual(self.mpctl_ok(["logs", str(task)]), b"out\n")

    def test_the_daemon_killed_while_jobs_run_takes_them_back_with_their_own_outcomes(self):
        marks = self.path("marks")
        go = self.path("go")
        tasks = [self.submit("--", "sh", "-c", f'echo {i} >> "{marks}"; while [ ! -e "{go}" ]; do sleep 0.05; done; '
                                               f'exit {i + 4}') for i in range(2)]
        jobs = [self.job_of(t) for t in tasks]
        until(lambda: len(self.words(marks)) == 2, "both jobs to run", LONG)
        self.kill_and_take_back(tasks, jobs, go)
        self.assertEqual(sorted(self.words(marks)), ["0", "1"])  # each ran once
        self.assertIn(int(tasks[0]), json.loads(self.mpctl_ok(["--json", "daemon", "status"]))["readopted"])


class TestSlurmFutures(SlurmCase):
    """The futures commands on Slurm tasks: a running job's output followed, completion order, dependencies
    (Slurm holds a dependant behind its running dependency, afterok), retries (a new job each attempt)."""

    def gate(self, name):
        return f'while [ ! -e "{self.path(name)}" ]; do sleep 0.05; done'

    def open_gate(self, name):
        open(self.path(name), "w").close()

    def test_logs_follow_streams_a_running_jobs_output_to_its_end(self):
        task = self.submit("--", "sh", "-c", f'echo one; {self.gate("go")}; echo two')
        follower = subprocess.Popen([MPCTL, "logs", "--follow", str(task)], env=self.env, stdout=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL)
        self.addCleanup(follower.wait)
        self.addCleanup(follower.kill)
        self.assertEqual(follower.stdout.readline(), b"one\n")  # while the job still runs
        self.assertEqual(self.status(task)["state"], "running")
        self.open_gate("go")
        self.assertEqual(follower.stdout.read(), b"two\n")
        self.assertEqual(follower.wait(LONG), 0)

    def test_as_completed_gives_the_order_the_jobs_ended_in(self):
        # Two: the node has a CPU for each (a third would wait in Slurm for one of them to end).
        tasks = [self.submit("--", "sh", "-c", self.gate(f"go{i}")) for i in range(2)]
        for t in tasks:
            self.job_state(self.job_of(t), {"RUNNING"})
        waiter = subprocess.Popen([MPCTL, "as-completed", *map(str, tasks)], env=self.env, stdout=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
        self.addCleanup(waiter.wait)
        self.addCleanup(waiter.kill)
        seen = []
        for i in (1, 0):
            self.open_gate(f"go{i}")
            seen.append(int(waiter.stdout.readline()))
        self.assertEqual(seen, [tasks[1], tasks[0]])
        self.assertEqual(waiter.wait(LONG), 0)

    def dependency(self, job):
        """What squeue says job JOB waits for ("afterok:12(unfulfilled)"), empty once it waits for nothing."""
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%E"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    def test_a_dependant_is_held_by_slurm_behind_its_running_dependency_and_its_time_counts_from_its_start(self):
        first = self.submit("--", "sh", "-c", self.gate("go"))
        ran = self.path("ran")
        then = self.submit("--after", str(first), "--timeout", "2", "--", "touch", ran)
        first_job, then_job = self.job_of(first), self.job_of(then)  # submitted while its dependency runs
        self.assertEqual(self.status(first)["state"], "running")
        self.assertEqual(self.dependency(then_job), f"afterok:{first_job}(unfulfilled)")
        self.assertEqual(squeue()[then_job][1], "PENDING")
        # Held for longer than its timeout, which counts from when the job begins, as Slurm's --time does.
        held_since = time.monotonic()
        until(lambda: time.monotonic() - held_since > 3, "its timeout to have passed while Slurm holds it", LONG)
        self.assertEqual(self.status(then)["state"], "running")
        self.open_gate("go")
        st = self.wait_state(then, {"succeeded"})
        self.assertTrue(os.path.exists(ran))
        self.assertEqual((st["backend_id"], st["attempts"]), (then_job, 1))
        # Its start is when it began, once its dependency had ended.
        self.assertGreaterEqual(when(st["started_at"]), when(self.status(first)["finished_at"]))

    def test_a_dependant_held_by_slurm_fails_with_reason_dependency_and_never_runs_if_its_dependency_fails(self):
        failing = self.submit("--", "sh", "-c", self.gate("go") + "; exit 3")
        ran = self.path("ran")
        never = self.submit("--after", str(failing), "--", "touch", ran)
        never_job = self.job_of(never)
        self.open_gate("go")
        st = self.wait_state(never, {"failed"})
        self.assertEqual((st["reason"], st["error"], st["backend_id"]),
                         ("dependency", f"dependency {failing} failed", never_job))
        self.job_state(never_job, {"CANCELLED"})
        self.assertFalse(os.path.exists(ran))

    def test_a_dependant_of_a_task_that_may_be_retried_waits_in_mpctl_and_is_held_by_slurm_on_its_last_attempt(self):
        counter = self.path("attempts")
        first = self.submit("--retries", "1", "--", "sh", "-c",
                            f'echo "$SLURM_JOB_ID" >> "{counter}"; [ $(wc -l < "{counter}") -ge 2 ] || exit 1; '
                            + self.gate("go"))
        then = self.submit("--after", str(first), "--", "true")
        # Held by mpctl while a failure of its dependency would be retried (Slurm would cancel it).
        until(lambda: self.status(first)["attempts"] == 2 and self.status(first)["backend_id"] is not None,
              "the second attempt's job", LONG)
        then_job = self.job_of(then)
        self.assertEqual(self.dependency(then_job), f"afterok:{self.status(first)['backend_id']}(unfulfilled)")
        self.open_gate("go")
        self.wait_state(then, {"succeeded"})
        failing = self.submit("--", "false")
        self.wait_state(failing, {"failed"})
        never = self.submit("--after", str(failing), "--", "true")
        st = self.wait_state(never, {"failed"})
        self.assertEqual((st["reason"], st["backend_id"]), ("dependency", None))  # it ended: no job

    def test_a_dependant_held_by_slurm_runs_while_no_daemon_watches_and_is_taken_back_with_its_outcome(self):
        first = self.submit("--", "sh", "-c", self.gate("go"))
        out = self.path("then")
        then = self.submit("--after", str(first), "--", "sh", "-c", f'echo "$SLURM_JOB_ID" > "{out}"')
        then_job = self.job_of(then)
        self.mpctl_ok(["pool", "set", "hpc", "8", "--backend", "slurm"])  # answered after the journal has the job
        self.daemon.proc.kill()
        self.daemon.proc.wait(60)
        self.open_gate("go")
        self.job_state(then_job, {"COMPLETED"})  # Slurm ran it without any daemon
        self.daemon.start()
        self.assertEqual(self.wait_state(then, {"succeeded"})["backend_id"], then_job)
        self.assertEqual(self.wait_state(first, {"succeeded"})["attempts"], 1)
        self.assertEqual(self.words(out), [then_job])

    def test_a_retried_task_is_a_new_job_each_attempt(self):
        counter = self.path("attempts")
        task = self.submit("--retries", "2", "--", "sh", "-c",
                           f'echo "$SLURM_JOB_ID" >> "{counter}"; [ $(wc -l < "{counter}") -ge 3 ]')
        st = self.wait_state(task, {"succeeded"})
        with open(counter) as f:
            jobs = f.read().split()
        self.assertEqual(st["attempts"], 3)
        self.assertEqual(len(set(jobs)), 3)
        self.assertEqual(st["backend_id"], jobs[-1])


class TestSlurmMap(SlurmCase):
    """A map's tasks go to Slurm as job arrays, one sbatch for many tasks, and each element is still a future
    of its own: its own output files, exit code, cancel, and re-attachment after a restart."""

    def map_tasks(self, items, script):
        """Starts `mpctl map --pool hpc -- sh -c SCRIPT sh {} ::: ITEMS` and returns (the map's process, its
        tasks' ids in input order) once every task has a job id."""
        proc = subprocess.Popen([MPCTL, "map", "--pool", "hpc", "--", "sh", "-c", script, "sh", "{}", ":::", *items],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        def with_jobs():
            tasks = [json.loads(line) for line in self.mpctl_ok(["--json", "list"]).decode().splitlines()]
            return len(tasks) == len(items) and all(t["backend_id"] for t in tasks)
        until(with_jobs, f"{len(items)} tasks with a job id each", LONG)
        tasks = [json.loads(line) for line in self.mpctl_ok(["--json", "list"]).decode().splitlines()]
        return proc, [t["id"] for t in sorted(tasks, key=lambda t: t["id"])]

    def test_a_map_of_200_items_over_a_slurm_pool_gives_every_result_in_order_from_job_arrays(self):
        self.mpctl_ok(["pool", "set", "hpc", "200", "--backend", "slurm"])
        items = [str(i) for i in range(200)]
        done = self.mpctl(["map", "--pool", "hpc", "--", "sh", "-c",
                           'echo "item $1 job $SLURM_JOB_ID array ${SLURM_ARRAY_JOB_ID:-none}"', "sh", "{}",
                           ":::", *items])
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.decode().splitlines()
        self.assertEqual([line.split()[1] for line in lines], items)  # input order, each once
        self.assertEqual(len({line.split()[3] for line in lines}), 200)  # a job each
        arrays = {line.split()[5] for line in lines}
        # One sbatch per array: at most four run at once, and the tasks that come meanwhile share the next.
        self.assertNotIn("none", arrays)
        self.assertLessEqual(len(arrays), 20, arrays)
        tasks = [json.loads(line) for line in self.mpctl_ok(["--json", "list"]).decode().splitlines()]
        self.assertTrue(all(re.fullmatch(r"\d+_\d+", t["backend_id"]) for t in tasks), tasks[:3])

    def test_a_map_with_j_below_the_pools_room_goes_as_arrays_that_slurm_throttles_to_j(self):
        # Room for 5 of the map's 12 tasks at once, -j 1: arrays of 5, 5 and 2, each one sbatch with %1 (where
        # -j tasks and then an sbatch per freed slot would take 12), the next one once the last is over, so
        # that one task at a time runs although the node has a CPU for each of two.
        self.mpctl_ok(["pool", "set", "hpc", "5", "--backend", "slurm"])
        log = self.path("log")
        done = self.mpctl(["map", "--pool", "hpc", "-j", "1", "--", "sh", "-c",
                           f'echo "+ $1" >> "{log}"; sleep 0.2; echo "- $1" >> "{log}"; echo "$1 $SLURM_ARRAY_JOB_ID"',
                           "sh", "{}", ":::", *map(str, range(12))])
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = [line.split() for line in done.stdout.decode().splitlines()]
        self.assertEqual([item for item, _ in lines], [str(i) for i in range(12)])
        arrays = [array for _, array in lines]
        self.assertEqual([arrays.count(a) for a in dict.fromkeys(arrays)], [5, 5, 2])
        running = most = 0
        for word in self.words(log)[::2]:
            running += 1 if word == "+" else -1
            most = max(most, running)
        self.assertEqual(most, 1)
        shown = subprocess.run(["scontrol", "show", "job", arrays[0]], capture_output=True, text=True, timeout=60)
        self.assertIn("ArrayTaskThrottle=1", shown.stdout)

    def test_each_element_of_an_array_ends_alone_cancelled_running_or_pending_or_with_its_own_exit_code(self):
        go = self.path("go")
        # The node has two CPUs: elements 0 and 1 run, 2 and 3 wait in Slurm.
        proc, tasks = self.map_tasks(["0", "1", "2", "3"],
                                     f'echo "out $1"; echo "err $1" >&2; while [ ! -e "{go}" ]; do sleep 0.05; done; '
                                     f'exit $(( $1 + 3 ))')
        keys = [self.status(t)["backend_id"] for t in tasks]
        array = keys[0].split("_")[0]
        self.assertEqual(keys, [f"{array}_{i}" for i in range(4)])  # one sbatch for the four
        self.job_state(keys[1], {"RUNNING"})
        until(lambda: self.mpctl_ok(["logs", str(tasks[1])]) == b"out 1\n", "element 1 to print", LONG)
        self.mpctl_ok(["cancel", "--force", str(tasks[1])])  # running: SIGTERM reaches its command
        self.mpctl_ok(["cancel", "--force", str(tasks[3])])  # pending: cancelled in Slurm, element 3 alone
        st1 = self.wait_state(tasks[1], {"cancelled"})
        st3 = self.wait_state(tasks[3], {"cancelled"})
        self.assertEqual((st1["signal"], st3["signal"]), (15, 15))
        self.assertEqual(self.mpctl_ok(["logs", str(tasks[3])]), b"")  # it never ran
        open(go, "w").close()
        for i in (0, 2):
            st = self.wait_state(tasks[i], {"failed"})
            self.assertEqual((st["exit_code"], st["backend_id"]), (i + 3, keys[i]))
            self.assertEqual(self.mpctl_ok(["logs", str(tasks[i])]), f"out {i}\n".encode())
            self.assertEqual(self.mpctl_ok(["logs", "--stderr", str(tasks[i])]), f"err {i}\n".encode())
        self.assertNotEqual(proc.wait(LONG), 0)

    def test_the_daemon_killed_while_array_elements_run_takes_them_back_with_their_own_outcomes(self):
        marks, go = self.path("marks"), self.path("go")
        proc, tasks = self.map_tasks(["0", "1", "2"], f'echo $1 >> "{marks}"; while [ ! -e "{go}" ]; do sleep 0.05; '
                                                      f'done; exit $(( $1 + 4 ))')
        keys = [self.status(t)["backend_id"] for t in tasks]
        self.assertEqual(len({k.split("_")[0] for k in keys}), 1, keys)
        until(lambda: len(self.words(marks)) == 2, "two elements to run", LONG)
        proc.kill()  # the map's client goes first: its tasks are the daemon's
        proc.wait(60)
        self.kill_and_take_back(tasks, keys, go)  # the third element runs while no daemon watches, too
        self.assertEqual(sorted(self.words(marks)), ["0", "1", "2"])  # each ran once


class TestSlurmConfigFile(SlurmCase):
    def pool_kind(self, name):
        pools = [json.loads(line) for line in self.mpctl_ok(["--json", "pool", "list"]).decode().splitlines()]
        return next(p for p in pools if p["name"] == name)["backend"]["kind"]

    def restart_with(self, *args):
        self.daemon.proc.terminate()  # not daemon.stop(), which removes its directory, journal and all
        self.daemon.proc.wait(60)
        self.daemon.extra_args = args
        self.daemon.start()

    def test_a_pool_the_config_file_backs_with_slurm_runs_jobs_until_pool_set_says_otherwise(self):
        conf = self.path("mpctld.toml")
        with open(conf, "w") as f:
            f.write('[pools.cfg]\nworkers = 4\nbackend = "slurm"\nslurm_args = ["--job-name=from-config"]\n')
        self.restart_with("--config", conf)
        self.assertEqual(self.pool_kind("cfg"), "slurm")
        where = 'echo "${SLURM_JOB_ID:-here} ${SLURM_JOB_NAME:-}"'
        job, name = self.mpctl_ok(["run", "--pool", "cfg", "--", "sh", "-c", where]).decode().split()
        self.assertTrue(job.isdigit(), job)
        self.assertEqual(name, "from-config")  # the file's slurm_args, after mpctl's own
        # What `mpctl pool set` gives the pool is journaled and wins over the file, at every start.
        self.mpctl_ok(["pool", "set", "cfg", "4", "--backend", "local"])
        self.restart_with("--config", conf)
        self.assertEqual(self.pool_kind("cfg"), "local")
        self.assertEqual(self.mpctl_ok(["run", "--pool", "cfg", "--", "sh", "-c", where]).decode().split(), ["here"])


    def test_the_configured_shared_file_system_check_refuses_a_pools_tasks_until_it_passes(self):
        conf, checked, shared = self.path("mpctld.toml"), self.path("checked"), self.path("shared")
        with open(conf, "w") as f:  # the check is given the state dir as "$1"
            f.write(f"slurm_shared_check = 'echo \"$1\" >> {checked}; test -e {shared} && test -d'\n")
        self.restart_with("--config", conf)
        done = self.mpctl(["run", "--pool", "hpc", "--", "true"])
        self.assertEqual(done.returncode, 126, done.stderr)
        st = self.status(1)
        self.assertEqual((st["reason"], st["backend_id"]), ("spawn", None))
        self.assertIn(f"the state dir {self.daemon.state} is not on a file system shared with the Slurm nodes",
                      st["error"])
        pools = [json.loads(line) for line in self.mpctl_ok(["--json", "pool", "list"]).decode().splitlines()]
        self.assertIn("not on a file system shared", next(p for p in pools if p["name"] == "hpc")["backend"]
                      ["shared_check_error"])
        open(shared, "w").close()  # from now on the check passes: checked again, then trusted
        job = self.mpctl_ok(["run", "--pool", "hpc", "--", "sh", "-c", 'echo "$SLURM_JOB_ID"']).decode().strip()
        self.assertTrue(job.isdigit(), job)
        self.mpctl_ok(["run", "--pool", "hpc", "--", "true"])
        with open(checked) as f:
            self.assertEqual(f.read().splitlines(), [self.daemon.state] * 2)


class TestSlurmUnreachable(SlurmCase):
    def pool(self):
        pools = [json.loads(line) for line in self.mpctl_ok(["--json", "pool", "list"]).decode().splitlines()]
        return next(p for p in pools if p["name"] == "hpc")

    def test_while_slurmctld_does_not_answer_tasks_wait_and_the_pool_says_so(self):
        with open(os.path.join(cluster["dir"], "c", "run", "slurmctld.pid")) as f:
            ctld = int(f.read().strip())
        os.kill(ctld, signal.SIGSTOP)  # up, but answering nobody: sbatch and squeue time out
        self.addCleanup(os.kill, ctld, signal.SIGCONT)
        task = self.submit("--", "sh", "-c", "echo made it")
        until(lambda: not self.pool()["backend"]["reachable"], "the pool to say Slurm is unreachable", LONG)
        self.assertIn("sbatch: ", self.pool()["backend"]["error"])
        st = self.status(task)
        self.assertEqual((st["state"], st["backend_id"]), ("running", None))  # in its slot, not yet a job
        os.kill(ctld, signal.SIGCONT)
        st = self.wait_state(task, {"succeeded"})
        self.assertIsNotNone(st["backend_id"])
        self.assertEqual(self.mpctl_ok(["logs", str(task)]), b"made it\n")
        until(lambda: self.pool()["backend"]["reachable"], "the pool to say Slurm answers again", LONG)


class TestWithoutSbatch(DaemonCase):
    def setUp(self):
        if cluster["why_not"]:
            self.skipTest(cluster["why_not"])
        # A daemon whose PATH has no Slurm: its tasks' own PATH does not count.
        saved = os.environ["PATH"]
        os.environ["PATH"] = "/nonexistent"
        try:
            super().setUp()
        finally:
            os.environ["PATH"] = saved
        self.env["PATH"] = saved

    def test_a_missing_sbatch_fails_the_task_with_reason_spawn(self):
        self.mpctl_ok(["pool", "set", "hpc", "2", "--backend", "slurm"])
        done = self.mpctl(["run", "--pool", "hpc", "--", "true"])
        self.assertEqual(done.returncode, 126, done.stderr)
        st = json.loads(self.mpctl_ok(["--json", "status", "1"]))
        self.assertEqual(st["reason"], "spawn")
        self.assertIn("sbatch: command not found in the daemon's PATH", st["error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
