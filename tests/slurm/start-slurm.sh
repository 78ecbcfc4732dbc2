#!/usr/bin/env bash
# A throwaway single-node Slurm cluster (Debian 12's slurm-wlm 22.05 + munge) for tests, without systemd.
#
#   tests/slurm/start-slurm.sh [start] DIR   start a cluster whose every runtime file lives under DIR, or do
#                                           nothing if one already runs from DIR; then print export lines
#   tests/slurm/start-slurm.sh stop DIR      stop the cluster running from DIR; fine if nothing runs
#
#   eval "$(tests/slurm/start-slurm.sh /tmp/slurm)"   # sets SLURM_CONF: sbatch, squeue, scontrol, ... reach it
#   sbatch --parsable --wrap 'echo hi' -o /tmp/slurm/out.%j
#   tests/slurm/start-slurm.sh stop /tmp/slurm
#
# start installs slurm-wlm and munge with apt-get when a command is missing (needs root, as do the daemons:
# SlurmUser=root). It writes DIR/etc/slurm.conf (ports picked free and kept in DIR/etc/ports), a munge key and
# DIR/munge/munge.socket.2 (slurm.conf's AuthInfo=socket=...), then runs munged, slurmctld (-c: no state
# from an earlier run, so job ids start at 1 again) and slurmd, waits until the node is idle and then until a
# probe job (job 1, named start-slurm-probe) has completed: slurmctld starts no job in its first ~3 s. So the
# caller's first job is job 2. It makes DIR mode 0755 (munged wants its socket's directories searchable by
# all); DIR must be short (socket paths) and without whitespace. Only the export lines go to stdout; progress
# and errors go to stderr. On failure it prints the logs' tails, stops what it started and exits 1 with a last
# line "start-slurm.sh: error: REASON".
#
# stop cancels this cluster's jobs (squeue/scancel with DIR's slurm.conf: nothing of any other cluster), waits
# for them, then ends slurmd, slurmctld and munged by the pids in DIR's pid files (each checked to be that
# daemon, started with DIR's files), SIGKILL after a deadline. Both commands take a lock on DIR/.lock.
#
# Layout: DIR/etc (slurm.conf, plugstack.conf, ports), DIR/munge (key, socket, pid, seed, log), DIR/run (pid
# files), DIR/state (StateSaveLocation), DIR/spool (SlurmdSpoolDir), DIR/log (daemon logs).
set -euo pipefail

PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin
prog=${0##*/}
# Set in slurmd's environment (and so in the slurmstepds it starts), never in a job's: stop finds leftover
# slurmstepds of this DIR by it.
marker_var=MPCTL_SLURM_CLUSTER_DIR
start_deadline=60   # seconds from start for the node to become idle and the probe job to complete
stop_deadline=20    # seconds for a daemon to exit after SIGTERM before SIGKILL

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
usage() { printf 'usage: %s [start] DIR | %s stop DIR\n' "$prog" "$prog" >&2; exit 2; }

cmd=start
case ${1-} in
    start | stop) cmd=$1; shift ;;
    -h | --help) usage ;;
