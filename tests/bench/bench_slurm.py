#!/usr/bin/env python3
"""Benchmark of Slurm pools (issue 21), against the ways of doing the same with Slurm alone, in one run on a
real single-node Slurm (tests/slurm/start-slurm.sh, in a directory of its own, stopped at the end; or the
cluster $SLURM_CONF already names, with --use-running); prints ratios.

ITEMS (default 200) one-line tasks, each writing its item to a file of its own; the clock runs from the
first submission to the moment the last of the ITEMS files exists (all done):
  - `mpctl map --pool P -j ITEMS -- sh -c 'echo {} > OUT/{}'`, P a Slurm pool of ITEMS slots (a fresh mpctld
    per run, state dir in DIR); map returns once every task has ended, which is also when its file exists;
    the daemon submits the tasks as job arrays (how many sbatch calls it made is printed too)
  - a shell loop of ITEMS `sbatch --wrap 'echo I > OUT/I'` calls (what a script without mpctl does)
  - one hand-written job array: `sbatch --array=0-(ITEMS-1) --wrap 'echo $SLURM_ARRAY_TASK_ID > ...'`
and, throttled to J (default 2) at once, mpctl's `-j J` (one array with Slurm's %J, the pool having room for all)
against the hand-written `sbatch --array=0-(ITEMS-1)%J`.
Each figure is the median of RUNS runs (default 3), the contenders' order alternating between runs; each
ratio is the median of the run-by-run ratios. Target (issue 21): mpctl within 1.2x of the array's time and
ahead of the sbatch loop.

Usage: tests/bench/bench_slurm.py [--build DIR] [--runs N] [--items N] [--throttle J] [--dir DIR] [--use-running]
Not a pass/fail test: it prints what it measures. Needs root (the cluster's daemons run as root).
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
START_SLURM = os.path.join(SOURCE, "tests", "slurm", "start-slurm.sh")
sys.path.insert(0, HERE)
from bench_core import Daemon  # noqa: E402  (the same daemon harness as the core benchmarks)

HANG_S = 600


def wait_files(out, n, what):
    deadline = time.monotonic() + HANG_S
    while len(os.listdir(out)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {len(os.listdir(out))} of {n} done after {HANG_S} s")
        time.sleep(0.005)
    return time.perf_counter()


def idle_cluster():
    """Nothing of an earlier contender left running or pending, so that each starts with every CPU free."""
    deadline = time.monotonic() + HANG_S
    while subprocess.run(["squeue", "-h", "-t", "pending,running,completing", "-o", "%i"], capture_output=True,
                         text=True).stdout.strip():
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not become idle")
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--throttle", type=int, default=2, help="-j of the throttled map and %%J of its array")
    ap.add_argument("--dir", default="/tmp", help="where the cluster, the state dirs and the outputs go")
    ap.add_argument("--use-running", action="store_true", help="use the cluster $SLURM_CONF names")
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="mpsl-", dir=args.dir)
    os.chmod(work, 0o755)  # munged wants every directory above its socket searchable by all
    cluster = None
    try:
        if not args.use_running:
            cluster = os.path.join(work, "c")
            done = subprocess.run(["bash", START_SLURM, cluster], capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"start-slurm.sh failed:\n{done.stderr}")
            for line in done.stdout.splitlines():
                if line.startswith("export SLURM_CONF="):
                    os.environ["SLURM_CONF"] = line.split("=", 1)[1].strip("'\"")
        n = args.items
        counter = [0]
        sbatch_calls = {}

        def fresh_out():
            counter[0] += 1
            out = os.path.join(work, f"out-{counter[0]}")
            os.mkdir(out)
            idle_cluster()
            return out

        def mpctl_map(j):
            out = fresh_out()
            d = Daemon(bin_dir, os.path.join(work, f"d-{counter[0]}"), 2, "normal")
            try:
                d.call("pool.set", name="hpc", workers=n, backend="slurm")
                env = dict(os.environ, MPCTL_SOCKET=d.sock, MPCTL_NO_AUTOSTART="1")
                t0 = time.perf_counter()
                subprocess.run([os.path.join(bin_dir, "mpctl"), "map", "--pool", "hpc", "-j", str(j), "--", "sh",
                                "-c", f"echo {{}} > {out}/{{}}", ":::", *map(str, range(n))], env=env, check=True,
                               stdout=subprocess.DEVNULL, timeout=HANG_S)
                t1 = wait_files(out, n, "mpctl map")
                # How many sbatch calls that took: the jobs this daemon made (their comments name its pid),
                # an array counted once.
                listed = subprocess.run(["squeue", "-r", "-h", "-t", "all", "-o", "%F %k"], capture_output=True,
                                        text=True, timeout=60).stdout.split("\n")
                mine = {line.split()[0] for line in listed if f" mpctl-{d.proc.pid}-" in line}
                sbatch_calls.setdefault(j, []).append(len(mine))
            finally:
                d.stop()
            return t1 - t0

        def sbatch_loop():
            out = fresh_out()
            t0 = time.perf_counter()
            subprocess.run(["bash", "-c", f"for i in $(seq 0 {n - 1}); do sbatch --parsable -o /dev/null "
                                          f"--wrap \"echo $i > {out}/$i\" >/dev/null || exit 1; done"], check=True,
                           timeout=HANG_S)
            return wait_files(out, n, "the sbatch loop") - t0

        def job_array(throttle=""):
            out = fresh_out()
            t0 = time.perf_counter()
            subprocess.run(["sbatch", "--parsable", f"--array=0-{n - 1}{throttle}", "-o", "/dev/null", "--wrap",
                            f"echo $SLURM_ARRAY_TASK_ID > {out}/$SLURM_ARRAY_TASK_ID"], check=True,
                           stdout=subprocess.DEVNULL, timeout=HANG_S)
            return wait_files(out, n, "the job array") - t0

        j = args.throttle
        contenders = [(f"mpctl map --pool slurm -j {n}", lambda: mpctl_map(n)),
                      (f"{n} sbatch calls in a shell loop", sbatch_loop),
                      (f"one job array of {n} (sbatch --array)", job_array),
                      (f"mpctl map --pool slurm -j {j}", lambda: mpctl_map(j)),
                      (f"one job array of {n} (sbatch --array=...%{j})", lambda: job_array(f"%{j}"))]
        times = {name: [] for name, _ in contenders}
        for run in range(args.runs):
            for name, fn in (contenders if run % 2 == 0 else contenders[::-1]):
                took = fn()
                times[name].append(took)
                print(f"  run {run + 1}/{args.runs}: {name}: {took:.2f} s", file=sys.stderr, flush=True)
    finally:
        if cluster:
            subprocess.run(["bash", START_SLURM, "stop", cluster], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    names = [name for name, _ in contenders]
    mp, loop, array, mp_j, array_j = names

    def ratio(a, b):
        rs = [times[a][r] / times[b][r] for r in range(args.runs)]
        return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"
    print(f"\nSlurm pools benchmark ({os.cpu_count()} CPUs, single-node Slurm, {n} one-line tasks, time to all "
          f"done, median of {args.runs} runs)\n")
    width = max(map(len, names))
    print(f"{'what':{width}} {'time':>8}  {'vs its array (runs)':>22}")
    for name in names:
        ref = array_j if name in (mp_j, array_j) else array
        print(f"{name:{width}} {statistics.median(times[name]):7.2f}s  {ratio(name, ref):>22}")
    print(f"\nmpctl map / the sbatch loop: {ratio(mp, loop)} (below 1: ahead of it); target: mpctl within 1.2x of "
          f"the array and ahead of the loop")
    print(f"throttled: mpctl map -j {j} / the array with %{j}: {ratio(mp_j, array_j)}")
    for jobs, calls in sbatch_calls.items():
        print(f"mpctl map -j {jobs}: sbatch calls (job arrays and single jobs) per run: {calls}")


if __name__ == "__main__":
    main()
