#!/usr/bin/env bash
# Run every benchmark (P1..P10). Each prints its verdict lines, ratios against a baseline measured in the
# same run. Exit status is non-zero only when a benchmark fails to run (or, with --strict, misses a target).
#
#   bench/run_all.sh            # full sizes (about 30-40 minutes on 2 cores)
#   bench/run_all.sh --quick    # small sizes, few repeats (CI: checks they run; no verdict at these sizes)
#   bench/run_all.sh --quick --strict
#
# Extra arguments are passed to every script (--quick, --strict, --profile, --keep).
# Results are also appended as JSON lines to ${PBUF_BENCH_JSON:-$TMPDIR/pbuf-bench-results.jsonl} (overwritten per run).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
JSON="${PBUF_BENCH_JSON:-${TMPDIR:-/tmp}/pbuf-bench-results.jsonl}"
: > "$JSON"
status=0
start=$(date +%s)
for script in bench/p1_sn_derive.py bench/p2_noop.py bench/p3_many.py bench/p4_sn_large.py bench/p5_load.py bench/p6_integrity.py bench/p7_chi2.py bench/p8_floor.py bench/p9_gzip_covariance.py bench/p10_sn_job.py; do
  t0=$(date +%s)
  if ! "$PYTHON" "$script" --json "$JSON" "$@"; then
    echo "!! $script failed" >&2
    status=1
  fi
  echo "   ($script: $(( $(date +%s) - t0 )) s)"
done
echo "== all benchmarks: $(( $(date +%s) - start )) s; results in $JSON"
"$PYTHON" - "$JSON" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for r in rows:
    outcome = "ran" if r["pass"] is None else ("PASS" if r["pass"] else "MISS")
    print(f"{r['target']} {r['name']:28s} ratio {r['ratio']:6.2f} (target {r['goal']}) {outcome}; load {r['load']:.2f}")
judged = [r for r in rows if r["pass"] is not None]
if judged:
    print(f"{sum(r['pass'] for r in judged)}/{len(judged)} targets met")
else:
    print(f"{len(rows)} figures measured at quick sizes: no verdict (run without --quick for verdicts)")
PY
exit $status
