#pragma once
// `mpctl-slurm-job STATUS_DIR [--element] [--stdout PATH] [--stderr PATH] [--stage N STDERR]... -- ARGV...`:
// what a Slurm job of mpctl runs on its node. It runs ARGV (looked up in PATH) as its child, passes on the
// signals Slurm sends it (scancel --signal, the end of --time), and when the child ends writes
// STATUS_DIR/job-KEY.status (job_files.hpp) with a rename, so the daemon's inotify watch sees it whole; then
// it ends as the child did (the same exit code, or the same signal), so that Slurm's own records agree. KEY
// is $SLURM_JOB_ID, or with --element (one task of a job array) $SLURM_ARRAY_JOB_ID_$SLURM_ARRAY_TASK_ID;
// --stdout and --stderr are the child's files (an array's elements each have their own, which Slurm cannot
// name).
//
// With `--stage N STDERR` for each stage of a pipeline, the words after `--` are the stages' commands one
// after the other (N words each): they run connected by pipes, in a process group of their own (a passed
// signal goes to the group), each with its stderr in its file; the status says how each ended, and the
// runner ends as the pipeline does by bash's pipefail (exec/pipefail.hpp).

namespace mpctl::daemon::slurm {

// ARGC/ARGV as main's. Returns the exit status for main. A binary of its own, linked statically and with
// nothing but libc and this (job_runner_main.cpp): `mpctl-slurm-job DIR -- true` takes 2.1 ms, where the
// same as a mode of mpctld (its dynamic start) took 4.6 ms (hyperfine -N), which 200 jobs on two CPUs felt.
int run_job(int argc, char** argv);

}  // namespace mpctl::daemon::slurm
