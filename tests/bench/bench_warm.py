#!/usr/bin/env python3
"""Benchmark of warm pools (issue 16), measured in one run against their peers on this machine; prints ratios.

  1. ITEMS (default 1,000) items of a one-line Python script, t.py (`import sys; print(sys.argv[1])`), at
     2 jobs, items on stdin (`seq ITEMS | ...`):
       - `mpctl map -j2 --pool warm -- t.py {}`   (pool `warm`: 2 slots of `python3 -m mpctl.worker`, whose
                                                  tasks run in a forked child each; and again with the
                                                  workers' `--in-process`: each task in the worker itself)
       - `xargs -P2 -n1 python3 t.py`             (the baseline: a python3 per item)
       - `mpctl map -j2 -- python3 t.py {}`       (a cold pool of 2 slots: a process per item)
       - `parallel -j2 python3 t.py`              (GNU parallel, Debian package `parallel`)
     Every output is checked: each item's line present exactly once. Target: the warm map >= 10x xargs's rate.
  2. TASKS (default 2,000) `python3 -c pass` through the warm pool, against the cold spawn limit of /bin/true:
       - `mpctl map -j2 --pool warm -- -c pass`   (items on stdin, each appended: `-c pass ITEM`), both kinds
                                                  of worker, as in 1
       - the same as one task.submit_batch of TASKS `-c pass` tasks and a task.wait, on one connection
         (what a client library can do without the CLI)
       - a C program keeping 2 posix_spawn()ed /bin/true in flight (tests/bench/spawn_loop.c): the limit of
         cold spawning, bare (the yardstick) and as `true ITEM` (the command lines map passes)
       - `mpctl map -j2 -- true`                  (a cold pool of 2 slots, items on stdin)
     Each mpctl run is checked: TASKS tasks succeeded, and in the warm pool's workers.
     Target: warm `-c pass` rate / cold `true` rate (the C loop's, bare) > 1.0.

python3 is one interpreter for all: --python (default: the binary `python3` in PATH runs, past a wrapper such
as a pyenv shim, whose own cost is not Python's). PYTHONUNBUFFERED is taken out of the environment: with it,
print() writes the line and its newline in two write()s, which concurrent python3s interleave.

Each mpctl contender gets a fresh mpctld per run (state dir in --dir, tmpfs by default, as bench_map.py), started
with PYTHONPATH=<repo>/python so that its workers find mpctl.worker; a warm pool's workers are started and
have said hello before the clock starts (what a warm pool is for). The contenders' order alternates between
runs.

Usage: tests/bench/bench_warm.py [--build DIR] [--runs N] [--items N] [--tasks N] [--dir DIR] [--python PATH]
Each figure is the median of N runs (default 5). Not a pass/fail test: it prints what it measures.
"""
import argparse, collections, contextlib, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from bench_core import Connection, Daemon  # noqa: E402,F401  (the same daemon harness as the core benchmarks)

JOBS = 2
FORK, IN_PROCESS = (), ("--in-process",)  # the warm workers' options: a task per forked child, or in the worker
SCRIPT = "import sys; print(sys.argv[1])\n"


def real_python(name):
    """The interpreter NAME (looked up in PATH) runs as: past a wrapper such as a pyenv shim, a shell script
    that costs more than python3's own start (about 60 ms a run, seen), which no contender should pay."""
    return subprocess.run([name, "-c", "import sys; print(sys.executable)"], check=True, capture_output=True,
                          text=True).stdout.strip()


