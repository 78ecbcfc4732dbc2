#!/usr/bin/env python3
"""Benchmarks of the file locks (`mpctl lock`, lock.acquire/lock.release), measured in one run against their
peers on this machine; prints ratios.

  1. Shell loop: 300 `mpctl lock run F -- true` vs 300 `flock F true` (util-linux flock(1)), the same file and
     the same `sh -c 'i=0; while ...'` loop, each loop timed as a whole. Target: <= 1.1x flock(1).
     (300 plain `true` in the same loop is printed too: the fork+exec floor both stand on.)
  2. Round trips: acquire+release pairs on one open connection, lease "connection", each request sent only
     once the answer to the previous one is read (no pipelining), for ~2 s or 20,000 pairs, whichever comes
     first. Target: >= 10,000 pairs per second. Printed with it: the daemon's CPU time and this Python
     client's per pair (where the time goes); the same pairs from a client in C (rpc_rate.c: the Python
     client spends as much CPU per pair as the daemon); and, for comparison only, the same pairs pipelined (100 pairs
     written at once, releases by connection, no token, then the 200 answers read).
  3. Contention: 8 client processes, each with its own connection, on ONE lock, each looping blocking
     acquire then release for ~3 s. Printed: grants per second, the mean, p99 and maximum time one acquire
     waited (from sending the request to reading the grant), and grants per client (min/max): with FIFO
     waiters every client gets about 1/8, and no wait is much longer than 8 holds.
     Peer: the same with 8 processes each blocking in fcntl.flock(LOCK_EX) on an open file description of
     its own (one file), then LOCK_UN: the kernel's flock, which wakes waiters with no order.
     Processes, not threads, on both sides, so that both are measured alike (threads of one process that
     each hold the lock through a connection lease contend in the daemon as processes do).

Usage: tests/bench/bench_locks.py [--build DIR] [--runs N] [--dir DIR]     (DIR defaults to ./build)
Each figure is the median of N runs (default 5); the worst max wait over the runs is printed as well.
Not a pass/fail test: it prints what it measures.
"""
import argparse, fcntl, json, multiprocessing, os, queue, shlex, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Connection, Daemon  # noqa: E402

CLIENTS = 8
HANG_S = 30  # an answer that takes longer than this is reported as a hang


def timed(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def sh_loop(n, command):
    # `|| exit 1`: a failing iteration fails the loop (and the benchmark), it is not timed as a success.
    return ["sh", "-c", f"i=0; while [ $i -lt {n} ]; do {command} >/dev/null || exit 1; i=$((i+1)); done"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def fmt_wait(s):
    return f"{s*1e6:.1f}us" if s < 0.001 else f"{s*1000:.2f}ms"


def connect(sock):
    c = Connection(sock)
    c.conn.settimeout(HANG_S)
    return c


def lock_requests(path):
    """The ready-made params of lock.acquire and (a template of) lock.release on PATH."""
    p = json.dumps(path).encode()
    return b'{"path":%s,"lease":"connection"}' % p, b'{"path":%s,"token":%%d}' % p


def lock_pairs(sock, path, max_pairs, seconds):
    """Acquire+release pairs per second on one connection, one request at a time."""
    c = connect(sock)
    acquire, release = lock_requests(path)
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while n < max_pairs:
        token = c.answer(c.send_text("lock.acquire", acquire))["token"]
        released = c.answer(c.send_text("lock.release", release % token))["released"]
        if len(released) != 1 or released[0]["token"] != token:
            raise RuntimeError(f"lock.release of token {token} answered {released}")
        n += 1
        if time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - t0
    c.close()
    return n / elapsed, n


def pipelined_pairs(sock, path, max_pairs, seconds, batch=100):
    """Acquire+release pairs per second on one connection, BATCH pairs written at once, then read."""
    c = connect(sock)
    acquire, _ = lock_requests(path)
    release = b'{"path":%s}' % json.dumps(path).encode()  # this connection's own holding
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while n < max_pairs:
        c.next_id += 2 * batch
        first = c.next_id - 2 * batch + 1
        c.file.write(b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"lock.acquire","params":%s}\n'
                              b'{"jsonrpc":"2.0","id":%d,"method":"lock.release","params":%s}\n' %
                              (first + 2 * i, acquire, first + 2 * i + 1, release) for i in range(batch)))
        c.file.flush()
        for rid in range(first, first + 2 * batch):
            c.answer(rid)
        n += batch
        if time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - t0
    c.close()
    return n / elapsed


