#!/usr/bin/env python3
"""Benchmark of mpctl.futures.ProcessPoolExecutor (issue 17), against the standard library's pools in the
same run; prints ratios.

CALLS (default 20,000) tiny calls, abs(-i), 2 workers:
  - mpctl.futures.ProcessPoolExecutor(2): a loop of submit(), then concurrent.futures.wait (every call a
    task of the daemon: journaled, visible in `mpctl list`)
  - the same with map(abs, ..., chunksize=100): 100 calls a task
  - concurrent.futures.ProcessPoolExecutor(2): the same submit loop (the yardstick)
  - multiprocessing.Pool(2).map(abs, ..., chunksize=1)
  - the daemon alone: CALLS tasks to a warm pool of 2 workers that answer every run at once
    (answering_worker.py), submitted in batches on one connection: the ceiling of any executor whose
    every call is a task of today's daemon
Each mpctl run gets a fresh mpctld (state dir on tmpfs, durability normal, as bench_warm.py) and is checked:
the results are right, and the daemon finished CALLS (or CALLS/100) tasks. Each figure is the median of RUNS
runs (default 3), the contenders' order alternating between runs. The executors' workers are started (one
call answered) before the clock starts, for all contenders alike.

Usage: tests/bench/bench_executor.py [--build DIR] [--runs N] [--calls N] [--dir DIR]
Not a pass/fail test: it prints what it measures.
"""
import argparse, concurrent.futures, json, multiprocessing, os, shutil, statistics, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "python"))
from bench_core import Daemon  # noqa: E402
import mpctl.futures  # noqa: E402

WORKERS = 2
CHUNK = 100


def finished_tasks(d):
    return d.call("daemon.status")["tasks"]["succeeded"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--dir", default="/dev/shm", help="where the state dirs go (default: tmpfs)")
    args = ap.parse_args()
    n = args.calls
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="mpexec-", dir=args.dir)
    expected = [abs(-i) for i in range(n)]
    counter = [0]

    def mpctl_run(chunked):
        counter[0] += 1
        d = Daemon(bin_dir, os.path.join(work, f"d-{counter[0]}"), WORKERS, "normal")
        try:
            with mpctl.futures.ProcessPoolExecutor(WORKERS, socket=d.sock) as ex:
                ex.submit(abs, 0).result()
                before = finished_tasks(d)
                t = time.perf_counter()
                if chunked:
                    results = list(ex.map(abs, range(0, -n, -1), chunksize=CHUNK))
                else:
                    futures = [ex.submit(abs, -i) for i in range(n)]
                    concurrent.futures.wait(futures)
                    results = [f.result() for f in futures]
                took = time.perf_counter() - t
            tasks = finished_tasks(d) - before
        finally:
            d.stop()
        want = -(-n // CHUNK) if chunked else n
        if results != expected or tasks != want:
            raise RuntimeError(f"mpctl {'map' if chunked else 'submit'}: wrong results or {tasks} tasks, not {want}")
        return took

    def daemon_ceiling():
        """What the daemon alone costs per task of a warm pool: N tasks, in batches of 2000 on one
        connection, to WORKERS workers that answer each run at once; timed to the answer of a task.wait on
        them all. No Python call and no client threads: an executor whose every call is a task is slower."""
        counter[0] += 1
        d = Daemon(bin_dir, os.path.join(work, f"d-{counter[0]}"), WORKERS, "normal")
        try:
            d.call("pool.set", name="answering", workers=WORKERS,
                   worker=[sys.executable, os.path.join(HERE, "answering_worker.py")])
            batches = [json.dumps({"defaults": {"pool": "answering"},
                                   "tasks": [{"argv": ["x"]}] * min(2000, n - start)}).encode()
                       for start in range(0, n, 2000)]
            before = finished_tasks(d)
            t = time.perf_counter()
            ids = []
            for batch in batches:
                ids += d.main.answer(d.main.send_text("task.submit_batch", batch))["ids"]
            d.call("task.wait", ids=ids)
            took = time.perf_counter() - t
            tasks = finished_tasks(d) - before
        finally:
            d.stop()
        if tasks != n or len(ids) != n:
            raise RuntimeError(f"daemon ceiling: {tasks} tasks finished, not {n}")
        return took

    def stdlib_executor():
        with concurrent.futures.ProcessPoolExecutor(WORKERS) as ex:
            list(ex.map(abs, range(WORKERS * 2)))  # the workers are up
            t = time.perf_counter()
            futures = [ex.submit(abs, -i) for i in range(n)]
            concurrent.futures.wait(futures)
            took = time.perf_counter() - t
            results = [f.result() for f in futures]
        if results != expected:
            raise RuntimeError("ProcessPoolExecutor: wrong results")
        return took

    def stdlib_pool():
        with multiprocessing.Pool(WORKERS) as pool:
            pool.map(abs, range(WORKERS * 2))
            t = time.perf_counter()
            results = pool.map(abs, range(0, -n, -1), chunksize=1)
            took = time.perf_counter() - t
        if results != expected:
            raise RuntimeError("Pool.map: wrong results")
        return took

    contenders = [
        (f"mpctl.futures.ProcessPoolExecutor({WORKERS}): {n} submit() + wait", lambda: mpctl_run(False)),
        (f"mpctl.futures.ProcessPoolExecutor({WORKERS}).map(chunksize={CHUNK})", lambda: mpctl_run(True)),
        (f"concurrent.futures.ProcessPoolExecutor({WORKERS}): submit() + wait (baseline)", stdlib_executor),
        (f"multiprocessing.Pool({WORKERS}).map(chunksize=1)", stdlib_pool),
        (f"the daemon alone: {n} tasks to {WORKERS} workers that answer at once (ceiling)", daemon_ceiling),
    ]
    times = {name: [] for name, _ in contenders}
    try:
        for run in range(args.runs):
            for name, fn in (contenders if run % 2 == 0 else contenders[::-1]):
                took = fn()
                times[name].append(took)
                print(f"  run {run + 1}/{args.runs}: {name}: {took * 1000:.0f} ms", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med[contenders[2][0]]
    print(f"\nmpctl ProcessPoolExecutor benchmark ({os.cpu_count()} CPUs, {WORKERS} workers, {n} calls of abs, "
          f"median of {args.runs} runs, order alternating)\n")
    width = max(len(name) for name in med)
    print(f"{'what':{width}} {'time':>9} {'calls/s':>9}  {'ratio':>7}")
    for name, took in med.items():
        print(f"{name:{width}} {took * 1000:7.0f}ms {n / took:9.0f}  {base / took:6.2f}x")
    print("\nratio = this rate / the standard ProcessPoolExecutor's (higher is better); every mpctl call (or chunk)"
          " is a journaled task of the daemon")


if __name__ == "__main__":
    main()
