#!/usr/bin/env python3
"""The daemon with a long queue: memory and the cost of requests at N queued tasks.

For each N (default 0 and 100,000; --million adds 1,000,000) a fresh mpctld gets a pool "scale" of one
worker held by a `sleep`, then N `true` tasks queued behind it with task.submit_batch in chunks (each task as
`mpctl submit -- true` sends it: argv, this directory, this environment). Then it measures:

  - the daemon's memory: VmRSS and VmHWM of /proc/PID/status. Target at 100,000: RSS <= 64 MiB.
  - task.submit (the same spec) on an open connection: median round trip, interleaved in blocks with a
    daemon whose queue is empty, which gives the ratio. Target: <= 1.1x the empty queue's.
  - task.list {"limit": 50} (`mpctl list --limit 50`) and pool.list (`mpctl pool list`): median round
    trip. Target: < 5 ms each.

Usage: tests/bench/bench_scale.py [--build DIR] [--counts 0,100000] [--million] [--dirs /dev/shm,$HOME]
Not a pass/fail test: it prints what it measures against the targets.
"""
import argparse, json, os, shutil, statistics, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_core  # noqa: E402  (the same daemon harness as the core benchmarks)

TARGET_RSS_MIB = 64
TARGET_SUBMIT_RATIO = 1.1
TARGET_QUERY_MS = 5.0
CHUNK = 10000  # tasks per task.submit_batch: about 180 KB of request, as `mpctl map` sends at most 512 KiB


class Daemon(bench_core.Daemon):
    """bench_core's daemon harness (2 workers, durability normal), plus what this benchmark asks of it."""

    def __init__(self, bin_dir, workdir):
        os.makedirs(workdir)
        super().__init__(bin_dir, workdir, 2, "normal")

    def send_text(self, method, params_text):
        return self.main.send_text(method, params_text)

    def answer(self, rid):
        return self.main.answer(rid)

    def timed(self, method, params_text):
        """The round trip of one request, in seconds (the answer read, not parsed)."""
        t = time.perf_counter()
        rid = self.send_text(method, params_text)
        line = self.main.file.readline()  # one request at a time, and none streams: the next line is its answer
        elapsed = time.perf_counter() - t
        head = json.loads(line[:40].split(b',"result"')[0] + b"}") if b',"result"' in line[:40] else None
        if head is None or head.get("id") != rid:
            raise RuntimeError(line[:300])
        return elapsed

    def memory(self):
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024  # kB -> MiB
        return fields

    def cpu_ns(self):
        """CPU time of all the daemon's threads so far, in ns (the first field of each thread's schedstat)."""
        total = 0
        task_dir = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                pass  # a thread that just ended
        return total



def block_pool(d):
    """Pool "scale": one worker, held by a sleep, so everything submitted to it stays queued."""
    d.call("pool.set", name="scale", workers=1)
    tid = d.call("task.submit", argv=["sleep", "1000000"], cwd=os.getcwd(), pool="scale")["id"]
    deadline = time.monotonic() + 10
    while d.call("task.get", id=tid)["state"] != "running":
        if time.monotonic() > deadline:
            raise RuntimeError("the blocking task did not start")
        time.sleep(0.01)


def fill(d, n):
    """Queues N `true` tasks in pool scale; returns the seconds it took."""
    defaults = {"cwd": os.getcwd(), "env": dict(os.environ), "pool": "scale"}
    t = time.perf_counter()
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        params = json.dumps({"defaults": defaults, "tasks": [{"argv": ["true"]}] * k}).encode()
        ids = d.answer(d.send_text("task.submit_batch", params))["ids"]
        assert len(ids) == k
        done += k
    return time.perf_counter() - t


