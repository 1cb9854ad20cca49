#!/usr/bin/env python3
"""P4: an SN dataset of 10,000 rows with a dense covariance: peak memory and time.

Inputs (written once, cached): a 10,000-row Pantheon+-layout table and a 10,000^2 covariance file in
the release layout (bench/_data.py:large_sn). Project side (A), a fresh process: derive_dataset +
Dataset.save, as in P1. Baseline (B): P1's bare script (pandas C parser, Cholesky, np.save) at the same
size. Targets: peak RSS of A <= 2.5 x the float64 matrix (8 N^2 bytes); A / B time <= 1.5.

    python bench/p4_sn_large.py [--quick] [--rows N] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, Report, Workdir, cli, paired, run  # noqa: E402
from p1_sn_derive import commands, max_raw_bytes, profile_derive  # noqa: E402

MEMORY_TARGET = 2.5
TIME_TARGET = 1.5


def main() -> None:
    args = cli(
        __doc__.splitlines()[1],
        runs=3,
        quick_runs=2,
        extra=lambda p: p.add_argument("--rows", type=int, help="rows of the table (default 10000, --quick 3000)"),
    )
    n = args.rows or (3000 if args.quick else 10_000)
    report = Report(args, "P4")
    from _data import large_sn

    raw, entry = large_sn(n)
    name = f"sn_large_{n}"
    cov_file = raw / entry["files"]["covariance"]["path"]
    size = cov_file.stat().st_size
    limit = max_raw_bytes("sn")
    report.info(f"{n} rows; covariance file {size / 1e6:.0f} MB of text; matrix {8 * n * n / 1e6:.0f} MB as float64")
    if size > limit:
        report.info(
            f"NOTE: the file is above config max_raw_bytes.sn = {limit / 1e6:.0f} MB: the workflow would refuse it "
            "('size limit'); measured here without the limit"
        )
    matrix_mb = 8 * n * n / 1e6
    with Workdir(args, "p4") as work:
        a, b = commands(raw, entry, name, work, 10**15)  # no size limit for the measurement
        stages = run([*a, "stages"], log=work / "stages.log")
        report.info((work / "stages.log").read_text().strip() + f" -- whole process {stages.wall:.2f} s")
        result = paired(lambda: run(a), lambda: run(b), args.runs, warmup=0 if not args.quick else 1)
        peak_mb = max(result.a_rss_mb, stages.maxrss_kb / 1024) * 1.048576  # kB -> MB (decimal, as the matrix)
        report.verdict(
            "sn_large_memory", peak_mb, matrix_mb, peak_mb / matrix_mb, MEMORY_TARGET, unit="MB",
            floor_name="float64 matrix",
            note=f"bare script peak {result.b_rss_mb * 1.048576:.0f} MB = {result.b_rss_mb * 1.048576 / matrix_mb:.2f} x",
        )
        report.verdict("sn_large_time", result.a_wall, result.b_wall, result.ratio, TIME_TARGET, note=result.spread())
        if args.profile:
            profile_derive(raw, entry, name, work, 10**15)
            trace = work / "memtrace.log"
            run([PY, Path(__file__).with_name("_memtrace.py"), work / "entry.json", name, raw, work / "m.npz", work / "m.json"],
                log=trace)
            print(trace.read_text().rstrip())
    report.finish()


if __name__ == "__main__":
    main()
