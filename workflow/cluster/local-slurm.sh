#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for testing the slurm profile:
#
#   workflow/cluster/local-slurm.sh install   # Debian packages (root; once per machine)
#   workflow/cluster/local-slurm.sh start     # munged, slurmctld, slurmd; waits for the node
#   workflow/cluster/local-slurm.sh stop      # kills them by pid
#
# No systemd: the daemons are started directly. Accounting is off, so `sacct`
# sees nothing: use `slurm-status-command: squeue`, with MinJobAge (300 s) well
# above 3x the plugin's `slurm-init-seconds-before-status-checks`, or finished
# jobs vanish from squeue before they are seen. DefMemPerCPU stops a job that asks
# no memory from taking the whole node. State, logs and pids live in $SLURM_TEST_DIR.
set -euo pipefail

STATE=${SLURM_TEST_DIR:-/tmp/local-slurm}
CONF=/etc/slurm/slurm.conf  # where sbatch, squeue and the plugin look
NODE=localhost

install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
}

write_conf() {
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    mkdir -p "$STATE"/{state,spool,log} /etc/slurm
    cat > "$CONF" <<CONF
ClusterName=localtest
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
DefMemPerCPU=1000
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    command -v slurmctld >/dev/null || { echo "slurmctld not installed: run '$0 install' first" >&2; exit 1; }
    write_conf
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge && dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    if ! munge -n >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid || /usr/sbin/munged --force
    fi
    slurmctld -f "$CONF" -i   # -i: ignore state left by an earlier cluster
    slurmd -f "$CONF" -N "$NODE"
    for _ in $(seq 60); do
        if sinfo -h -N -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            sinfo -N -o "%N %t %c CPUs %m MB"
            return 0
        fi
        sleep 1
    done
    echo "the SLURM node did not come up; logs in $STATE/log" >&2
    tail -n 20 "$STATE"/log/*.log >&2 || true
    exit 1
}

stop() {
    local pid
    for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do  # daemons take a moment to shut down; wait until gone
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            rm -f "$pidfile"
        fi
    done
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
