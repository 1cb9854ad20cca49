#!/usr/bin/env bash
# Cluster check: the real corpus derived through Slurm (profiles/slurm) gives the same
# bytes as a local run. Needs root (starts a single-node Slurm cluster) and the pinned
# snakemake-executor-plugin-slurm.
#
#   bash .ci/slurm/test-slurm.sh                       # RAW_DIR defaults to ../shared/data/raw
#   RAW_DIR=/path/to/raw bash .ci/slurm/test-slurm.sh
#
# Phases: (a) local run in a fresh copy of the project, (b) start the cluster,
# (c) the same run in a second fresh copy through --workflow-profile profiles/slurm,
# (d) sha256 of every file under results/real/derived/ of both copies must match,
# (e) evidence that the jobs went through Slurm. Exits non-zero on any failure; the
# cluster is stopped and the temporary folders removed on every exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(cd "$HERE/../.." && pwd)"
RAW_DIR="${RAW_DIR:-$PROJECT/../shared/data/raw}"
SLURM_RUN_TIMEOUT="${SLURM_RUN_TIMEOUT:-900}"
# The derived JSON records a creation time; a fixed SOURCE_DATE_EPOCH makes both runs
# write identical bytes. sbatch passes the environment on to the jobs (--export=ALL).
export SOURCE_DATE_EPOCH=1704067200

fail() {
  echo "test-slurm: FAIL: $*" >&2
  exit 1
}
say() { echo "test-slurm: $*"; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (starts slurmctld/slurmd/munged)"
if [ ! -d "$RAW_DIR" ]; then
  fail "raw corpus not found at $RAW_DIR: set RAW_DIR (default ../shared/data/raw beside the project)"
fi
RAW_DIR="$(cd "$RAW_DIR" && pwd)"
command -v snakemake > /dev/null || fail "snakemake not on PATH"
python3 -c 'import snakemake_executor_plugin_slurm' 2> /dev/null \
  || fail "snakemake-executor-plugin-slurm is not installed (pip install -e '.[dev]' installs the pinned version)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pbuf-slurm-test.XXXXXX")"
chmod 0755 "$WORK" # the munge user must reach the cluster's socket below it
export SLURM_CI_DIR="$WORK/cluster"
CLUSTER_STARTED=0
declare -A PHASE_SECONDS=()

timed() { # timed NAME COMMAND...: run, record the seconds
  local name="$1" t0=$SECONDS status=0
  shift
  "$@" || status=$?
  PHASE_SECONDS[$name]=$((SECONDS - t0))
  say "phase '$name' took ${PHASE_SECONDS[$name]} s (exit $status)"
  return "$status"
}

