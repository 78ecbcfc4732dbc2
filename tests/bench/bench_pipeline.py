#!/usr/bin/env python3
"""Pipeline benchmark of issue 3, measured in one run against bash on this machine; prints the ratio.

  `head -c 1G /dev/zero | cat` as an mpctl pipeline (--pipe, the last stage's stdout captured to the state
  dir by the daemon) vs bash running `head -c 1G /dev/zero | cat > FILE` into the same directory.
  Target: >= 0.9x (mpctl's throughput relative to bash's; 1.0 means just as fast).

The daemon is not in the data path: the stages are wired with a pipe and the last one writes straight into
its output file, so both sides move the same bytes through the same kernel paths. What mpctl adds is the
submit, the spawn and the wait.

Usage: tests/bench/bench_pipeline.py [--build DIR] [--runs N] [--size 1G] [--dir DIR]
Each figure is the median of N runs (default 5). Not a pass/fail test: it prints what it measures.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time, statistics

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Daemon  # noqa: E402  (the same daemon harness as the core benchmarks)


def timed(fn, runs, cleanup):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        cleanup()
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", default="1G", help="bytes through the pipe, as head -c takes them")
    ap.add_argument("--dir", default=os.path.expanduser("~"),
                    help="where the output lands (the state dir and bash's file), default $HOME")
    args = ap.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    mpctl = os.path.join(bin_dir, "mpctl")

    work = tempfile.mkdtemp(prefix="mpctl-bench-pipe-", dir=args.dir)
    daemon = Daemon(bin_dir, work, 2, "normal")
    env = dict(os.environ, MPCTL_SOCKET=daemon.sock, MPCTL_STATE_DIR=daemon.state, MPCTL_NO_AUTOSTART="1")
    try:
        out_file = os.path.join(work, "bash.out")
        last = {}

        def bash_pipeline():
            subprocess.run(["bash", "-c", f"head -c {args.size} /dev/zero | cat > '{out_file}'"], check=True)
            last["bash"] = os.path.getsize(out_file)

        def rm_bash():
            os.unlink(out_file)

        def mpctl_pipeline():
            tid = subprocess.run([mpctl, "submit", "--pipe", "--", "head", "-c", args.size, "/dev/zero", "|", "cat"],
                                 env=env, check=True, capture_output=True, text=True).stdout.strip()
            subprocess.run([mpctl, "wait", tid], env=env, check=True, stdout=subprocess.DEVNULL)
            status = daemon.call("task.get", id=int(tid))
            last["mpctl"] = os.path.getsize(status["stdout_path"])
            last["path"] = status["stdout_path"]

        def rm_mpctl():
            os.unlink(last["path"])

        # Interleaved so that both see the same machine state; one warm-up each first.
        bash_pipeline(); rm_bash()
        mpctl_pipeline(); rm_mpctl()
        bash_s, mpctl_s = [], []
        for _ in range(args.runs):
            bash_s.append(timed(bash_pipeline, 1, rm_bash))
            mpctl_s.append(timed(mpctl_pipeline, 1, rm_mpctl))
        if last["bash"] != last["mpctl"]:
            sys.exit(f"output sizes differ: bash {last['bash']}, mpctl {last['mpctl']}")
        b, m = statistics.median(bash_s), statistics.median(mpctl_s)
        size = last["bash"]
        print(f"pipeline `head -c {args.size} /dev/zero | cat` into {args.dir} ({args.runs} runs, medians):")
        print(f"  bash  > file          {b:8.3f} s  {size / b / 2**30:6.2f} GiB/s")
        print(f"  mpctl --pipe          {m:8.3f} s  {size / m / 2**30:6.2f} GiB/s")
        print(f"  ratio (bash / mpctl)  {b / m:8.2f}x   (target >= 0.9x)")
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
