#!/usr/bin/env bash
# Start a single-node Slurm cluster (slurmctld + slurmd + munged) on this machine,
# for CI and for trying profiles/slurm locally. No systemd needed; run as root.
#
#   bash .ci/slurm/start-cluster.sh      # installs slurm-wlm + munge if missing, starts, waits for an idle node
#   bash .ci/slurm/stop-cluster.sh       # stops exactly the daemons started here
#
# State, logs and PID files live in $SLURM_CI_DIR (default: $TMPDIR/pbuf-slurm-ci).
# The config must be /etc/slurm/slurm.conf: inside a job the executor plugin calls
# srun with the SLURM_* variables removed, so a config elsewhere would not be found.
# No accounting daemon (slurmdbd): sacct cannot answer, so profiles/slurm queries job
# status with squeue, and MinJobAge keeps finished jobs visible to squeue long enough.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SLURM_CI_DIR:-${TMPDIR:-/tmp}/pbuf-slurm-ci}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by pbuf .ci/slurm/start-cluster.sh"
WAIT_SECONDS="${SLURM_CI_WAIT_SECONDS:-60}"

die() {
  echo "start-cluster: $*" >&2
  exit 1
}
log() { echo "start-cluster: $*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (writes $CONF, runs slurmd as SlurmUser=root)"

# Once daemons may have been started: on any failure print their logs and stop them.
on_exit() {
  local status=$?
  [ "$status" -eq 0 ] && return 0
  echo "start-cluster: FAILED (exit $status); daemon logs from $STATE/log:" >&2
  for f in "$STATE"/log/*.log "$STATE"/munge/munged.log; do
    if [ -f "$f" ]; then
      echo "--- $f (last 30 lines)" >&2
      tail -n 30 "$f" >&2
    fi
  done
  SLURM_CI_DIR="$STATE" bash "$HERE/stop-cluster.sh" >&2 || true
  exit "$status"
}

# 1. Packages (idempotent: only when a command is missing).
missing=""
for cmd in munged munge slurmctld slurmd sinfo squeue sbatch srun scontrol; do
  command -v "$cmd" > /dev/null || missing="$missing $cmd"
done
if [ -n "$missing" ]; then
  log "installing slurm-wlm and munge (missing:$missing)"
  t0=$SECONDS
  mkdir -p "$STATE/log"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq slurm-wlm munge; } > "$STATE/log/apt.txt" 2>&1 \
    || { tail -n 40 "$STATE/log/apt.txt" >&2; die "apt-get install slurm-wlm munge failed"; }
  log "apt install took $((SECONDS - t0)) s"
fi

# 2. Refuse to clobber a real cluster: an existing config not written by us, or daemons running.
if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
  die "$CONF exists and was not written by this script; refusing to overwrite it"
fi
# A cluster started earlier, from this state folder or (per our config) another one?
previous="$STATE"
if [ -f "$CONF" ]; then
  previous="$previous $(sed -n 's|^StateSaveLocation=\(.*\)/slurmctld$|\1|p' "$CONF")"
fi
for dir in $previous; do
  for pidfile in "$dir"/pids/*.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2> /dev/null; then
      die "a daemon of a cluster started earlier is still running (pid $pid, $pidfile): run SLURM_CI_DIR=$dir $HERE/stop-cluster.sh first"
    fi
  done
done

trap on_exit EXIT

# 3. Folders. The state folder must be traversable by the munge user (its socket lives there).
# (fresh controller and node state on every start; logs are appended)
rm -rf "$STATE/pids" "$STATE/slurmctld" "$STATE/slurmd" "$STATE/munge"
mkdir -p "$STATE"/{pids,log,slurmctld,slurmd,munge}
chmod 0755 "$STATE" "$STATE/pids" "$STATE/log"
chown munge:munge "$STATE/munge"
chmod 0755 "$STATE/munge"
runuser -u munge -- test -w "$STATE/munge" \
  || die "the munge user cannot reach $STATE/munge: make every parent folder of $STATE world-executable (chmod o+x)"

# 4. munged, as the munge user, with its socket in the state folder.
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  install -d -o munge -g munge -m 0700 /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
SOCKET="$STATE/munge/munge.socket.2"
runuser -u munge -- munged \
  --socket="$SOCKET" \
  --pid-file="$STATE/munge/munged.pid" \
  --log-file="$STATE/munge/munged.log" \
  --seed-file="$STATE/munge/munged.seed"
deadline=$((SECONDS + WAIT_SECONDS))
until munge -n -S "$SOCKET" 2> /dev/null | unmunge -S "$SOCKET" > /dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || die "munged did not answer on $SOCKET within ${WAIT_SECONDS} s"
  sleep 0.2
done
cp "$STATE/munge/munged.pid" "$STATE/pids/munged.pid"
log "munged up (pid $(cat "$STATE/pids/munged.pid"))"

# 5. slurm.conf: this machine as the only node, a little below its memory, all its CPUs.
NODE="$(hostname -s)"
CPUS="$(nproc)"
MEM_TOTAL="$(free -m | awk '/^Mem:/ {print $2}')"
NODE_MEM=$((MEM_TOTAL * 9 / 10))
mkdir -p "$(dirname "$CONF")"
cat > "$CONF" << EOF
$MARKER
# single-node CI cluster, state in $STATE; removed by stop-cluster.sh
ClusterName=pbufci
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/pids/slurmctld.pid
SlurmdPidFile=$STATE/pids/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# keep finished jobs visible to squeue (the plugin needs >= 3 x its first status-check delay)
MinJobAge=300
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE CPUs=$CPUS RealMemory=$NODE_MEM State=UNKNOWN
PartitionName=ci Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
log "wrote $CONF (node $NODE, $CPUS CPUs, ${NODE_MEM} MB of ${MEM_TOTAL} MB)"

# 6. slurmctld and slurmd (they daemonize and write their PID files into $STATE/pids).
slurmctld -i
slurmd
deadline=$((SECONDS + WAIT_SECONDS))
state=""
until [ "$state" = "idle" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "node $NODE not idle within ${WAIT_SECONDS} s (sinfo says: '${state:-no answer}')"
  sleep 0.5
  state="$(sinfo -h -n "$NODE" -o %T 2> /dev/null | head -n 1 | tr -d '*~#')" || state=""
done
for d in slurmctld slurmd; do
  [ -s "$STATE/pids/$d.pid" ] || die "$d wrote no PID file"
done
log "cluster up: node $NODE idle (slurmctld pid $(cat "$STATE/pids/slurmctld.pid"), slurmd pid $(cat "$STATE/pids/slurmd.pid"))"
sinfo
