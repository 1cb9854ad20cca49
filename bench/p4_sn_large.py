#!/usr/bin/env python3
"""P4: SN datasets of 5,000 to 20,000 rows with a dense covariance: peak memory, time and its growth.

Inputs (written once, cached): N-row Pantheon+-layout tables with N^2 covariance files in the release
layout (bench/_data.py:large_sn). Project side (A), a fresh process: derive_dataset + Dataset.save, as in
P1. Baseline (B): P1's bare script (pandas C parser, Cholesky, np.save) at the same size. Targets:
- memory: peak RSS of A <= 2.5 x the float64 matrix (8 N^2 bytes), at every size;
- growth: A's CPU time from the first size to the second (5,000 -> 10,000) grows no faster than the
  covariance text: (CPU_2 / CPU_1) / (bytes_2 / bytes_1) <= 1;
- time: A / B <= 1.5 at the second size (A B pairs);
- validation: validating the derived dataset (a fresh process, on the threads the workflow gives its job: two
  from 1 GiB of raw files, pbuf_data.publish.validation.threads_for) takes no longer than deriving it, at every size.

    python bench/p4_sn_large.py [--quick] [--rows N,N,...] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, Report, Workdir, cli, paired, run  # noqa: E402
from p1_sn_derive import commands, max_raw_bytes, profile_derive, raw_files, validate_vs_derive  # noqa: E402

MEMORY_TARGET = 2.5
GROWTH_TARGET = 1.0
TIME_TARGET = 1.5
SIZES, QUICK_SIZES = (5000, 10_000, 20_000), (1500, 3000)


def main() -> None:
    args = cli(
        __doc__.splitlines()[1],
        runs=3,
        quick_runs=2,
        extra=lambda p: p.add_argument("--rows", help=f"table sizes, comma separated (default {SIZES}, --quick {QUICK_SIZES})"),
    )
    sizes = [int(n) for n in args.rows.split(",")] if args.rows else list(QUICK_SIZES if args.quick else SIZES)
    report = Report(args, "P4")
    from _data import large_sn

    limit = max_raw_bytes("sn")
    measured = {}
    with Workdir(args, "p4") as work:
        for n in sizes:
            raw, entry = large_sn(n)
            name = f"sn_large_{n}"
            size = (raw / entry["files"]["covariance"]["path"]).stat().st_size
            matrix_mb = 8 * n * n / 1e6
            report.info(f"{n} rows; covariance file {size / 1e6:.0f} MB of text; matrix {matrix_mb:.0f} MB as float64")
            if size > limit:
                report.info(
                    f"NOTE: the file is above config max_raw_bytes.sn = {limit / 1e6:.0f} MB: the workflow would refuse "
                    "it ('size limit'); measured here without the limit"
                )
            a, b = commands(raw, entry, name, work, 10**15)  # no size limit for the measurement
            stages = run([*a, "stages"], log=work / f"stages-{n}.log")
            report.info((work / f"stages-{n}.log").read_text().strip() + f" -- whole process {stages.wall:.2f} s, "
                        f"{stages.cpu:.2f} CPU-s")
            measured[n] = (stages, size)
            peak_mb = stages.maxrss_kb * 1024 / 1e6  # KiB -> MB (decimal, as the matrix)
            report.verdict(f"sn_{n}_memory", peak_mb, matrix_mb, peak_mb / matrix_mb, MEMORY_TARGET, unit="MB",
                           floor_name="float64 matrix")
            validate_vs_derive(report, f"sn_{n}", work, stages, raw_files(raw, entry))
            if n == sizes[min(1, len(sizes) - 1)]:
                result = paired(lambda: run(a), lambda: run(b), args.runs, warmup=0 if not args.quick else 1)
                report.verdict(f"sn_{n}_time", result.a_wall, result.b_wall, result.ratio, TIME_TARGET,
                               note=f"{result.spread()}; bare script peak {result.b_rss_mb * 1.048576:.0f} MB")
                if args.profile:
                    profile_derive(raw, entry, name, work, 10**15)
                    trace = work / "memtrace.log"
                    run([PY, Path(__file__).with_name("_memtrace.py"), work / "entry.json", name, raw, work / "m.npz",
                         work / "m.json"], log=trace)
                    print(trace.read_text().rstrip())
        if len(sizes) >= 2:
            (first, bytes_1), (second, bytes_2) = measured[sizes[0]], measured[sizes[1]]
            growth = (second.cpu / first.cpu) / (bytes_2 / bytes_1)
            report.verdict(
                f"sn_growth_{sizes[0]}_{sizes[1]}", second.cpu, first.cpu, growth, GROWTH_TARGET, unit="CPU-s",
                floor_name=f"{sizes[0]} rows",
                note=f"text grows x{bytes_2 / bytes_1:.2f}, CPU time x{second.cpu / first.cpu:.2f}, "
                f"wall x{second.wall / first.wall:.2f}",
            )
    report.finish()


if __name__ == "__main__":
    main()
