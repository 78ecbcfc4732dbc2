#!/usr/bin/env python3
"""Benchmark of shared-memory segments (`mpctl shm`), against the peer in the same run; prints the ratio.

  1. Writing 256 MiB into a segment: `mpctl shm write NAME < FILE` into a segment made with `mpctl shm
     create`, vs `cat FILE > /dev/shm/PEER` into a file of /dev/shm of the same size (what a shell user
     does without mpctl). The source file is in the page cache (read once before). Target: >= 0.8x
     cat's speed (time(cat) / time(mpctl) >= 0.8).
  2. The same from a pipe (`cat FILE | mpctl shm write NAME`), vs `cat FILE | cat > /dev/shm/PEER`: mpctl
     must read it all before writing, to write nothing unless it fits.
  3. shm.list_get of one item of a 10,000-item ShareableList on one open connection, one request at a
     time (target: >= 20,000 per second), from this Python client and from a client in C (rpc_rate.c),
     and pipelined 100 at a time (what the daemon can do). The client in C runs against the daemon and
     against rpc_floor.c (a server that only answers: the floor of the transport), with the two where the
     kernel puts them, on one CPU, and on two.

Usage: tests/bench/bench_shm.py [--build DIR] [--runs N] [--mib M]
Each figure is the median of N runs (default 5). Not a pass/fail test: it prints what it measures.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Connection, Daemon  # noqa: E402


def timed(cmd, env):
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, shell=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def c_rates_by_placement(work, d, request, runs):
    """shm.list_get REQUEST one at a time from rpc_rate.c, against the daemon and against rpc_floor.c, with
    the client and the server where the kernel puts them, pinned to one CPU, and pinned to two: a
    request's round trip is two wake-ups, and on a VM a wake-up on the other CPU costs far more than the
    work of either side, so the placement decides the rate. Median rates per placement."""
    rate, floor = os.path.join(work, "rpc_rate"), os.path.join(work, "rpc_floor")
    for exe in (rate, floor):
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, os.path.basename(exe) + ".c")], check=True)
    floor_sock = os.path.join(work, "floor.sock")
    server = subprocess.Popen([floor, floor_sock])
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(floor_sock):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rpc_floor did not start")
            time.sleep(0.01)
        cpus = sorted(os.sched_getaffinity(0))
        placements = [("where the kernel puts them", None, None)]
        if len(cpus) >= 2:
            placements += [("both on one CPU", {cpus[0]}, {cpus[0]}), ("on two CPUs", {cpus[0]}, {cpus[1]})]
        out = []
        for where, server_cpus, client_cpus in placements:
            rates = {d.sock: [], floor_sock: []}
            for pid in (d.proc.pid, server.pid):
                os.sched_setaffinity(pid, server_cpus or cpus)
            pin = (lambda: os.sched_setaffinity(0, client_cpus)) if client_cpus else None
            for _ in range(runs):
                for sock in rates:
                    count, secs = subprocess.run([rate, sock, "1", request], check=True, capture_output=True,
                                                 text=True, preexec_fn=pin).stdout.split()
                    rates[sock].append(int(count) / float(secs))
            out.append((where, statistics.median(rates[d.sock]), statistics.median(rates[floor_sock])))
        os.sched_setaffinity(d.proc.pid, cpus)
        return out
    finally:
        server.kill()
        server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mib", type=int, default=256)
    args = ap.parse_args()
    mpctl = os.path.abspath(os.path.join(args.build, "bin", "mpctl"))
    work = tempfile.mkdtemp(prefix="mpb-shm-")
    seg, peer = f"mpb-shm-{os.getpid()}", f"/dev/shm/mpb-shm-peer-{os.getpid()}"
    size = args.mib << 20
    d = Daemon(os.path.join(args.build, "bin"), work, 2, "normal")
    try:
        env = dict(os.environ, MPCTL_SOCKET=d.sock, MPCTL_NO_AUTOSTART="1")
        src = os.path.join(work, "data")
        with open(src, "wb") as f:
            f.write(os.urandom(1 << 20) * args.mib)
        subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # into the page cache
        subprocess.run([mpctl, "shm", "create", seg, "--size", str(size), "--persist"], env=env, check=True)
        ours, pipe, theirs, theirs_piped = [], [], [], []
        for run in range(args.runs):
            steps = [(ours, f"{mpctl} shm write {seg} < {src}"), (pipe, f"cat {src} | {mpctl} shm write {seg}"),
                     (theirs, f"cat {src} > {peer}"), (theirs_piped, f"cat {src} | cat > {peer}")]
            for times, cmd in (steps if run % 2 == 0 else steps[::-1]):
                times.append(timed(cmd, env))
        same = subprocess.run(f"cmp {src} /dev/shm/{seg}", shell=True).returncode == 0
        lst = f"mpb-list-{os.getpid()}"
        subprocess.run([mpctl, "shm", "list-create", lst, "--persist", "--values", json.dumps(list(range(10000)))],
                       env=env, check=True)
        conn = Connection(d.sock)
        one, piped = [], []
        for _ in range(args.runs):
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 1.0:
                conn.call("shm.list_get", name=lst, index=n % 10000)
                n += 1
            one.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for b in range(50):
                ids = [conn.send_text("shm.list_get", json.dumps({"name": lst, "index": (b * 100 + i) % 10000}).encode())
                       for i in range(100)]
                for rid in ids:
                    conn.answer(rid)
            piped.append(5000 / (time.perf_counter() - t0))
        request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "shm.list_get", "params": {"name": lst, "index": 5000}})
        placed = c_rates_by_placement(work, d, request, args.runs)
        os.unlink(f"/dev/shm/{lst}")
    finally:
        for path in (f"/dev/shm/{seg}", peer):
            if os.path.exists(path):
                os.unlink(path)
        d.stop()
        shutil.rmtree(work, ignore_errors=True)
    o, p, t, tp = (statistics.median(x) for x in (ours, pipe, theirs, theirs_piped))
    mib = args.mib
    print(f"\nshared memory ({os.cpu_count()} CPUs, median of {args.runs} runs, {mib} MiB)\n")
    print(f"   `mpctl shm write NAME < FILE`        {o*1000:7.1f} ms  ({mib/o:6.0f} MiB/s)")
    print(f"   `cat FILE | mpctl shm write NAME`    {p*1000:7.1f} ms  ({mib/p:6.0f} MiB/s)")
    print(f"   `cat FILE > /dev/shm/x` (peer)       {t*1000:7.1f} ms  ({mib/t:6.0f} MiB/s)")
    print(f"   `cat FILE | cat > /dev/shm/x` (peer)  {tp*1000:7.1f} ms  ({mib/tp:6.0f} MiB/s)")
    print(f"   speed vs cat: file {t/o:.2f}x (target >= 0.8x), pipe {tp/p:.2f}x the piped cat's")
    print(f"   the segment holds the file's bytes: {'yes' if same else 'NO'}")
    print(f"\n   shm.list_get, one item of 10,000, one at a time: {statistics.median(one):8.0f} /s   target >= 20000/s")
    print(f"   the same, 100 requests pipelined:                {statistics.median(piped):8.0f} /s")
    print("\n   from a client in C (rpc_rate.c), against a server in C that only answers (rpc_floor.c):")
    print("   where the client and the server run      mpctld      floor   mpctld/floor")
    for where, ours_rate, floor_rate in placed:
        print(f"   {where:<38} {ours_rate:8.0f}/s {floor_rate:8.0f}/s   {ours_rate / floor_rate:6.2f}x")


if __name__ == "__main__":
    main()
