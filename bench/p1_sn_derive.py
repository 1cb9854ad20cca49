#!/usr/bin/env python3
"""P1: deriving a Pantheon+-size SN dataset vs a bare pandas + Cholesky + np.save script.

Project side (A), a fresh process: ``pbuf_data.read.derive.derive_dataset`` on the mock of
``mock_sn_pantheon_plus`` (1701 rows, 1701^2 covariance file from ``pbuf_data.read.mock.write_mock_file``),
then ``Dataset.save`` -- interpreter start-up and imports included.
Baseline (B), a fresh process: parse the same two files with pandas' C parser, Cholesky-factorize the
covariance and ``np.save`` it. Target: A / B <= 1.5. Also: validating the derived dataset (the
validate_dataset job's work, a fresh process) takes no longer than deriving it.

    python bench/p1_sn_derive.py [--quick] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, PROJECT, Report, Run, Workdir, cli, paired, run  # noqa: E402

TARGET = 1.5

# A: what the derive_dataset job does for this dataset (the workflow passes the entry as a param)
DERIVE = r"""
import json, sys, time
t0 = time.perf_counter()
from pbuf_data.read.derive import derive_dataset
t1 = time.perf_counter()
entry = json.load(open(sys.argv[1]))
dataset = derive_dataset(sys.argv[2], entry, sys.argv[3], max_bytes=int(sys.argv[4]))
t2 = time.perf_counter()
dataset.save(sys.argv[5], sys.argv[6])
t3 = time.perf_counter()
if len(sys.argv) > 7:
    print(f"stages: imports {t1 - t0:.3f} s, derive_dataset {t2 - t1:.3f} s, save {t3 - t2:.3f} s ({len(dataset)} points)")
"""

# B: the floor -- pandas C parser for both files, a Cholesky, np.save
BARE = r"""
import sys
import numpy as np
import pandas as pd
table = pd.read_csv(sys.argv[1], sep=r"\s+", engine="c")
values = pd.read_csv(sys.argv[2], header=None, skiprows=1, engine="c", dtype=np.float64)[0].to_numpy()
n = int(round(values.size ** 0.5))
covariance = values.reshape(n, n)
factor = np.linalg.cholesky(covariance)
np.save(sys.argv[3], covariance)
np.save(sys.argv[4], table[["zHD", "MU_SH0ES", "MU_SH0ES_ERR_DIAG"]].to_numpy())
"""


# what the validate_dataset job does: read the staged dataset (sha256 verified) and run every check
VALIDATE = r"""
import sys
from pbuf_data.model.dataset import read_dataset
from pbuf_data.publish.validation import validate_dataset
print(validate_dataset(read_dataset(sys.argv[1], sys.argv[2], verify=True))["verdict"])
"""
VALIDATE_TARGET = 1.0


def validate_vs_derive(report: Report, label: str, work: Path, derive: Run, raw: list[Path]) -> None:
    """Validation of the dataset the derive run ``derive`` wrote (work/a.npz) in a fresh process, against it, on the
    threads the workflow gives the dataset's job (``threads_for`` the size of its raw files ``raw``)."""
    from pbuf_data.operate.job import thread_env
    from pbuf_data.publish.validation import raw_size, threads_for

    raw_bytes = raw_size(raw)
    threads = threads_for(raw_bytes)
    check = run([PY, "-c", VALIDATE, work / "a.npz", work / "a.json"], env=dict(os.environ, **thread_env(threads)))
    report.verdict(f"{label}_validate", check.wall, derive.wall, check.wall / derive.wall, VALIDATE_TARGET,
                   floor_name="derive", note=f"CPU {check.cpu:.2f} s vs {derive.cpu:.2f} s; both whole processes, "
                   f"validation on {threads} thread{'s' * (threads > 1)} as in its job ({raw_bytes / 1e6:.0f} MB of raw "
                   f"files); peak RSS: validation {check.maxrss_kb / 1024:.0f} MiB, derive {derive.maxrss_kb / 1024:.0f} MiB")


def commands(raw: Path, entry: dict, name: str, work: Path, max_bytes: int):
    entry_json = work / "entry.json"
    entry_json.write_text(json.dumps(entry))
    table = raw / entry["files"]["table"]["path"]
    cov = raw / entry["files"]["covariance"]["path"]
    a = [PY, "-c", DERIVE, entry_json, name, raw, max_bytes, work / "a.npz", work / "a.json"]
    b = [PY, "-c", BARE, table, cov, work / "b_cov.npy", work / "b_table.npy"]
    return a, b


def profile_derive(raw: Path, entry: dict, name: str, work: Path, max_bytes: int) -> None:
    from _common import profile_call

    from pbuf_data.read.derive import derive_dataset

    def job():
        derive_dataset(name, entry, raw, max_bytes=max_bytes).save(work / "p.npz", work / "p.json")

    import pandas  # noqa: F401  (imported by the derivation; keep it out of the profile)

    profile_call(job)


def raw_files(raw: Path, entry: dict) -> list[Path]:
    """A dataset's raw files, whose size decides its job's threads."""
    return [raw / spec["path"] for spec in entry["files"].values()]


def max_raw_bytes(kind: str) -> int:
    import yaml

    return int(yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["max_raw_bytes"][kind])


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=9, quick_runs=3)
    report = Report(args, "P1")
    from _data import mock_sn

    raw, entry = mock_sn()
    name = "mock_sn_pantheon_plus"
    with Workdir(args, "p1") as work:
        a, b = commands(raw, entry, name, work, max_raw_bytes("sn"))
        stages = run([*a, "stages"], log=work / "stages.log")
        report.info((work / "stages.log").read_text().strip() + f" -- whole process {stages.wall:.3f} s")
        result = paired(lambda: run(a), lambda: run(b), args.runs)
        report.verdict("sn_derive", result.a_wall, result.b_wall, result.ratio, TARGET, note=result.spread())
        validate_vs_derive(report, "sn", work, stages, raw_files(raw, entry))
        report.info(f"peak RSS: derive {result.a_rss_mb:.0f} MB, bare script {result.b_rss_mb:.0f} MB")
        if args.profile:
            profile_derive(raw, entry, name, work, max_raw_bytes("sn"))
    report.finish()


if __name__ == "__main__":
    main()
