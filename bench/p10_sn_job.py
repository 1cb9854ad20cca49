#!/usr/bin/env python3
"""P10: the derive job of a large SN release (derive + validate + publish) against a notebook doing the same work.

Inputs: N-row Pantheon+-layout tables with N x N text covariances (bench/_data.py:large_sn), N = 2,000, 5,000,
10,000 and 20,000 (--quick: 2,000; --rows to choose).
- A: the workflow's job for it, as Snakemake runs it: ``python3 scripts/derive_dataset.py ...`` with the
  rule's parameters, in a fresh process, with the thread settings Snakemake gives a job of its threads
  (``threads_for`` its raw files' size): read and hash the files once, parse, select, save the staged archive,
  validate it (symmetry, Cholesky factorization, condition number, ...), publish it, write the receipt and logs.
- B: a notebook: pandas' C reader for the table and the covariance, the same row selection, numpy's Cholesky
  factorization of the selected covariance and ``np.save`` of it and of the table's columns. From
  NOTEBOOK_ONE_THREAD_FROM rows on (20,000), the notebook's BLAS runs on one thread: numpy's threaded Cholesky
  of the pinned OpenBLAS crashes there (SIGSEGV), so one thread is the only notebook that gives a figure; the
  verdict line says so.
Targets: wall A / B <= 1.0 at every size (pairs A B, B A, ...); peak RSS of A <= 2 x the float64 N x N matrix
from 10,000 rows on (below, the interpreter and its libraries weigh more than the matrix);
A's CPU time grows no faster than the covariance text between the two first sizes.

    python bench/p10_sn_job.py [--quick] [--rows N,N,...] [--strict] [--runs N] [--keep]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROJECT, PY, Report, Workdir, cli, paired, run  # noqa: E402

from pbuf_data.operate.job import thread_env  # noqa: E402

TIME_TARGET = 1.0
MEMORY_TARGET = 2.0
MEMORY_FROM = 10_000  # rows from which the memory target is judged (a matrix of 800 MB or more)
GROWTH_TARGET = 1.0
SIZES, QUICK_SIZES = (2000, 5000, 10_000, 20_000), (2000,)
NOTEBOOK_ONE_THREAD_FROM = 20_000  # rows; below, the notebook's BLAS has its default threads (one per core)

NOTEBOOK = r"""
import sys
import numpy as np
import pandas as pd
table = pd.read_csv(sys.argv[1], sep=r"\s+", engine="c")
values = pd.read_csv(sys.argv[2], header=None, skiprows=1, engine="c", dtype=np.float64)[0].to_numpy()
n = len(table)
keep = np.flatnonzero(table["zHD"].to_numpy() > 0.01)
covariance = values.reshape(n, n)[np.ix_(keep, keep)]
del values
factor = np.linalg.cholesky(covariance)
np.save(sys.argv[3], covariance)
np.save(sys.argv[4], table[["zHD", "zHEL", "MU_SH0ES", "MU_SH0ES_ERR_DIAG"]].to_numpy()[keep])
"""


def job_command(raw: Path, entry: dict, name: str, folder: Path) -> tuple[list, dict, int]:
    """The derive_dataset job of ``name`` as rules/derive.smk writes it, run in ``folder``; its environment and
    threads."""
    import yaml

    from pbuf_data.core.layout import Tree
    from pbuf_data.operate.job import job_params
    from pbuf_data.publish.validation import raw_size, threads_for
    from pbuf_data.read.derive import code_fingerprint

    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    tree = Tree("real")
    inputs = [raw / spec["path"] for spec in entry["files"].values()]
    settings = {"entry": entry, "max_bytes": 10**15, "code": code_fingerprint(entry["format"]),
                "thresholds": config["validation"], "missing": []}
    logs = [folder / tree.job_log(step, name) for step in ("derive", "validate", "publish")]
    cmd = [PY, PROJECT / "scripts" / "derive_dataset.py", "--dataset", name,
           "--params", job_params(corpus=tree.corpus, settings=settings), "--input", *inputs,
           "--output", folder / tree.receipt(name), "--log", *logs]
    threads = threads_for(raw_size(inputs))
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"), **thread_env(threads))
    return cmd, env, threads


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=3, quick_runs=1,
               extra=lambda p: p.add_argument("--rows", help=f"sizes, comma separated (default {SIZES}, --quick {QUICK_SIZES})"))
    sizes = [int(n) for n in args.rows.split(",")] if args.rows else list(QUICK_SIZES if args.quick else SIZES)
    report = Report(args, "P10")
    from _data import large_sn

    measured = {}
    with Workdir(args, "p10") as work:
        for n in sizes:
            raw, entry = large_sn(n)
            name = f"sn_large_{n}"
            cov = raw / entry["files"]["covariance"]["path"]
            table = raw / entry["files"]["table"]["path"]
            matrix_mb = 8 * n * n / 1e6
            job, env, threads = job_command(raw, entry, name, work / "job")

            def a():
                shutil.rmtree(work / "job", ignore_errors=True)
                for path in job[job.index("--output") + 1:]:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                return run(job, cwd=work / "job", env=env, log=work / f"job-{n}.log")

            notebook_env = dict(os.environ, **thread_env(1)) if n >= NOTEBOOK_ONE_THREAD_FROM else None

            def b():
                return run([PY, "-c", NOTEBOOK, table, cov, work / "b_cov.npy", work / "b_table.npy"],
                           env=notebook_env, log=work / f"notebook-{n}.log")

            report.info(f"{n} rows: covariance {cov.stat().st_size / 1e6:.0f} MB of text, matrix {matrix_mb:.0f} MB; "
                        f"the job on {threads} thread{'s' * (threads > 1)}")
            result = paired(a, b, args.runs, warmup=0 if n >= 10_000 else 1)
            report.verdict(f"sn_job_{n}", result.a_wall, result.b_wall, result.ratio, TIME_TARGET,
                           floor_name="notebook" + (" on one BLAS thread" if notebook_env else ""),
                           note=f"{result.spread()}; peak RSS job {result.a_rss_mb:.0f} MiB, notebook {result.b_rss_mb:.0f} MiB")
            peak_mb = result.a_rss_mb * 1.048576
            if n < MEMORY_FROM:
                report.info(f"peak RSS {peak_mb / matrix_mb:.2f} x the matrix (notebook "
                            f"{result.b_rss_mb * 1.048576 / matrix_mb:.2f} x): the interpreter and its libraries dominate")
                measured[n] = (min(r.cpu for r in result.a), cov.stat().st_size)
                continue
            report.verdict(f"sn_job_{n}_memory", peak_mb, matrix_mb, peak_mb / matrix_mb, MEMORY_TARGET, unit="MB",
                           floor_name="float64 matrix", note=f"notebook {result.b_rss_mb * 1.048576 / matrix_mb:.2f} x")
            measured[n] = (min(r.cpu for r in result.a), cov.stat().st_size)
        if len(sizes) >= 2:
            (cpu_1, bytes_1), (cpu_2, bytes_2) = measured[sizes[0]], measured[sizes[1]]
            report.verdict(f"sn_job_growth_{sizes[0]}_{sizes[1]}", cpu_2, cpu_1, (cpu_2 / cpu_1) / (bytes_2 / bytes_1),
                           GROWTH_TARGET, unit="CPU-s", floor_name=f"{sizes[0]} rows",
                           note=f"text x{bytes_2 / bytes_1:.2f}, CPU x{cpu_2 / cpu_1:.2f} (fastest runs)")
    report.finish()


if __name__ == "__main__":
    main()