def start_daemon(bin_dir, workdir, warm, python):
    """A fresh mpctld with 2 slots in `default`; unless WARM is None, pool `warm` too, 2 workers of
    `PYTHON -m mpctl.worker WARM...`, ready (they have said hello). The daemon
    inherits this process's environment: PYTHONPATH is set in it for the daemon's start only, so the
    baselines run without it."""
    saved = os.environ.get("PYTHONPATH")
    python_dir = os.path.join(REPO, "python")
    os.environ["PYTHONPATH"] = python_dir + (os.pathsep + saved if saved else "")
    try:
        d = Daemon(bin_dir, workdir, JOBS, "normal")
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    if warm is not None:
        try:
            d.call("pool.set", name="warm", workers=JOBS, worker=[python, "-m", "mpctl.worker", *warm])
            deadline = time.monotonic() + 60
            while True:
                pool = warm_pool(d)
                procs = pool["warm"]["worker_processes"]
                if len(procs) == JOBS and all(w["state"] == "ready" for w in procs):
                    break
                if pool["warm"]["broken"]:
                    raise RuntimeError(f"warm pool broken: {pool['warm']['broken_reason']}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"warm workers not ready after 60 s: {procs}")
                time.sleep(0.02)
        except BaseException:
            d.stop()
            raise
    return d


def warm_pool(d):
    return next(p for p in d.call("pool.list")["pools"] if p["name"] == "warm")


def check_served(d, n, what):
    """That the warm pool's workers served N tasks: what was measured ran on them."""
    served = sum(w["tasks"] for w in warm_pool(d)["warm"]["worker_processes"])
    if served != n:
        raise RuntimeError(f"{what}: the warm workers served {served} tasks, not {n}")


def timed_shell(command, cwd, env):
    """(seconds COMMAND, a bash line, takes; its stdout). The stdout is a pipe, read as it comes: not a
    regular file, which the concurrent python3s of xargs and parallel would share, with its offset, and
    garble (lines lost and repeated: seen)."""
    t = time.perf_counter()
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"`{command}` exited with {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return took, proc.stdout


def check_lines(output, n, what):
    """OUTPUT has each of the items 1..N on a line of its own, once, and nothing else."""
    counts = collections.Counter(output.decode(errors="replace").splitlines())
    expected = {str(i) for i in range(1, n + 1)}
    missing = expected - counts.keys()
    extra = counts.keys() - expected
    repeated = [line for line, c in counts.items() if c > 1]
    if missing or extra or repeated:
        raise RuntimeError(f"{what}: output incomplete: {len(missing)} missing, {len(extra)} unexpected, "
                           f"{len(repeated)} repeated lines")


def check_tasks(d, n, what, **where):
    """N tasks WHERE (task.list params) on the daemon D, all succeeded."""
    tasks = d.call("task.list", **where)["tasks"]
    states = collections.Counter(t["state"] for t in tasks)
    if len(tasks) != n or states["succeeded"] != n:
        raise RuntimeError(f"{what}: {len(tasks)} tasks {where}, states {dict(states)}, expected {n} succeeded")


def run_alternating(contenders, runs):
    """{name: median seconds}: each contender (name, fn returning seconds) once per run, in order on even
    runs and in reverse on odd ones."""
    times = {name: [] for name, _ in contenders}
    for run in range(runs):
        order = contenders if run % 2 == 0 else contenders[::-1]
        for name, fn in order:
            took = fn()
            times[name].append(took)
            print(f"  run {run + 1}/{runs}: {name}: {took * 1000:.0f} ms", file=sys.stderr, flush=True)
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(title, n, rows, baseline_name, base_time):
    print(f"\n{title}\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'what':{width}} {'time':>9} {'rate':>9}  {'ratio':>7}  target")
    for what, took, target in rows:
        if took is None:
            print(f"{what:{width}} {'not installed':>9}")
            continue
        print(f"{what:{width}} {took * 1000:7.0f}ms {n / took:7.0f}/s  {base_time / took:6.2f}x  {target}")
    print(f"\nrate = items (tasks) per second; ratio = this rate / the rate of {baseline_name} (higher is better)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--items", type=int, default=1000, help="items of t.py (part 1; default 1000)")
    ap.add_argument("--tasks", type=int, default=2000, help="`-c pass` and `true` tasks (part 2; default 2000)")
    ap.add_argument("--dir", default="/dev/shm", help="where the state dirs go (default: tmpfs)")
    ap.add_argument("--python", default="python3",
                    help="the interpreter of the workers and of the cold contenders (default: python3 in PATH, "
                         "resolved to the binary it runs)")
    args = ap.parse_args()
    python = real_python(args.python)
    # With PYTHONUNBUFFERED, print() writes a line's text and its newline in two write()s, which the python3s
    # that xargs and parallel run at once interleave on their shared stdout (lines lost, seen): no contender
    # gets it, so that each writes a line in one write(), as python3 does by default.
    unbuffered = os.environ.pop("PYTHONUNBUFFERED", None)
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    mpctl = os.path.join(bin_dir, "mpctl")
    true = shutil.which("true") or "/bin/true"
    n, n2 = args.items, args.tasks
    work = tempfile.mkdtemp(prefix="mpwarm-", dir=args.dir)
    counter = [0]

    @contextlib.contextmanager
    def fresh(warm):
        """A daemon of its own for one run (a warm pool's workers ready), stopped after it."""
        counter[0] += 1
        d = start_daemon(bin_dir, os.path.join(work, f"d-{counter[0]}"), warm, python)
        try:
            yield d
        finally:
            d.stop()

    def client_env(d):
        return dict(os.environ, MPCTL_SOCKET=d.sock, MPCTL_NO_AUTOSTART="1")

    try:
        with open(os.path.join(work, "t.py"), "w") as f:
            f.write(SCRIPT)
        spawn_loop = os.path.join(work, "spawn_loop")
        subprocess.run(["cc", "-O2", "-o", spawn_loop, os.path.join(HERE, "spawn_loop.c")], check=True)

        # ---- 1. t.py over ITEMS items ----
        def warm_map(options):
            with fresh(options) as d:
                took, output = timed_shell(
                    f"seq {n} | {mpctl} map -j{JOBS} --no-progress --pool warm -- t.py {{}}", work, client_env(d))
                check_lines(output, n, "warm map")
                check_served(d, n, "warm map")
                return took

        def cold_map():
            with fresh(None) as d:
                took, output = timed_shell(
                    f"seq {n} | {mpctl} map -j{JOBS} --no-progress -- {python} t.py {{}}", work, client_env(d))
                check_lines(output, n, "cold map")
                return took

        def xargs():
            took, output = timed_shell(f"seq {n} | xargs -P{JOBS} -n1 {python} t.py", work, None)
            check_lines(output, n, "xargs")
            return took

        def parallel():
            took, output = timed_shell(f"seq {n} | parallel --will-cite -j{JOBS} {python} t.py", work,
                                       dict(os.environ, HOME=work))
            check_lines(output, n, "parallel")
            return took

        names1 = {"warm": f"mpctl map -j{JOBS} --pool warm -- t.py {{}}  (warm, fork)",
                  "inproc": f"mpctl map -j{JOBS} --pool warm -- t.py {{}}  (warm, --in-process)",
                  "xargs": f"xargs -P{JOBS} -n1 python3 t.py  (baseline)",
                  "cold": f"mpctl map -j{JOBS} -- python3 t.py {{}}  (cold)",
                  "parallel": f"parallel -j{JOBS} python3 t.py"}
        contenders1 = [(names1["warm"], lambda: warm_map(FORK)), (names1["inproc"], lambda: warm_map(IN_PROCESS)),
                       (names1["xargs"], xargs), (names1["cold"], cold_map)]
        have_parallel = shutil.which("parallel") is not None
        if have_parallel:
            contenders1.append((names1["parallel"], parallel))
        print(f"part 1: {n} items of t.py", file=sys.stderr, flush=True)
        med1 = run_alternating(contenders1, args.runs)

        # ---- 2. TASKS `-c pass` warm vs `true` cold ----
        def warm_pass_map(options):
            with fresh(options) as d:
                took, output = timed_shell(
                    f"seq {n2} | {mpctl} map -j{JOBS} --no-progress --pool warm -- -c pass", work, client_env(d))
                if output:
                    raise RuntimeError(f"warm -c pass map: unexpected output {output[:200]!r}")
                check_tasks(d, n2, "warm -c pass map", pool="warm")
                check_served(d, n2, "warm -c pass map")
                return took

        def warm_pass_batch(options):
            with fresh(options) as d:
                conn = Connection(d.sock)
                try:
                    t = time.perf_counter()
                    ids = conn.call("task.submit_batch",
                                    defaults={"cwd": work, "env": dict(os.environ), "pool": "warm"},
                                    tasks=[{"argv": ["-c", "pass"]} for _ in range(n2)])["ids"]
                    res = conn.call("task.wait", ids=ids, timeout=600)
                    took = time.perf_counter() - t
                finally:
                    conn.close()
                if res["pending"] or not all(s["state"] == "succeeded" for s in res["tasks"]):
                    raise RuntimeError("warm -c pass batch: tasks failed or did not finish")
                check_tasks(d, n2, "warm -c pass batch", pool="warm")
                check_served(d, n2, "warm -c pass batch")
                return took

        def c_loop():
            return timed_shell(f"{spawn_loop} {n2} {JOBS} {true}", work, None)[0]

        def c_loop_items():
            return timed_shell(f"{spawn_loop} {n2} {JOBS} {true} {{}}", work, None)[0]

        def cold_true_map():
            with fresh(None) as d:
                took, output = timed_shell(
                    f"seq {n2} | {mpctl} map -j{JOBS} --no-progress -- {true}", work, client_env(d))
                check_tasks(d, n2, "cold true map", label="map")  # in the map's own pool
                return took

        names2 = {"map": f"warm, fork: seq {n2} | mpctl map -j{JOBS} --pool warm -- -c pass",
                  "batch": f"warm, fork: one task.submit_batch of {n2} `-c pass` + task.wait",
                  "map_in": f"warm, --in-process: seq {n2} | mpctl map -j{JOBS} --pool warm -- -c pass",
                  "batch_in": f"warm, --in-process: one task.submit_batch of {n2} `-c pass` + task.wait",
                  "c": f"cold: C posix_spawn loop, {JOBS} in flight, bare `true` (baseline)",
                  "c_items": f"cold: C posix_spawn loop, {JOBS} in flight, `true ITEM`",
                  "cold": f"cold: seq {n2} | mpctl map -j{JOBS} -- true"}
        contenders2 = [(names2["map"], lambda: warm_pass_map(FORK)), (names2["batch"], lambda: warm_pass_batch(FORK)),
                       (names2["map_in"], lambda: warm_pass_map(IN_PROCESS)),
                       (names2["batch_in"], lambda: warm_pass_batch(IN_PROCESS)), (names2["c"], c_loop),
                       (names2["c_items"], c_loop_items), (names2["cold"], cold_true_map)]
        print(f"part 2: {n2} tasks", file=sys.stderr, flush=True)
        med2 = run_alternating(contenders2, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmpctl warm pool benchmarks ({os.cpu_count()} CPUs, {JOBS} jobs, median of {args.runs} runs, "
          f"order alternating)")
    print(f"python3 = {python}" + (f" (PYTHONUNBUFFERED={unbuffered} removed from the environment)"
                                   if unbuffered is not None else ""))
    rows1 = [(names1["warm"], med1[names1["warm"]], ">= 10x"),
             (names1["inproc"], med1[names1["inproc"]], ">= 10x"),
             (names1["xargs"], med1[names1["xargs"]], ""),
             (names1["cold"], med1[names1["cold"]], "peer"),
             (names1["parallel"], med1.get(names1["parallel"]) if have_parallel else None, "peer")]
    print_table(f"1. {n} items of t.py ({SCRIPT.strip()!r}), items on stdin, every output line checked",
                n, rows1, "xargs", med1[names1["xargs"]])
    rows2 = [(names2["map"], med2[names2["map"]], "> 1.0x"),
             (names2["batch"], med2[names2["batch"]], "> 1.0x"),
             (names2["map_in"], med2[names2["map_in"]], "> 1.0x"),
             (names2["batch_in"], med2[names2["batch_in"]], "> 1.0x"),
             (names2["c"], med2[names2["c"]], ""),
             (names2["c_items"], med2[names2["c_items"]], "same work as map's"),
             (names2["cold"], med2[names2["cold"]], "peer")]
    print_table(f"2. {n2} tasks: warm `python3 -c pass` vs cold `true`", n2, rows2,
                "the C loop of bare `true`", med2[names2["c"]])


if __name__ == "__main__":
    main()
