#!/usr/bin/env python3
"""How fast the daemon answers while it is busy starting tasks (issue 11, "ahead of the peers").

On one connection, requests alternate: `task.get` of a finished task, and `task.submit` of a task that only
queues (its pool's one slot is held by a `sleep`), so each answer is the daemon's work alone. Measured
  - idle: nothing else happens;
  - spawning: meanwhile another connection has submitted a batch of `true` tasks on 2 workers, so the
    daemon is starting a task every few hundred microseconds (what a `mpctl map -j2` does).
Target: while spawning, a submit answered within 2x of a task.get (and both near their idle times).

Usage: tests/bench/bench_latency.py [--build DIR] [--baseline DIR]... [--samples N] [--tasks N] [--dir DIR]
(--baseline: an earlier build, e.g. of the commit before a change, measured in the same run.)
Not a pass/fail test: it prints what it measures.
"""
import argparse, os, shutil, statistics, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Connection, Daemon  # noqa: E402


def sample(conn, samples, keep_going, cwd):
    gets, submits = [], []
    for _ in range(samples):
        if not keep_going():
            break
        t = time.perf_counter()
        conn.call("task.get", id=1)
        gets.append(time.perf_counter() - t)
        t = time.perf_counter()
        conn.call("task.submit", argv=["true"], cwd=cwd, pool="held")
        submits.append(time.perf_counter() - t)
    return gets, submits


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def measure(bin_dir, args, true):
    """One daemon of BIN_DIR: (idle gets, idle submits, busy gets, busy submits, batch seconds)."""
    work = tempfile.mkdtemp(prefix="mplat-", dir=args.dir)
    try:
        d = Daemon(bin_dir, work, 2, "normal")
        d.call("task.submit", argv=[true], cwd=work)  # task 1, the one task.get reads
        d.call("task.wait", ids=[1], timeout=60)
        d.call("pool.set", name="held", workers=1)
        d.call("task.submit", argv=["sleep", "600"], cwd=work, pool="held")
        conn = Connection(d.sock)
        idle_get, idle_submit = sample(conn, args.samples, lambda: True, work)

        batch = Connection(d.sock)
        ids = batch.call("task.submit_batch", defaults={"cwd": work, "env": dict(os.environ)},
                         tasks=[{"argv": [true]} for _ in range(args.tasks)])["ids"]
        started = time.perf_counter()
        done = threading.Event()

        def wait_batch():
            batch.call("task.wait", ids=ids, timeout=600)
            done.set()

        waiter = threading.Thread(target=wait_batch)
        waiter.start()
        busy_get, busy_submit = sample(conn, args.samples, lambda: not done.is_set(), work)
        waiter.join()
        batch_s = time.perf_counter() - started
        d.call("task.cancel", ids=[2], force=True)
        d.stop()
        return idle_get, idle_submit, busy_get, busy_submit, batch_s
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--baseline", action="append", default=[],
                    help="another build dir (an earlier commit's, say), measured in the same run after --build")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--tasks", type=int, default=4000)
    ap.add_argument("--dir", default="/dev/shm")
    args = ap.parse_args()
    true = shutil.which("true") or "/bin/true"

    def row(name, xs):
        return f"{name:28} median {statistics.median(xs)*1e6:7.0f} µs   p90 {pct(xs, 0.9)*1e6:7.0f} µs   n={len(xs)}"

    print(f"\nmpctl answer latency ({os.cpu_count()} CPUs)")
    for build in [args.build] + args.baseline:
        idle_get, idle_submit, busy_get, busy_submit, batch_s = measure(
            os.path.abspath(os.path.join(build, "bin")), args, true)
        print(f"\nbuild {build}")
        print(row("task.get, idle", idle_get))
        print(row("task.submit, idle", idle_submit))
        print(row("task.get, while spawning", busy_get))
        print(row("task.submit, while spawning", busy_submit))
        print(f"while spawning: submit / get = {statistics.median(busy_submit)/statistics.median(busy_get):.2f}x "
              f"(target <= 2x); submit spawning / idle = "
              f"{statistics.median(busy_submit)/statistics.median(idle_submit):.2f}x")
        print(f"batch of {args.tasks} `true` on 2 workers while sampling: {batch_s*1000:.0f} ms")


if __name__ == "__main__":
    main()
