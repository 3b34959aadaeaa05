#!/usr/bin/env bash
# A throw-away one-machine Slurm cluster (slurmctld + slurmd + munge) for trying the job array locally and
# for the tests. Needs root and Debian's slurm-wlm and munge packages.
#
#   deploy/slurm/single-node.sh start STATE_DIR   # prints "export SLURM_CONF=STATE_DIR/slurm.conf"
#   deploy/slurm/single-node.sh stop STATE_DIR
#
# Everything it writes lives in STATE_DIR except the munge key (/etc/munge/munge.key, created only when
# missing). Clients find the cluster through SLURM_CONF.
set -euo pipefail

command=${1:?usage: single-node.sh start|stop STATE_DIR}
state=$(realpath -m "${2:?usage: single-node.sh start|stop STATE_DIR}")

stop() {
    for file in slurmd.pid slurmctld.pid munge/munged.pid; do
        if [[ -f "$state/$file" ]]; then
            pid=$(cat "$state/$file")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$state/$file"
        fi
    done
}

start() {
    # Daemons must not inherit descriptors of whoever started this script (a caller waiting for its
    # pipes or sockets to close would wait for the daemons).
    for fd in $(ls /proc/$$/fd); do
        if (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || { echo "single-node.sh: $tool is not installed (apt-get install slurm-wlm munge)" >&2; exit 1; }
    done
    [[ $(id -u) == 0 ]] || { echo "single-node.sh: must run as root" >&2; exit 1; }
    mkdir -p "$state"/{spool,ctld,log,munge}
    chown munge:munge "$state/munge"

    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        head -c 1024 /dev/urandom > /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    local socket="$state/munge/munge.socket"
    runuser -u munge -- munged --force --socket="$socket" --pid-file="$state/munge/munged.pid" \
        --log-file="$state/munge/munged.log" --seed-file="$state/munge/munge.seed" \
        </dev/null >/dev/null 2>&1

    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # MB Slurm may hand out
    cat > "$state/slurm.conf" <<CONF
ClusterName=roadwatch-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmctldPort=${ROADWATCH_SLURMCTLD_PORT:-16817}
SlurmdPort=${ROADWATCH_SLURMD_PORT:-16818}
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    echo "ConstrainCores=no" > "$state/cgroup.conf"
    export SLURM_CONF="$state/slurm.conf"
    # The daemons must not hold this script's output open: whoever reads it would wait for them.
    slurmctld -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
    slurmd -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
    for _ in $(seq 100); do
        if sinfo -h -o %t 2>/dev/null | grep -q idle; then
            echo "export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.2
    done
    echo "single-node.sh: the node did not become idle within 20 s; logs in $state/log:" >&2
    tail -n 5 "$state"/log/*.log >&2 || true
    stop
    exit 1
}

case "$command" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: single-node.sh start|stop STATE_DIR" >&2; exit 64 ;;
esac
