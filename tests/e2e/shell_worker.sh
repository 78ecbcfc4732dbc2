#!/bin/bash
# A warm-pool worker in bash alone (proto/PROTOCOL.md, "Warm workers"), for tests/e2e/test_warm_pools.py: it
# shows that any program speaking the protocol is a worker, not only python3 -m mpctl.worker.
#
# It reads run lines with `read`, which drops the descriptors attached to them, and so runs each task with
# the run message's stdout_path and stderr_path instead. It parses JSON with bash patterns only, which is
# enough for the tests' commands: argv words of plain ASCII without '"', ',' or '\', and output paths the
# daemon makes (its state dir, no quotes). The task's env and cwd are not applied: the tests do not need them.
set -u
fd=${MPCTL_WORKER_FD:-3}
echo "shell worker $$ started (pool ${MPCTL_POOL:-?}, slot ${MPCTL_WORKER:-?})"  # into workers/POOL.log
echo "{\"hello\":{\"protocol\":1,\"pid\":$$}}" >&"$fd"

# The daemon closes the socket to end a worker: read fails at end of file and the loop ends.
while IFS= read -r line <&"$fd"; do
    # Anything but a run (a message this worker does not know) is ignored, as the protocol says.
    [[ $line == '{"run":'* ]] || continue
    [[ $line =~ \"task\":([0-9]+) ]] || continue
    task=${BASH_REMATCH[1]}
    out=/dev/null err=/dev/null
    [[ $line =~ \"stdout_path\":\"([^\"]*)\" ]] && out=${BASH_REMATCH[1]}
    [[ $line =~ \"stderr_path\":\"([^\"]*)\" ]] && err=${BASH_REMATCH[1]}
    argv=()
    if [[ $line =~ \"argv\":\[\"([^]]*)\"\] ]]; then
        # The words between the outer quotes are separated by '","': split there.
        words=${BASH_REMATCH[1]}
        IFS=$'\x1f' read -r -a argv <<<"${words//\",\"/$'\x1f'}"
    fi
    # The task in a subshell of its own, so that what it does (exit, cd) stays there; its output appended to
    # the task's files (they are fresh for each attempt).
    ( exec "${argv[@]}" ) </dev/null >>"$out" 2>>"$err"
    status=$?
    # What a shell would report: 128+N is death by signal N.
    if (( status > 128 && status < 160 )); then
        echo "{\"done\":{\"task\":$task,\"signal\":$((status - 128))}}" >&"$fd"
    else
        echo "{\"done\":{\"task\":$task,\"exit_code\":$status}}" >&"$fd"
    fi
done
echo "shell worker $$ ends: the daemon closed its socket"
