#!/usr/bin/env python3
"""P9: a gzip-compressed systematic-only SN covariance (DES-SN5YR STATONLY: 1,829 points, 3.3 M lines) vs numpy.

Project side (A), a fresh process: ``derive_dataset`` of the registry's ``sn_des5yr_statonly`` (the CSV table and
the gzip N-then-N^2 matrix, decompressed while parsed, plus diag(MUERR_FINAL^2)) and ``Dataset.save``, imports
included. Baseline (B), a fresh process: ``numpy.loadtxt`` of the same matrix text, decompressed beforehand to
disk, and ``np.save``. Targets:
- time: A / B <= 1.5 on the release's file (A B pairs);
- growth: A's CPU time from half the rows (915, a quarter of the bytes; the table's first rows and a matrix of
  the same line layout) to the release grows no faster than the bytes: (CPU_2 / CPU_1) / (bytes_2 / bytes_1) <= 1.

Needs the real corpus (``PBUF_RAW_DIR``, default ../shared/data/raw); --quick runs the same measurement with fewer
pairs.

    python bench/p9_gzip_covariance.py [--quick] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import copy
import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, PROJECT, RAW_DIR, Report, Workdir, cli, paired, run  # noqa: E402
from p1_sn_derive import DERIVE, max_raw_bytes, profile_derive  # noqa: E402

NAME = "sn_des5yr_statonly"
TIME_TARGET = 1.5
GROWTH_TARGET = 1.0
HALF = 915

BARE = r"""
import sys
import numpy as np
values = np.loadtxt(sys.argv[1], skiprows=1)
n = int(round(values.size ** 0.5))
np.save(sys.argv[2], values.reshape(n, n))
"""


def _entry() -> dict:
    from pbuf_data.read.registry import load_registry

    return load_registry(PROJECT / "config" / "registry.yaml")[NAME]


def _half(raw: Path, entry: dict, work: Path) -> tuple[Path, dict]:
    """The first HALF rows of the table and a HALF^2 matrix in the release's line layout, gzip-compressed."""
    folder = work / "half_raw" / NAME
    folder.mkdir(parents=True, exist_ok=True)
    lines = (raw / entry["files"]["table"]["path"]).read_text().splitlines(keepends=True)
    (folder / "table.csv").write_text("".join(lines[: HALF + 1]))
    text = f"{HALF}\n".encode() + b" 0.000000e+00  \n" * (HALF * HALF)
    (folder / "cov.txt.gz").write_bytes(gzip.compress(text, compresslevel=6, mtime=0))
    half = copy.deepcopy(entry)
    half["expected_points"] = HALF
    half["files"] = {"table": {"path": f"{NAME}/table.csv", "allow_unpinned": True},
                     "covariance": {"path": f"{NAME}/cov.txt.gz", "allow_unpinned": True}}
    return work / "half_raw", half


def main() -> None:
    import json

    args = cli(__doc__.splitlines()[1], runs=5, quick_runs=2)
    report = Report(args, "P9")
    entry = _entry()
    cov = RAW_DIR / entry["files"]["covariance"]["path"]
    if not cov.is_file():
        report.info(f"SKIPPED: {cov} is not there (set PBUF_RAW_DIR to the real corpus)")
        report.finish()
        return
    with Workdir(args, "p9") as work:
        text = work / "statonly.txt"
        text.write_bytes(gzip.decompress(cov.read_bytes()))
        report.info(f"{cov.name}: {cov.stat().st_size / 1e6:.2f} MB gzip, {text.stat().st_size / 1e6:.1f} MB of text")
        (work / "entry.json").write_text(json.dumps(entry))
        a = [PY, "-c", DERIVE, work / "entry.json", NAME, RAW_DIR, max_raw_bytes("sn"), work / "a.npz", work / "a.json"]
        b = [PY, "-c", BARE, text, work / "b.npy"]
        result = paired(lambda: run(a), lambda: run(b), args.runs)
        report.verdict("gzip_statonly_derive", result.a_wall, result.b_wall, result.ratio, TIME_TARGET,
                       floor_name="numpy.loadtxt", note=f"{result.spread()}; peak RSS derive {result.a_rss_mb:.0f} MB, "
                       f"numpy {result.b_rss_mb:.0f} MB")
        half_raw, half = _half(RAW_DIR, entry, work)
        (work / "half.json").write_text(json.dumps(half))
        small = run([PY, "-c", DERIVE, work / "half.json", NAME, half_raw, max_raw_bytes("sn"), work / "h.npz",
                     work / "h.json"])
        full = run(a)
        bytes_1 = (HALF * HALF) * 16 + 4
        bytes_2 = text.stat().st_size
        growth = (full.cpu / small.cpu) / (bytes_2 / bytes_1)
        report.verdict("gzip_statonly_growth", growth, 1.0, growth, GROWTH_TARGET, unit="x", floor_name="bytes ratio",
                       note=f"CPU {small.cpu:.2f} s at {HALF} rows, {full.cpu:.2f} s at 1829 rows; text "
                       f"{bytes_1 / 1e6:.1f} -> {bytes_2 / 1e6:.1f} MB")
        if args.profile:
            profile_derive(RAW_DIR, entry, NAME, work, max_raw_bytes("sn"))
    report.finish()


if __name__ == "__main__":
    main()
