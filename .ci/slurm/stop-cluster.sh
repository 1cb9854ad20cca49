#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by start-cluster.sh: cancel its jobs,
# then stop exactly the daemons whose PIDs it recorded (slurmd, slurmctld, munged)
# and wait until they have exited. Removes the /etc/slurm/slurm.conf it wrote.
#
#   bash .ci/slurm/stop-cluster.sh           # keep $SLURM_CI_DIR (logs) for inspection
#   bash .ci/slurm/stop-cluster.sh --clean   # also delete $SLURM_CI_DIR
set -euo pipefail

STATE="${SLURM_CI_DIR:-${TMPDIR:-/tmp}/pbuf-slurm-ci}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by pbuf .ci/slurm/start-cluster.sh"
WAIT_SECONDS="${SLURM_CI_STOP_SECONDS:-30}"
CLEAN=0
[ "${1:-}" = "--clean" ] && CLEAN=1

log() { echo "stop-cluster: $*"; }

ours_conf() { [ -f "$CONF" ] && grep -qF "$MARKER" "$CONF"; }

# alive PID NAME: PID runs (not a zombie) and is still that daemon (not a reused PID)
alive() {
  [ -n "$1" ] && ps -o stat=,comm= -p "$1" 2> /dev/null \
    | awk -v name="$2" '$1 !~ /^Z/ && $2 == name { found = 1 } END { exit !found }'
}

pid_of() {
  local file="$STATE/pids/$1.pid"
  if [ -s "$file" ]; then cat "$file"; fi
}

# 1. Cancel the jobs still on this private cluster (while slurmctld still answers).
if ours_conf && alive "$(pid_of slurmctld)" slurmctld; then
  if [ -n "$(squeue -h -o %i 2> /dev/null || true)" ]; then
    log "cancelling remaining jobs"
    scancel --user="$(id -un)" 2> /dev/null || true
    deadline=$((SECONDS + WAIT_SECONDS))
    while [ -n "$(squeue -h -t PD,R,CG,S -o %i 2> /dev/null || true)" ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.5
    done
  fi
fi

# 2. Stop the daemons by their recorded PIDs: TERM, wait, then KILL if they linger.
status=0
for daemon in slurmd slurmctld munged; do
  pid="$(pid_of "$daemon")"
  if ! alive "$pid" "$daemon"; then
    rm -f "$STATE/pids/$daemon.pid"
    continue
  fi
  kill -TERM "$pid" 2> /dev/null || true
  deadline=$((SECONDS + WAIT_SECONDS))
  while alive "$pid" "$daemon" && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.2
  done
  if alive "$pid" "$daemon"; then
    log "$daemon (pid $pid) ignored TERM for ${WAIT_SECONDS} s: KILL"
    kill -KILL "$pid" 2> /dev/null || true
    sleep 0.5
  fi
  if alive "$pid" "$daemon"; then
    log "ERROR: $daemon (pid $pid) is still running"
    status=1
  else
    log "$daemon (pid $pid) stopped"
    rm -f "$STATE/pids/$daemon.pid"
  fi
done

# 3. Remove the config we wrote, and on request the state folder.
if ours_conf; then
  rm -f "$CONF"
fi
if [ "$CLEAN" -eq 1 ] && [ "$status" -eq 0 ] && [ -d "$STATE" ]; then
  rm -rf "$STATE"
fi
exit "$status"