cleanup() {
  local status=$? t0=$SECONDS leftover
  trap - EXIT
  if [ "$CLUSTER_STARTED" -eq 1 ]; then
    if [ "$status" -ne 0 ] && [ -d "$SLURM_CI_DIR/log" ]; then
      for f in "$SLURM_CI_DIR"/log/*.log; do
        echo "--- $f (last 20 lines)"
        tail -n 20 "$f"
      done
    fi
    bash "$HERE/stop-cluster.sh" || status=1
    say "phase 'teardown' took $((SECONDS - t0)) s"
  fi
  rm -rf "$WORK"
  # no daemon may outlive the test (live states only: a zombie is already gone)
  leftover="$(pgrep -a -r R,S,D,T -x 'slurmctld|slurmd|slurmstepd|munged' 2> /dev/null || true)"
  if [ -n "$leftover" ]; then
    echo "test-slurm: FAIL: daemons still running after stop:" >&2
    echo "$leftover" >&2
    status=1
  fi
  if [ "$status" -eq 0 ]; then
    say "PASSED"
  else
    say "FAILED (exit $status)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One snapshot of the project, copied twice: both runs see the same code even if the
# working tree changes meanwhile. PYTHONPATH makes each copy import its own src/.
fresh_copy() {
  local dest="$1"
  mkdir -p "$dest"
  for item in Snakefile config rules scripts profiles envs src; do
    [ -e "$PROJECT/$item" ] || fail "project item missing: $item"
    cp -R "$PROJECT/$item" "$dest/"
  done
  # optional: report captions
  if [ -d "$PROJECT/report" ]; then cp -R "$PROJECT/report" "$dest/"; fi
  find "$dest" -name __pycache__ -type d -prune -exec rm -rf {} +
}
fresh_copy "$WORK/snapshot"
cp -R "$WORK/snapshot" "$WORK/local"
cp -R "$WORK/snapshot" "$WORK/slurm"

show_tail() { # show_tail LOG: the end of a failed run's output
  echo "--- last 60 lines of $1" >&2
  tail -n 60 "$1" >&2
}

# (a) local run
run_local() {
  (cd "$WORK/local" && PYTHONPATH="$WORK/local/src" snakemake --cores 2 --config raw_dir="$RAW_DIR") \
    > "$WORK/local.log" 2>&1 || { show_tail "$WORK/local.log"; return 1; }
}
timed local_run run_local || fail "local run failed"

# (b) cluster
CLUSTER_STARTED=1
timed cluster_start bash "$HERE/start-cluster.sh" || fail "cluster did not start"

# (c) the same through Slurm. The CI-only flags: keep the Slurm logs of successful
# jobs (evidence below), poll sooner than the plugin's 40 s default (MinJobAge of the
# CI cluster is 300 s, above 3x the first delay), and no account (none exist here).
run_slurm() {
  (cd "$WORK/slurm" && PYTHONPATH="$WORK/slurm/src" timeout --kill-after=30 "$SLURM_RUN_TIMEOUT" \
    snakemake --workflow-profile profiles/slurm --config raw_dir="$RAW_DIR" \
    --slurm-keep-successful-logs \
    --slurm-init-seconds-before-status-checks 10 \
    --slurm-no-account) \
    > "$WORK/slurm.log" 2>&1 || {
    local status=$?
    # timeout exits 124 after TERM, 137 when the run ignored TERM and was killed
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      echo "Slurm run timed out after ${SLURM_RUN_TIMEOUT} s (SLURM_RUN_TIMEOUT)" >&2
    fi
    show_tail "$WORK/slurm.log"
    squeue -t all >&2 || true
    return "$status"
  }
}
timed slurm_run run_slurm || fail "Slurm run failed"

# (d) same bytes
digests() { (cd "$1/results/real/derived" && find . -type f | LC_ALL=C sort | xargs -r sha256sum); }
digests "$WORK/local" > "$WORK/local.sha256"
digests "$WORK/slurm" > "$WORK/slurm.sha256"
[ -s "$WORK/local.sha256" ] || fail "the local run published nothing under results/real/derived/"
if ! diff -u "$WORK/local.sha256" "$WORK/slurm.sha256"; then
  fail "results/real/derived/ differs between the local run (-) and the Slurm run (+)"
fi
say "results/real/derived/: $(wc -l < "$WORK/local.sha256") files, identical sha256 in both runs"
say "validation: $(head -n 1 "$WORK/slurm/results/real/validation/summary.txt" 2> /dev/null || echo 'no summary')"

# (e) evidence that Slurm ran the jobs (no accounting here, so no sacct: the plugin's
# submission lines, squeue's record of finished jobs and the per-job Slurm logs)
submitted="$(grep -c 'submitted with SLURM jobid' "$WORK/slurm.log" || true)"
logs="$(find "$WORK/slurm/.snakemake/slurm_logs" -type f -name '*.log' 2> /dev/null | wc -l)"
say "Slurm submissions by the plugin: $submitted; Slurm job logs under .snakemake/slurm_logs/: $logs"
find "$WORK/slurm/.snakemake/slurm_logs" -type f -name '*.log' -printf '  %P\n' 2> /dev/null | LC_ALL=C sort
say "squeue (finished jobs stay listed for MinJobAge):"
squeue -t all -o '%.8i %.10P %.40k %.10T %.10M %.6C %.8m' | sed 's/^/  /'
completed="$(squeue -h -t all -o '%T' | grep -c '^COMPLETED$' || true)"
[ "$submitted" -ge 1 ] || fail "the plugin submitted no Slurm job"
[ "$logs" -ge 1 ] || fail "no Slurm job log under .snakemake/slurm_logs/"
[ "$completed" -ge 1 ] || fail "squeue lists no COMPLETED job"
if command -v sacct > /dev/null && ! sacct -n > /dev/null 2>&1; then
  say "sacct: not available here (no accounting daemon), as expected"
fi

say "seconds: local run ${PHASE_SECONDS[local_run]}, cluster start ${PHASE_SECONDS[cluster_start]}, Slurm run ${PHASE_SECONDS[slurm_run]}"