def settle(d, timeout=120):
    """Waits until the daemon is idle: after a large fill its checkpointer copies the WAL back for a while,
    and that CPU time would count against the submits measured next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = d.cpu_ns()
        time.sleep(0.5)
        if d.cpu_ns() - before < 5e6:  # under 1% of a CPU
            return
    print("warning: the daemon did not settle", flush=True)


def median_ms(d, method, params_text, samples):
    return statistics.median(d.timed(method, params_text) for _ in range(samples)) * 1000


def interleaved_submits(ref, d, params_text, samples, block=25):
    """Submits at REF (empty queue) and at D in alternating blocks (ABBA), so that both see the same moments
    of a VM whose speed drifts. Returns, for each, the median round trip and the daemon's CPU time per
    submit (all its threads, from schedstat: what the queue could make the daemon itself do more of)."""
    trips = {ref: [], d: []}
    cpu = {ref: 0, d: 0}
    for i in range(max(1, samples // block)):
        for daemon in ((ref, d) if i % 2 == 0 else (d, ref)):
            before = daemon.cpu_ns()
            trips[daemon] += [daemon.timed("task.submit", params_text) for _ in range(block)]
            cpu[daemon] += daemon.cpu_ns() - before
    n = max(1, samples // block) * block
    return [(statistics.median(trips[x]) * 1000, cpu[x] / n / 1e6) for x in (ref, d)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--counts", default="0,100000", help="queue lengths to measure (comma-separated)")
    ap.add_argument("--million", action="store_true", help="also 1,000,000 queued (a few minutes)")
    ap.add_argument("--dirs", default="/dev/shm",
                    help="comma-separated places for the state dir, each measured (add $HOME for ext4)")
    ap.add_argument("--samples", type=int, default=500, help="submits timed per daemon")
    ap.add_argument("--query-samples", type=int, default=50, help="task.list and pool.list timed")
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    counts = [int(c) for c in args.counts.split(",") if c]
    if args.million:
        counts.append(1000000)
    submit_params = json.dumps({"argv": ["true"], "cwd": os.getcwd(), "env": dict(os.environ),
                                "pool": "scale"}).encode()
    list_params = b'{"limit":50}'
    rows = []
    for place in [p for p in args.dirs.split(",") if p]:
        work = tempfile.mkdtemp(prefix="mpscale-", dir=place)
        try:
            ref = Daemon(bin_dir, os.path.join(work, "ref"))
            block_pool(ref)
            for n in counts:
                d = Daemon(bin_dir, os.path.join(work, f"n{n}"))
                try:
                    block_pool(d)
                    fill_s = fill(d, n)
                    settle(d)
                    mem = d.memory()
                    # Warm both up (first requests page things in), then measure.
                    interleaved_submits(ref, d, submit_params, 50)
                    (empty_ms, empty_cpu), (submit_ms, submit_cpu) = interleaved_submits(
                        ref, d, submit_params, args.samples)
                    list_ms = median_ms(d, "task.list", list_params, args.query_samples)
                    pool_ms = median_ms(d, "pool.list", b"{}", args.query_samples)
                    mem_after = d.memory()
                    rows.append((place, n, fill_s, mem, mem_after, empty_ms, submit_ms, empty_cpu, submit_cpu, list_ms,
                                 pool_ms))
                    print(f"{place} N={n}: filled in {fill_s:.1f}s, RSS {mem['VmRSS']:.1f} MiB "
                          f"(peak {mem['VmHWM']:.1f}), submit {submit_ms:.3f} ms vs {empty_ms:.3f} ms empty (daemon CPU "
                          f"{submit_cpu:.3f} vs {empty_cpu:.3f} ms), "
                          f"list --limit 50 {list_ms:.2f} ms, pool list {pool_ms:.2f} ms", flush=True)
                finally:
                    d.stop()
            ref.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nmpctl at scale ({os.cpu_count()} CPUs; submits: median of {args.samples}, interleaved with a "
          f"daemon whose queue is empty; queries: median of {args.query_samples})\n")
    print(f"{'state dir':10} {'queued':>9} {'fill':>7} {'RSS MiB':>8} {'peak MiB':>9} {'submit ms':>10} "
          f"{'empty ms':>9} {'ratio':>6} {'CPU ratio':>9} {'list50 ms':>10} {'pools ms':>9}")
    for place, n, fill_s, mem, mem_after, empty_ms, submit_ms, empty_cpu, submit_cpu, list_ms, pool_ms in rows:
        print(f"{place:10} {n:9,} {fill_s:6.1f}s {mem['VmRSS']:8.1f} {mem_after['VmHWM']:9.1f} "
              f"{submit_ms:10.3f} {empty_ms:9.3f} {submit_ms / empty_ms:5.2f}x {submit_cpu / empty_cpu:8.2f}x "
              f"{list_ms:10.2f} {pool_ms:9.2f}")
    print(f"\ntargets at 100,000 queued: RSS <= {TARGET_RSS_MIB} MiB, submit <= {TARGET_SUBMIT_RATIO}x the empty "
          f"queue's, list --limit 50 and pool list < {TARGET_QUERY_MS:g} ms")
    print("RSS: right after the fill; peak: VmHWM at the end (the fill's batches included); ratio: submit round "
          "trip against the empty queue's; CPU ratio: the daemon's CPU time per submit against the empty one's")


if __name__ == "__main__":
    main()