esac
[[ $# -eq 1 && -n $1 ]] || usage
dir_arg=$1

now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# --- paths -------------------------------------------------------------------------------------------------

set_paths() {
    D=$1
    conf=$D/etc/slurm.conf
    ports_file=$D/etc/ports
    munge_dir=$D/munge
    munge_key=$munge_dir/munge.key
    munge_sock=$munge_dir/munge.socket.2
    munge_pid=$munge_dir/munged.pid
    munge_log=$munge_dir/munged.log
    munge_seed=$munge_dir/munged.seed
    ctld_pid=$D/run/slurmctld.pid
    slurmd_pid=$D/run/slurmd.pid
    ctld_log=$D/log/slurmctld.log
    slurmd_log=$D/log/slurmd.log
    node=$(hostname -s)
    export SLURM_CONF=$conf
}

# --- processes, by recorded pid only -----------------------------------------------------------------------

# pid_of PIDFILE EXE NEEDLE: print the pid in PIDFILE if that process runs EXE (basename) and its command line
# contains NEEDLE (a path under DIR); fail otherwise (no file, stale pid, pid reused by something else).
pid_of() {
    local pidfile=$1 exe=$2 needle=$3 pid cmdline target
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile" 2>/dev/null) || return 1
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    target=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    target=${target##*/}
    # Debian's /usr/sbin/slurmctld and slurmd are alternatives for slurmctld-wlm and slurmd-wlm.
    [[ $target == "$exe" || $target == "$exe"-* ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ " $cmdline " == *"$needle"* ]] || return 1
    echo "$pid"
}
munged_pid() { pid_of "$munge_pid" munged "--socket=$munge_sock "; }
ctld_pid_now() { pid_of "$ctld_pid" slurmctld " $conf "; }
slurmd_pid_now() { pid_of "$slurmd_pid" slurmd " $conf "; }

alive() { [[ -d /proc/$1 ]] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }

# wait_gone PID NAME SECONDS: wait for PID to exit; SIGKILL it at the deadline.
wait_gone() {
    local pid=$1 name=$2 end
    end=$(($(now_ms) + $3 * 1000))
    while alive "$pid"; do
        if (($(now_ms) > end)); then
            log "$name (pid $pid) still running after ${3}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            end=$(($(now_ms) + 5000))
            while alive "$pid" && (($(now_ms) < end)); do sleep 0.1; done
            alive "$pid" && log "warning: $name (pid $pid) survived SIGKILL"
            return 0
        fi
        sleep 0.1
    done
}

# stop_pid NAME PID: SIGTERM, then wait (SIGKILL at the deadline).
stop_pid() {
    [[ -n $2 ]] || return 0
    log "stopping $1 (pid $2)"
    kill -TERM "$2" 2>/dev/null || true
    wait_gone "$2" "$1" "$stop_deadline"
}

# Leftover slurmstepds of this DIR (slurmd started with the marker in its environment) and their process trees.
marked_pids() {
    local p
    for p in /proc/[0-9]*; do
        [[ ${p#/proc/} != "$$" ]] || continue
        grep -qsxzF "$marker_var=$D" "$p/environ" 2>/dev/null && echo "${p#/proc/}"
    done
    return 0
}
descendants() {  # descendants PID...: the PIDs and all their descendants
    local -A kids=()
    local pid ppid queue=("$@") out=()
    while read -r pid ppid; do kids[$ppid]+="$pid "; done < <(ps -e -o pid=,ppid=)
    while ((${#queue[@]})); do
        pid=${queue[0]}; queue=("${queue[@]:1}")
        out+=("$pid")
        # shellcheck disable=SC2206  # word splitting of a pid list is meant
        [[ -n ${kids[$pid]-} ]] && queue+=(${kids[$pid]})
    done
    echo "${out[@]}"
}

cancel_jobs() {  # cancel every job of this cluster (slurmctld must answer) and wait for them to finish
    local ids end
    ids=$(timeout 15 squeue -h -o %F 2>/dev/null | sort -u) || return 0
    [[ -n $ids ]] || return 0
    log "cancelling this cluster's jobs: $(echo "$ids" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one argument per job id
    timeout 15 scancel $ids 2>/dev/null || true
    end=$(($(now_ms) + 20000))
    while (($(now_ms) < end)); do
        ids=$(timeout 10 squeue -h -t running,completing,suspended,configuring -o %i 2>/dev/null) || return 0
        [[ -z $ids ]] && return 0
        sleep 0.2
    done
    log "warning: jobs still running or completing: $(echo "$ids" | tr '\n' ' ')"
}

stop_all() {
    local p pids
    if p=$(ctld_pid_now) && [[ -n $p ]]; then cancel_jobs; fi
    p=$(slurmd_pid_now) || p=
    stop_pid slurmd "$p"
    p=$(ctld_pid_now) || p=
    stop_pid slurmctld "$p"
    p=$(munged_pid) || p=
    stop_pid munged "$p"
    pids=$(marked_pids)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        pids=$(descendants $pids)
        log "killing leftover processes of slurmd's jobs: $pids"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    rm -f "$ctld_pid" "$slurmd_pid" "$munge_pid"
}

# --- start -------------------------------------------------------------------------------------------------

ensure_installed() {
    local b missing=() out
    for b in sbatch squeue scontrol scancel sinfo slurmctld slurmd munged mungekey; do
        command -v "$b" >/dev/null 2>&1 || missing+=("$b")
    done
    ((${#missing[@]})) || return 0
    [[ $EUID -eq 0 ]] || die "missing ${missing[*]} and not root: cannot apt-get install slurm-wlm munge"
    log "missing ${missing[*]}: installing slurm-wlm and munge"
    local t0 pkgs=(slurm-wlm munge)
    t0=$(now_ms)
    if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" 2>&1); then
        if grep -qE 'Unable to locate package|has no installation candidate|404 +Not Found|Failed to fetch' <<<"$out"; then
            log "install failed for lack of package lists: apt-get update, then again"
            apt-get update -q >&2 || die "apt-get update failed"
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2 ||
                die "apt-get install slurm-wlm munge failed"
        else
            printf '%s\n' "$out" | tail -n 20 >&2
            die "apt-get install slurm-wlm munge failed"
        fi
    fi
    log "installed in $(($(now_ms) - t0)) ms"
    for b in sbatch slurmctld slurmd munged mungekey; do
        command -v "$b" >/dev/null 2>&1 || die "$b still missing after installing slurm-wlm and munge"
    done
}

show_logs() {
    local f
    for f in "$munge_log" "$D"/log/munged.out "$ctld_log" "$D"/log/slurmctld.out "$slurmd_log" "$D"/log/slurmd.out; do
        [[ -s $f ]] || continue
        printf -- '--- tail of %s\n' "$f" >&2
        tail -n 25 "$f" >&2
    done
}

fail() {  # fail REASON: logs, stop what was started, one-line reason last
    show_logs
    if [[ -n ${sinfo_diag-} ]]; then printf -- '--- diagnostics\n%s\n' "$sinfo_diag" >&2; fi
    stop_all 2>/dev/null || true
    die "$1"
}

# Local TCP ports in use (v4 and v6), one decimal a line. TIME_WAIT (st 06) does not count: the daemons bind
# with SO_REUSEADDR, so a restart can take the ports of the run before.
used_ports() {
    local f _sl local_addr _rem st _rest
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        while read -r _sl local_addr _rem st _rest; do
            [[ $local_addr == *:* && $st != 06 ]] && echo $((16#${local_addr##*:}))
        done < <(tail -n +2 "$f")
    done
    return 0
}

# pick_ports: SLURMCTLD_PORT and SLURMD_PORT, the ones recorded in DIR if still free, else two consecutive free
# ports from 16000-31999 (below the usual ephemeral range), starting at a random point.
pick_ports() {
    local used p i
    used=" $(used_ports | sort -un | tr '\n' ' ') "
    SLURMCTLD_PORT='' SLURMD_PORT=''
    if [[ -r $ports_file ]]; then
        # shellcheck disable=SC1090
        source "$ports_file"
        if [[ ${SLURMCTLD_PORT-} =~ ^[0-9]+$ && ${SLURMD_PORT-} =~ ^[0-9]+$ &&
            $used != *" $SLURMCTLD_PORT "* && $used != *" $SLURMD_PORT "* ]]; then
            return 0
        fi
    fi
    p=$((16000 + (RANDOM * 32768 + RANDOM) % 15999))
    for ((i = 0; i < 15999; i++, p++)); do
        ((p < 31999)) || p=16000
        if [[ $used != *" $p "* && $used != *" $((p + 1)) "* ]]; then
            SLURMCTLD_PORT=$p SLURMD_PORT=$((p + 1))
            printf 'SLURMCTLD_PORT=%s\nSLURMD_PORT=%s\n' "$SLURMCTLD_PORT" "$SLURMD_PORT" >"$ports_file"
            return 0
        fi
    done
    return 1
}

write_conf() {
    local cpus mem_kb mem_mb
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    mem_mb=$((mem_kb / 1024))
    # A bit below MemTotal (slurmd -C reports MemTotal itself): 95%, or 64 MiB less on small machines.
    mem_mb=$((mem_mb * 95 / 100 < mem_mb - 64 ? mem_mb * 95 / 100 : mem_mb - 64))
    ((mem_mb > 0)) || mem_mb=1
    : >"$D/etc/plugstack.conf"   # empty: no /etc/slurm/plugstack.conf, no SPANK plugins
    cat >"$conf.tmp" <<EOF
# Written by tests/slurm/start-slurm.sh for a throwaway single-node cluster under $D.
ClusterName=mpctltest
SlurmctldHost=$node
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$ctld_pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$ctld_log
SlurmdLogFile=$slurmd_log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$D/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
Epilog=/bin/true
MailProg=/bin/true
MessageTimeout=5
KillWait=2
MinJobAge=600
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
NodeName=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    mv -f "$conf.tmp" "$conf"
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.1 s until it succeeds; fail() at the deadline.
wait_for() {
    local secs=$1 what=$2 end
    shift 2
    end=$(($(now_ms) + secs * 1000))
    until "$@"; do
        (($(now_ms) < end)) || fail "timed out after ${secs}s waiting for $what"
        sleep 0.1
    done
}

start_munged() {
    if [[ ! -s $munge_key ]]; then
        mungekey --create --keyfile="$munge_key" >&2 || fail "mungekey --create --keyfile=$munge_key failed"
    fi
    chmod 0400 "$munge_key"
    rm -f "$munge_pid"
    log "starting munged"
    # munged forks, and its parent returns once the daemon is ready (or has failed).
    munged --socket="$munge_sock" --key-file="$munge_key" --pid-file="$munge_pid" \
        --log-file="$munge_log" --seed-file="$munge_seed" \
        </dev/null >>"$D/log/munged.out" 2>&1 9>&- || fail "munged failed to start (see $munge_log, $D/log/munged.out)"
    wait_for 10 "munged's pid file and socket" munged_up
}

munged_up() { munged_pid >/dev/null && [[ -S $munge_sock ]]; }
slurmd_up() { slurmd_pid_now >/dev/null; }
ctld_up() { ctld_pid_now >/dev/null && timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurm() {
    rm -f "$ctld_pid" "$slurmd_pid"
    log "starting slurmctld (ports $SLURMCTLD_PORT, $SLURMD_PORT)"
    slurmctld -c -i -f "$conf" </dev/null >>"$D/log/slurmctld.out" 2>&1 9>&- ||
        fail "slurmctld failed to start (see $ctld_log, $D/log/slurmctld.out)"
    wait_for 30 "slurmctld to answer scontrol ping" ctld_up
    log "starting slurmd"
    env "$marker_var=$D" slurmd -c -f "$conf" </dev/null >>"$D/log/slurmd.out" 2>&1 9>&- ||
        fail "slurmd failed to start (see $slurmd_log, $D/log/slurmd.out)"
    wait_for 10 "slurmd's pid file" slurmd_up
}

# The node's state (sinfo %T: idle, down*, drained, ...), empty if sinfo fails.
node_state() { timeout 10 sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1; }

wait_idle() {
    local end state resumed=0 t0=$1
    end=$(($(now_ms) + start_deadline * 1000))
    while :; do
        state=$(node_state) || state=
        case $state in
            idle) break ;;
            mixed | allocated | completing) break ;;  # (only with jobs, which a fresh cluster has not)
        esac
        slurmd_pid_now >/dev/null || fail "slurmd exited (node state '${state:-?}')"
        ctld_pid_now >/dev/null || fail "slurmctld exited"
        # Down or drained with a reason (ReturnToService=2 should make this rare): resume it once.
        if ((!resumed)) && [[ $state =~ ^(down|drain|drained|draining|fail|inval)$ ]] &&
            (($(now_ms) - t0 > 5000)); then
            sinfo_diag=$(timeout 10 sinfo -R 2>&1 || true)
            log "node $node is $state ($(echo "$sinfo_diag" | tail -n +2 | tr -s ' ' | head -c 200)): resuming it"
            timeout 10 scontrol update nodename="$node" state=resume >&2 || true
            resumed=1
        fi
        if (($(now_ms) > end)); then
            sinfo_diag=$(timeout 10 sinfo -N -l 2>&1; timeout 10 sinfo -R 2>&1) || true
            fail "node $node not idle after ${start_deadline}s (state '${state:-?}')"
        fi
        sleep 0.1
    done
}

# slurmctld starts no job in its first ~3 s (the node shows idle well before), and a node that is idle says
# nothing of munge credentials, slurmstepd or the spool dir: so the cluster counts as up once a trivial job
# (named start-slurm-probe, output to /dev/null) has run to COMPLETED. It takes job id 1.
probe_job() {
    local t0=$1 id state end
    id=$(timeout 15 sbatch --parsable -J start-slurm-probe --chdir="$D" -o /dev/null -e /dev/null \
        --wrap true 2>&1) || fail "sbatch of the probe job failed: $(echo "$id" | tail -n 1)"
    id=${id%%;*}
    end=$((t0 + start_deadline * 1000))
    while :; do
        state=$(timeout 10 scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1) || state=
        state=${state#JobState=}
        case $state in
            COMPLETED) return 0 ;;
            PENDING | CONFIGURING | RUNNING | COMPLETING | '') ;;
            *)
                sinfo_diag=$(timeout 10 scontrol show job "$id" 2>&1) || true
                fail "probe job $id ended $state"
                ;;
        esac
        if (($(now_ms) > end)); then
            sinfo_diag=$(timeout 10 scontrol show job "$id" 2>&1; timeout 10 sinfo -N -l 2>&1) || true
            fail "probe job $id not COMPLETED ${start_deadline}s after start (state '${state:-?}')"
        fi
        sleep 0.1
    done
}

print_exports() { printf 'export SLURM_CONF=%q\n' "$conf"; }

running_ok() {  # all three daemons of DIR run and slurmctld answers
    munged_pid >/dev/null && ctld_pid_now >/dev/null && slurmd_pid_now >/dev/null && ctld_up
}

do_start() {
    local t0
    t0=$(now_ms)
    if running_ok; then
        log "already running from $D (node state: $(node_state))"
        print_exports
        return 0
    fi
    # Anything half-running from an earlier start goes first.
    stop_all
    ensure_installed
    mkdir -p "$D/etc" "$D/run" "$D/state" "$D/spool" "$D/log" "$munge_dir"
    # munged refuses a key, socket, pid, log or seed in a directory others can write to (and a socket in one
    # others cannot search).
    chmod 0755 "$D" "$D/etc" "$D/run" "$D/state" "$D/spool" "$D/log"
    chmod 0755 "$munge_dir"  # munged: "execute permissions for all required" on the socket's directory
    rm -rf "${D:?}/state/"* "${D:?}/spool/"*
    : >"$D/log/munged.out"; : >"$D/log/slurmctld.out"; : >"$D/log/slurmd.out"
    pick_ports || fail "no two consecutive free TCP ports in 16000-31999"
    write_conf
    start_munged
    start_slurm
    wait_idle "$t0"
    log "node $node idle after $(($(now_ms) - t0)) ms; waiting for a probe job to run"
    probe_job "$t0"
    log "cluster up in $(($(now_ms) - t0)) ms: node $node idle, probe job done, SLURM_CONF=$conf"
    print_exports
}

# --- main --------------------------------------------------------------------------------------------------

if [[ $dir_arg =~ [[:space:]] ]]; then die "DIR must not contain whitespace (slurm.conf paths): '$dir_arg'"; fi
if [[ $cmd == stop ]]; then
    [[ -d $dir_arg ]] || exit 0
    set_paths "$(realpath -e -- "$dir_arg")"
    [[ -d $D/etc || -d $D/run || -d $D/munge ]] || exit 0
    exec 9>>"$D/.lock"
    flock -w 120 9 || die "could not lock $D/.lock within 120s"
    stop_all
    exit 0
fi

set_paths "$(realpath -m -- "$dir_arg")"
# Unix socket paths are limited to 107 bytes: munged's and slurmd's (SlurmdSpoolDir/NODE_JOBID.STEPID).
((${#munge_sock} <= 107)) || die "DIR too long for munged's socket path (${#munge_sock} > 107 bytes): $D"
spool_sock="$D/spool/${node}_4294967294.4294967294"
((${#spool_sock} <= 107)) || die "DIR too long for slurmd's step socket paths (${#spool_sock} > 107 bytes): $D"
mkdir -p "$D" || die "cannot create $D"
exec 9>>"$D/.lock"
flock -w 120 9 || die "could not lock $D/.lock within 120s"
do_start
