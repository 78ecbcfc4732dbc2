#!/usr/bin/env python3
"""Benchmark of `mpctl map` (issue 4), measured in one run against its peers on this machine; prints ratios.

2000 `true` items at 2 jobs:
  - `seq 2000 | mpctl map -j2 -- true`   (a fresh mpctld per run, state dir on tmpfs, as in bench_core.py)
  - a C program keeping 2 posix_spawn()ed /bin/true in flight (tests/bench/spawn_loop.c): the physical limit,
    twice: a bare `true` (the issue's baseline) and `true ITEM`, the command lines map, xargs and parallel
    actually run (coreutils' `true` with an argument sets up its locale: about a third more CPU)
  - `seq 2000 | xargs -P2 -n1 true`
  - `seq 2000 | parallel -j2 true`        (GNU parallel, Debian package `parallel`)
  - `tsp -S 2` and 2000 `tsp true`, then `tsp -w` (task-spooler, Debian package `task-spooler`)
A peer that is not installed is reported as "not installed". Target: mpctl map >= 0.85x the C loop's rate.

Usage: tests/bench/bench_map.py [--build DIR] [--runs N] [--items N] [--dir DIR]
Each figure is the median of N runs (default 5). Not a pass/fail test: it prints what it measures.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Daemon  # noqa: E402  (the same daemon harness as the core benchmarks)


def timed(cmd, env=None, setup=None, teardown=None):
    if setup:
        setup()
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t
    if teardown:
        teardown()
    return took


def median_of(runs, fn):
    return statistics.median(fn() for _ in range(runs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", default="/dev/shm", help="where state dirs go (default: tmpfs)")
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    mpctl = os.path.join(bin_dir, "mpctl")
    true = shutil.which("true") or "/bin/true"
    n, j = args.items, args.jobs
    work = tempfile.mkdtemp(prefix="mpmap-", dir=args.dir)
    rows = []
    try:
        spawn_loop = os.path.join(work, "spawn_loop")
        subprocess.run(["cc", "-O2", "-o", spawn_loop, os.path.join(HERE, "spawn_loop.c")], check=True)
        c_loop = median_of(args.runs, lambda: timed([spawn_loop, str(n), str(j), true]))
        # The same command lines the map, xargs and parallel run: `true ITEM` (see spawn_loop.c).
        c_loop_items = median_of(args.runs, lambda: timed([spawn_loop, str(n), str(j), true, "{}"]))

        def mpctl_run(counter=[0]):
            counter[0] += 1
            d = Daemon(bin_dir, os.path.join(work, f"map-{counter[0]}"), j, "normal")
            env = dict(os.environ, MPCTL_SOCKET=d.sock, MPCTL_NO_AUTOSTART="1")
            try:
                return timed(["bash", "-c", f"seq {n} | {mpctl} map -j{j} --no-progress -- {true}"], env)
            finally:
                d.stop()

        rows.append((f"seq {n} | mpctl map -j{j} -- true", median_of(args.runs, mpctl_run), True))
        rows.append((f"seq {n} | xargs -P{j} -n1 true",
                     median_of(args.runs, lambda: timed(["bash", "-c", f"seq {n} | xargs -P{j} -n1 {true}"])),
                     True))
        if shutil.which("parallel"):
            rows.append((f"seq {n} | parallel -j{j} true", median_of(args.runs, lambda: timed(
                ["bash", "-c", f"seq {n} | parallel --will-cite -j{j} {true}"],
                dict(os.environ, HOME=work))), True))
        else:
            rows.append((f"seq {n} | parallel -j{j} true", None, True))
        if shutil.which("tsp"):
            tsp_env = dict(os.environ, TS_SOCKET=os.path.join(work, "tsp.sock"), TS_MAXFINISHED=str(n + 10),
                           TS_SAVELIST=os.path.join(work, "tsp.list"), TMPDIR=work)

            def tsp_start():
                subprocess.run(["tsp", "-S", str(j)], env=tsp_env, check=True)

            def tsp_stop():
                subprocess.run(["tsp", "-K"], env=tsp_env, stderr=subprocess.DEVNULL)

            rows.append((f"tsp -S {j}; {n}x tsp true; tsp -w", median_of(args.runs, lambda: timed(
                ["bash", "-c", f"for i in $(seq {n}); do tsp -n {true} >/dev/null; done; tsp -w"],
                tsp_env, tsp_start, tsp_stop)), False))  # tsp runs a bare `true`
        else:
            rows.append((f"tsp -S {j}; {n}x tsp true; tsp -w", None, False))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmpctl map benchmark: {n} `true` items at {j} jobs ({os.cpu_count()} CPUs, median of {args.runs} runs)\n")
    baselines = [("C posix_spawn loop, bare `true` (baseline)", c_loop),
                 ("C posix_spawn loop, `true ITEM`", c_loop_items)]
    width = max(len(r[0]) for r in rows + baselines)
    print(f"{'what':{width}} {'time':>9}  {'vs C loop':>9}  {'vs same work':>12}")
    print(f"{baselines[0][0]:{width}} {c_loop*1000:8.0f}ms  {1.0:8.2f}x  {1.0:11.2f}x")
    print(f"{baselines[1][0]:{width}} {c_loop_items*1000:8.0f}ms  {c_loop/c_loop_items:8.2f}x  {1.0:11.2f}x")
    for what, took, with_item in rows:
        if took is None:
            print(f"{what:{width}} {'not installed':>9}")
        else:
            same = c_loop_items if with_item else c_loop
            print(f"{what:{width}} {took*1000:8.0f}ms  {c_loop/took:8.2f}x  {same/took:11.2f}x")
    print("\nvs C loop = bare-`true` C loop time / time: the issue's yardstick (target for mpctl map: >= 0.85x).")
    print("vs same work = time of a C loop running the same command lines (`true ITEM` for map, xargs and")
    print("parallel, which pass each item; a bare `true` for tsp) / time. Higher is better.")


if __name__ == "__main__":
    main()
