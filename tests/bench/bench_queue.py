#!/usr/bin/env python3
"""Benchmark of the daemon's queues (issue 18, the daemon as a multiprocessing.Manager), against Python's
multiprocessing.Manager().Queue() in the same run; prints pairs per second and ratios.

One producer process and one consumer process, started before the clock (connected, then released together
by a barrier), moving PAIRS (default 20,000) integers 0..PAIRS-1 through one queue; the clock stops when the
consumer has read the last one. The consumer checks that it got every value, in order.

  - mpctl, durable queue: each process on a connection of its own to the Unix socket, speaking JSON-RPC with
    the standard library (no CLI, no mpctl package: the daemon is measured, not process start-up), one
    request at a time (the next sent once the answer to the previous one is read): `queue.put` of one value,
    `queue.get` of one value (blocking). A put or get that reaches the journal is a commit (durability
    DURABILITY, default normal: a WAL write without fsync). A put onto an empty durable queue with a get waiting hands its value to that get without the journal
    (delivered before the put is answered), which is what a consumer that keeps up sees; so
  - mpctl, durable queue never empty: the same with PAIRS values queued before the clock, so that every put
    and every get is a commit of its own (a consumer that lags).
  - mpctl, memory queue: the same on a queue made with `memory: true` (never journaled).
  - the same two, batched: `queue.put` of 100 values a request, `queue.get` with count 100 (BATCH_PAIRS
    values, default 200,000: PAIRS/100 requests would end too soon to time).
  - the yardstick: multiprocessing.Manager().Queue(), q.put(i) in one process and q.get() in another
    (forked, each proxy with its own connection to the manager). For the batched rows, the Manager moving the
    same values as lists of 100, one list an item.

Each mpctl run gets a fresh mpctld (state dir in DIR, default /dev/shm). Each rate is the median of RUNS
runs (default 5), the contenders' order alternating between runs; each ratio is the median of the ratios run
by run (a run measures the contenders close together in time, so a machine whose speed drifts skews them
less), printed with their range. Printed with the mpctl rows: the daemon's CPU time per pair (utime+stime
from /proc/PID/stat, at the kernel's tick resolution).

Usage: tests/bench/bench_queue.py [--build DIR] [--runs N] [--pairs N] [--batch-pairs N] [--dir DIR]
                                  [--durability normal|full] [--pin CPU]
Not a pass/fail test: it prints what it measures.
"""
import argparse, multiprocessing, os, shutil, statistics, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Connection, Daemon  # noqa: E402

BATCH = 100
HANG_S = 60  # an answer that takes longer than this is reported as a hang
CTX = multiprocessing.get_context("fork")


def connect(sock):
    c = Connection(sock)
    c.conn.settimeout(HANG_S)
    return c


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# --- the mpctl side: one request at a time on a connection of each process's own ---------------------------

def mpctl_producer(sock, name, n, batch, barrier):
    c = connect(sock)
    barrier.wait()
    name = name.encode()
    for start in range(0, n, batch):
        values = b",".join(b"%d" % i for i in range(start, start + batch))
        c.answer(c.send_text("queue.put", b'{"name":"%s","values":[%s]}' % (name, values)))
    c.close()


def mpctl_consumer(sock, name, n, batch, barrier, report):
    c = connect(sock)
    params = b'{"name":"%s","count":%d}' % (name.encode(), batch)
    barrier.wait()
    ok = True
    for start in range(0, n, batch):
        values = c.answer(c.send_text("queue.get", params))["values"]
        ok = ok and values == list(range(start, start + batch))
    report.send((ok, time.perf_counter()))
    c.close()


# --- the yardstick: multiprocessing.Manager().Queue() --------------------------------------------------------

def manager_producer(q, n, batch, barrier):
    barrier.wait()
    if batch == 1:
        for i in range(n):
            q.put(i)
    else:
        for start in range(0, n, batch):
            q.put(list(range(start, start + batch)))


def manager_consumer(q, n, batch, barrier, report):
    barrier.wait()
    ok = True
    if batch == 1:
        for i in range(n):
            ok = ok and q.get() == i
    else:
        for start in range(0, n, batch):
            ok = ok and q.get() == list(range(start, start + batch))
    report.send((ok, time.perf_counter()))


