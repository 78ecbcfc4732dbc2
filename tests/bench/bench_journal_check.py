#!/usr/bin/env python3
"""What the integrity check at every start costs (PRAGMA quick_check in Store::open, daemon/store/integrity).

Builds a journal of N tasks (one real row written by mpctld, copied N times with SQLite), then measures, as
medians of R runs: quick_check alone (wall and CPU time, through Python's sqlite3, which should be the same
libsqlite3 as mpctld's: the version is printed), and mpctld's whole start on that journal (from exec to its
first answer, and the daemon's CPU time until then). Not a pass/fail test: it prints what it measures.

Usage: tests/bench/bench_journal_check.py [--build DIR] [--tasks N] [--runs R] [--label-bytes B]
"""
import argparse, json, os, resource, shutil, socket, sqlite3, statistics, subprocess, tempfile, time


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start_once(mpctld, state, sock):
    """Seconds from exec to the first answer to daemon.status, and the daemon's CPU seconds until then."""
    t0 = time.perf_counter()
    p = subprocess.Popen([mpctld, "--foreground", "--state-dir", state, "--socket", sock, "--workers", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if p.poll() is not None:
                raise SystemExit(f"mpctld exited {p.returncode}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}\n')
                    if b'"result"' in s.recv(65536):
                        break
            except OSError:
                time.sleep(0.002)
        wall = time.perf_counter() - t0
        fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return wall, cpu
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--label-bytes", type=int, default=0, help="a label of this size on every task (bigger rows)")
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    mpctld, mpctl = os.path.join(bin_dir, "mpctld"), os.path.join(bin_dir, "mpctl")
    work = tempfile.mkdtemp(prefix="mpctl-bench-check-")
    state, sock = os.path.join(work, "state"), os.path.join(work, "d.sock")
    env = dict(os.environ, MPCTL_SOCKET=sock, MPCTL_STATE_DIR=state, MPCTL_NO_AUTOSTART="1")
    try:
        # One real row, as mpctld writes it.
        p = subprocess.Popen([mpctld, "--foreground", "--state-dir", state, "--socket", sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while subprocess.run([mpctl, "daemon", "status"], env=env, capture_output=True).returncode != 0:
            time.sleep(0.01)
        label = ["--label", "note=" + "x" * args.label_bytes] if args.label_bytes else []
        tid = subprocess.run([mpctl, "submit", "--name", "build", "--label", "team=infra", *label, "--", "true"],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run([mpctl, "wait", tid], env=env, check=True)
        subprocess.run([mpctl, "daemon", "stop"], env=env, check=True, capture_output=True)
        p.wait()

        db_path = os.path.join(state, "mpctld.db")
        db = sqlite3.connect(db_path)
        cols = [r[1] for r in db.execute("PRAGMA table_info(tasks)")]
        row = db.execute(f"SELECT {', '.join(cols)} FROM tasks").fetchone()
        spec = json.loads(row[cols.index("spec")])
        rows = []
        for i in range(2, args.tasks + 1):
            r = list(row)
            r[cols.index("id")] = i
            r[cols.index("spec")] = json.dumps(dict(spec, argv=["true", str(i)]))
            rows.append(r)
        with db:
            db.executemany(f"INSERT INTO tasks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        db.close()
        size_mb = os.path.getsize(db_path) / 1e6

        walls, cpus = [], []
        for _ in range(args.runs):
            c = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            w0, c0 = time.perf_counter(), cpu_self()
            assert c.execute("PRAGMA quick_check").fetchall() == [("ok",)]
            walls.append(time.perf_counter() - w0)
            cpus.append(cpu_self() - c0)
            c.close()
        starts = [start_once(mpctld, state, sock) for _ in range(args.runs)]
        ms = lambda v: f"{statistics.median(v) * 1000:.0f} ms"
        print(f"journal: {args.tasks} tasks, {size_mb:.1f} MB (SQLite {sqlite3.sqlite_version})")
        print(f"PRAGMA quick_check: wall {ms(walls)}, CPU {ms(cpus)}")
        print(f"mpctld start to first answer: wall {ms([s[0] for s in starts])}, CPU {ms([s[1] for s in starts])}"
              f" (the check included)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