def cpu_seconds(pid):
    """User+system CPU time of process PID (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def contender(kind, sock, path, start, stop, out, idx):
    """One client of (3): waits (seconds) of each of its acquires, put on OUT as (idx, waits, error)."""
    try:
        waits = []
        if kind == "mpctl":
            c = connect(sock)
            acquire, release = lock_requests(path)

            def take():
                return c.answer(c.send_text("lock.acquire", acquire))["token"]

            def give(token):
                c.answer(c.send_text("lock.release", release % token))
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # an open file description of its own

            def take():
                fcntl.flock(fd, fcntl.LOCK_EX)

            def give(_):
                fcntl.flock(fd, fcntl.LOCK_UN)
        while time.monotonic() < start:
            time.sleep(0.001)
        while time.monotonic() < stop:
            t = time.perf_counter()
            token = take()
            waits.append(time.perf_counter() - t)
            give(token)
        out.put((idx, waits, None))
    except Exception as e:  # reported by the parent, with the client it happened in
        out.put((idx, None, f"{type(e).__name__}: {e}"))


def contend(kind, sock, path, seconds):
    """Runs CLIENTS contenders of KIND ("mpctl" or "flock") on PATH for SECONDS; returns their waits."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.monotonic() + 0.5  # every client connected (and its file open) before the first acquire
    stop = start + seconds
    procs = [ctx.Process(target=contender, args=(kind, sock, path, start, stop, out, i)) for i in range(CLIENTS)]
    for p in procs:
        p.start()
    results, errors = {}, []
    try:
        while len(results) + len(errors) < CLIENTS:
            try:
                idx, waits, error = out.get(timeout=max(0.0, stop - time.monotonic()) + HANG_S)
            except queue.Empty:
                missing = sorted(set(range(CLIENTS)) - set(results) - {e[0] for e in errors})
                errors.extend((i, f"no answer {HANG_S}s after the end of the run (hang)") for i in missing)
                break
            if error:
                errors.append((idx, error))
            else:
                results[idx] = waits
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()  # our own child, by its pid
                p.join(5)
    if errors:
        raise RuntimeError(f"{kind} contention: " + "; ".join(f"client {i}: {e}" for i, e in sorted(errors)))
    return [results[i] for i in range(CLIENTS)]