def race(producer, consumer, what):
    """Starts PRODUCER and CONSUMER (a target and its args each, the barrier and the report pipe added), releases
    them together: the seconds from their release to the consumer's last value."""
    barrier = CTX.Barrier(3)
    theirs, ours = CTX.Pipe(duplex=False)
    procs = [CTX.Process(target=producer[0], args=(*producer[1:], barrier)),
             CTX.Process(target=consumer[0], args=(*consumer[1:], barrier, ours))]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=HANG_S)
        t0 = time.perf_counter()
        if not theirs.poll(600):
            raise RuntimeError(f"{what}: no answer from the consumer in 600 s")
        ok, t1 = theirs.recv()
        for p in procs:
            p.join(HANG_S)
            if p.exitcode != 0:
                raise RuntimeError(f"{what}: a process exited with {p.exitcode}")
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    if not ok:
        raise RuntimeError(f"{what}: the consumer did not get every value in order")
    return t1 - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--batch-pairs", type=int, default=200000)
    ap.add_argument("--dir", default="/dev/shm", help="where the state dirs go (default: tmpfs)")
    ap.add_argument("--durability", default="normal", choices=["normal", "full"])
    ap.add_argument("--pin", type=int, metavar="CPU",
                    help="run everything (daemons, managers, producers, consumers) on this one CPU: without the "
                         "cost of waking a process on another CPU, which on a VM outweighs the work of a request")
    args = ap.parse_args()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})  # inherited by every process started from here
    n, nb = args.pairs, args.batch_pairs - args.batch_pairs % BATCH
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="mpqueue-", dir=args.dir)
    counter = [0]
    cpu = {}  # name -> [daemon CPU seconds per pair, per run]

    def mpctl_run(label, memory, batch, pairs, backlog=False):
        counter[0] += 1
        d = Daemon(bin_dir, os.path.join(work, f"d-{counter[0]}"), 2, args.durability)
        try:
            name = "bench"
            # The queue made (its kind is set by its first put) and emptied before the clock.
            d.call("queue.put", name=name, values=[-1], memory=memory)
            d.call("queue.get", name=name)
            if backlog:
                # PAIRS values already queued (0..PAIRS-1, what the consumer checks): the queue never empties
                # while the clock runs, so no get is waiting when a put comes (nothing is handed over) and
                # every put and every get is a commit of its own.
                for start in range(0, pairs, 10000):
                    d.call("queue.put", name=name, values=list(range(start, min(start + 10000, pairs))))
            before = cpu_seconds(d.proc.pid)
            took = race((mpctl_producer, d.sock, name, pairs, batch),
                        (mpctl_consumer, d.sock, name, pairs, batch), label)
            cpu.setdefault(label, []).append((cpu_seconds(d.proc.pid) - before) / pairs)
            info = d.call("queue.info", name=name)
            if info["length"] != (pairs if backlog else 0) or info["durable"] == memory:
                raise RuntimeError(f"{label}: queue left as {info}")
        finally:
            d.stop()
        return took

    def manager_run(label, batch, pairs):
        with CTX.Manager() as manager:
            q = manager.Queue()
            q.put(-1)
            q.get()
            return race((manager_producer, q, pairs, batch), (manager_consumer, q, pairs, batch), label)

    where = f"durability {args.durability}, state in {args.dir}" + (f", all on CPU {args.pin}" if args.pin is not None
                                                                    else "")
    m1 = "multiprocessing.Manager().Queue(), put(i) / get()"
    mb = f"multiprocessing.Manager().Queue(), lists of {BATCH} as one item"
    contenders = [  # name, pairs, function, baseline name
        (f"mpctl durable queue, 1 value a request ({where})", n, lambda l: mpctl_run(l, False, 1, n), m1),
        ("mpctl durable queue, 1 value a request, never empty (every put and get a commit)", n,
         lambda l: mpctl_run(l, False, 1, n, backlog=True), m1),
        ("mpctl memory queue, 1 value a request", n, lambda l: mpctl_run(l, True, 1, n), m1),
        (m1, n, lambda l: manager_run(l, 1, n), m1),
        (f"mpctl durable queue, {BATCH} values a request (put {BATCH}, get count={BATCH})", nb,
         lambda l: mpctl_run(l, False, BATCH, nb), mb),
        (f"mpctl memory queue, {BATCH} values a request", nb, lambda l: mpctl_run(l, True, BATCH, nb), mb),
        (mb, nb, lambda l: manager_run(l, BATCH, nb), mb),
    ]
    times = {name: [] for name, _, _, _ in contenders}
    try:
        for run in range(args.runs):
            for name, pairs, fn, _ in (contenders if run % 2 == 0 else contenders[::-1]):
                took = fn(name)
                times[name].append(took)
                print(f"  run {run + 1}/{args.runs}: {name}: {took * 1000:.0f} ms, {pairs / took:,.0f} pairs/s",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rate = {name: pairs / statistics.median(times[name]) for name, pairs, _, _ in contenders}

    def ratios(name, base):
        """This contender's rate over BASE's, run by run (each run measures both close together in time)."""
        return [(times[base][r] / pairs_of[base]) / (times[name][r] / pairs_of[name]) for r in range(args.runs)]
    pairs_of = {name: pairs for name, pairs, _, _ in contenders}

    def ratio_text(name, base):
        rs = ratios(name, base)
        return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"
    print(f"\nmpctl queue benchmark ({os.cpu_count()} CPUs, one producer and one consumer process, {n:,} pairs "
          f"({nb:,} batched), median of {args.runs} runs, order alternating)\n")
    width = max(len(name) for name in rate)
    print(f"{'what':{width}} {'pairs/s':>10}  {'vs Manager (runs)':>21}  {'vs lists (runs)':>21}  daemon CPU/pair")
    for name, _, _, base in contenders:
        per_pair = f"{statistics.median(cpu[name]) * 1e6:.1f} us" if name in cpu else ""
        lists = ratio_text(name, mb) if base == mb else ""
        print(f"{name:{width}} {rate[name]:10,.0f}  {ratio_text(name, m1):>21}  {lists:>21}  {per_pair}")
    print(f"\nvs Manager = this rate / that of the Manager's put(i)/get(), run by run: the median and the range over "
          f"the runs (higher is better; target: above 1 for the durable and the memory queue); vs lists = the "
          f"batched rows against the Manager moving the same values as lists of {BATCH}, one list an item")
    print("\nFor the README (Performance):\n")
    print("| what | mpctl | multiprocessing.Manager().Queue(), same run | ratio (median of runs) |")
    print("| --- | --- | --- | --- |")
    for name, _, _, base in contenders:
        if name.startswith("mpctl"):
            print(f"| {name} | {rate[name]:,.0f} pairs/s | put(i)/get(): {rate[m1]:,.0f} pairs/s | "
                  f"**{statistics.median(ratios(name, m1)):.2f}×** |")
            if base == mb:
                print(f"| {name} | {rate[name]:,.0f} pairs/s | lists of {BATCH}: {rate[mb]:,.0f} values/s | "
                      f"{statistics.median(ratios(name, mb)):.2f}× |")

if __name__ == "__main__":
    main()