def contention_figures(per_client, seconds):
    waits = [w for ws in per_client for w in ws]
    counts = [len(ws) for ws in per_client]
    return {"rate": len(waits) / seconds, "mean": statistics.mean(waits), "p99": pct(waits, 0.99),
            "max": max(waits), "min_n": min(counts), "max_n": max(counts), "counts": counts}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--loop", type=int, default=300)
    ap.add_argument("--pairs", type=int, default=20000, help="most acquire+release pairs per run of (2)")
    ap.add_argument("--pair-seconds", type=float, default=2.0, help="most seconds per run of (2)")
    ap.add_argument("--contend-seconds", type=float, default=3.0, help="seconds per run of (3)")
    ap.add_argument("--dir", default=None, help="where the temp dir (state, socket, lock files) goes "
                                                "(default: $TMPDIR or /tmp)")
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    mpctl = os.path.join(bin_dir, "mpctl")
    flock = shutil.which("flock")
    true = shutil.which("true") or "/bin/true"
    if not flock:
        sys.exit("flock(1) (util-linux) is needed as the peer")
    work = tempfile.mkdtemp(prefix="mpb-locks-", dir=args.dir)
    d = None
    try:
        d = Daemon(bin_dir, os.path.join(work, "daemon"), os.cpu_count(), "normal")
        env = dict(os.environ, MPCTL_SOCKET=d.sock, MPCTL_NO_AUTOSTART="1")

        # 1. The shell loop, the two interleaved run by run (and their order swapped) to cancel drift.
        f = os.path.join(work, "loop.lock")
        bodies = (f"{shlex.quote(mpctl)} lock run {shlex.quote(f)} -- true",
                  f"{shlex.quote(flock)} {shlex.quote(f)} true", shlex.quote(true))
        ours_cmd, peer_cmd, floor_cmd = (sh_loop(args.loop, b) for b in bodies)
        for body in bodies:  # warm up: page cache, the daemon's first lock
            timed(sh_loop(10, body), env)
        ours, peer, floor = [], [], []
        for run in range(args.runs):
            order = [(ours, ours_cmd), (peer, peer_cmd), (floor, floor_cmd)]
            for times, cmd in (order if run % 2 == 0 else order[::-1]):
                times.append(timed(cmd, env))
        loop = (statistics.median(ours), statistics.median(peer), statistics.median(floor))

        # 2. Round trips on one connection.
        lock_rates, pair_counts, daemon_cpu, client_cpu, piped_rates, c_rates = [], [], [], [], [], []
        pair_file = os.path.join(work, "pairs.lock")
        c_client = os.path.join(work, "rpc_rate")
        subprocess.run(["cc", "-O2", "-o", c_client, os.path.join(HERE, "rpc_rate.c")], check=True)
        # A pair: acquire with a connection lease, then release what this connection holds there.
        c_pair = [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "lock.acquire",
                              "params": {"path": pair_file, "lease": "connection"}}),
                  json.dumps({"jsonrpc": "2.0", "id": 2, "method": "lock.release", "params": {"path": pair_file}})]
        for _ in range(args.runs):
            out = subprocess.run([c_client, d.sock, str(args.pair_seconds), *c_pair], check=True,
                                 capture_output=True, text=True).stdout.split()
            c_rates.append(int(out[0]) / float(out[1]))
            d_cpu, c_cpu = cpu_seconds(d.proc.pid), time.process_time()
            rate, n = lock_pairs(d.sock, pair_file, args.pairs, args.pair_seconds)
            daemon_cpu.append((cpu_seconds(d.proc.pid) - d_cpu) / n)
            client_cpu.append((time.process_time() - c_cpu) / n)
            lock_rates.append(rate)
            pair_counts.append(n)
            piped_rates.append(pipelined_pairs(d.sock, pair_file, args.pairs, args.pair_seconds))
        pairs = tuple(statistics.median(x)
                      for x in (lock_rates, pair_counts, daemon_cpu, client_cpu, piped_rates, c_rates))

        # 3. Contention: 8 clients on one lock, then the kernel's flock with 8 processes.
        runs = {"mpctl": [], "flock": []}
        for _ in range(args.runs):
            for kind in runs:
                path = os.path.join(work, f"contend-{kind}.lock")
                runs[kind].append(contention_figures(contend(kind, d.sock, path, args.contend_seconds),
                                                     args.contend_seconds))
        # The daemon must hold nothing now: every grant was released.
        left = [l for l in d.call("lock.list")["locks"] if l["holders"] or l["waiters"]]
        d.stop()
        d = None
    finally:
        if d is not None:
            try:
                d.stop()
            except Exception:
                d.proc.kill()  # our own child, by its pid
                d.proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmpctl lock benchmarks ({os.cpu_count()} CPUs, median of {args.runs} runs)\n")
    ours, peer, floor = loop
    n = args.loop
    print(f"1. shell loop, {n} iterations, one file")
    print(f"   {n}x `mpctl lock run F -- true`  {ours*1000:7.0f}ms  ({ours/n*1000:.2f}ms each)")
    print(f"   {n}x `flock F true`              {peer*1000:7.0f}ms  ({peer/n*1000:.2f}ms each)")
    print(f"   {n}x `true` (fork+exec floor)    {floor*1000:7.0f}ms  ({floor/n*1000:.2f}ms each)")
    print(f"   ratio mpctl/flock: {ours/peer:.2f}x   target <= 1.1x")
    print(f"   over the floor: mpctl +{(ours-floor)/n*1000:.2f}ms, flock +{(peer-floor)/n*1000:.2f}ms per iteration"
          f" ({(ours-floor)/max(peer-floor, 1e-9):.2f}x)")

    lock_rate, count, d_cpu, c_cpu, piped, c_rate = pairs
    print(f"\n2. acquire+release pairs on one connection, up to {args.pairs} pairs or {args.pair_seconds:g}s")
    print(f"   one request at a time (no pipelining)  {lock_rate:8.0f} pairs/s  ({1e6/lock_rate:.1f}us a pair, "
          f"{count:.0f} pairs)   target >= 10000/s")
    print(f"     CPU per pair: daemon {d_cpu*1e6:.1f}us, this Python client {c_cpu*1e6:.1f}us "
          f"(/proc/PID/stat ticks, {1/os.sysconf('SC_CLK_TCK')*1000:.0f}ms resolution)")
    print(f"   the same from a client in C (rpc_rate.c)    {c_rate:8.0f} pairs/s  ({1e6/c_rate:.1f}us a pair)"
          f"   target >= 10000/s")
    print(f"   pipelined, 100 pairs a write (comparison only) {piped:8.0f} pairs/s  ({1e6/piped:.1f}us a pair)")

    print(f"\n3. {CLIENTS} client processes on one lock, each looping acquire (blocking) + release, "
          f"{args.contend_seconds:g}s")
    names = {"mpctl": "mpctl (lock.acquire/release, own connection)", "flock": "fcntl.flock LOCK_EX/LOCK_UN (peer)"}
    for kind, figs in runs.items():
        med = {k: statistics.median(f[k] for f in figs) for k in ("rate", "mean", "p99", "max", "min_n", "max_n")}
        worst = max(f["max"] for f in figs)
        fewest = min(f["min_n"] for f in figs)
        share = min(f["min_n"] / (sum(f["counts"]) / CLIENTS) for f in figs)
        print(f"   {names[kind]}")
        print(f"     grants/s {med['rate']:8.0f}   wait mean {fmt_wait(med['mean'])}   p99 {fmt_wait(med['p99'])}"
              f"   max {fmt_wait(med['max'])} (worst of runs {fmt_wait(worst)})")
        print(f"     grants per client min/max {med['min_n']:.0f}/{med['max_n']:.0f} "
              f"(ratio {med['min_n']/max(med['max_n'], 1):.2f}); fewest in any run {fewest}, "
              f"{share:.0%} of a fair share")
        print("     per client, each run: " + "  ".join(" ".join(str(c) for c in f["counts"]) for f in figs))
    m = {k: statistics.median(f[k] for f in runs["mpctl"]) for k in ("max", "p99", "rate")}
    pf = {k: statistics.median(f[k] for f in runs["flock"]) for k in ("max", "p99", "rate")}
    print(f"   ratios mpctl/flock: max wait {m['max']/pf['max']:.2f}x, grants/s {m['rate']/pf['rate']:.3f}x")
    if left:
        print(f"\n   left held or waited for in the daemon after the runs: {json.dumps(left)}")
    print("\nratio = ours / peer; a fair share = the run's grants / 8")


if __name__ == "__main__":
    main()
