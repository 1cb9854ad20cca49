#!/usr/bin/env python3
"""P10: the derive job of a large SN release (derive + validate + publish) against a notebook doing the same work.

Inputs: N-row Pantheon+-layout tables with N x N text covariances (bench/_data.py:large_sn), N = 2,000, 5,000,
10,000 and 20,000 (--quick: 2,000; --rows to choose).
- A: the workflow's job for it, as a local run runs it (rules/derive.smk): its command line,
  ``scripts/derive_dataset.py ...`` with the rule's parameters, sent to the workflow's helper, which forks a
  process for it with the job's threads (``threads_for`` its raw files' size); the helper is started once,
  as a run starts it, and has imported what a dataset's job imports (its first job, untimed below 10,000 rows,
  pays that). Wall time from this process, around the request; CPU time and peak RSS from the job's audit
  record (its process's, which counts the helper's pages it shares). With ``--process``: the job as a process
  of its own, ``python3 scripts/derive_dataset.py ...`` (a conda environment, a cluster), timed from outside.
  Either way it reads and hashes the files once, parses, selects, saves the staged archive, validates it
  (symmetry, Cholesky factorization, condition number, ...), publishes it, writes the receipt and logs.
- B: a notebook: pandas' C reader for the table and the covariance, the same row selection, numpy's Cholesky
  factorization of the selected covariance and ``np.save`` of it and of the table's columns. From
  NOTEBOOK_ONE_THREAD_FROM rows on (20,000), the notebook's BLAS runs on one thread: numpy's threaded Cholesky
  of the pinned OpenBLAS crashes there (SIGSEGV), so one thread is the only notebook that gives a figure; the
  verdict line says so.
Targets: wall A / B <= 1.0 at every size (pairs A B, B A, ...); peak RSS of A <= 2 x the float64 N x N matrix
from 10,000 rows on (below, the interpreter and its libraries weigh more than the matrix);
A's CPU time grows no faster than the covariance text between the two first sizes.

    python bench/p10_sn_job.py [--quick] [--rows N,N,...] [--process] [--strict] [--runs N] [--keep]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROJECT, PY, Report, Run, Workdir, cli, paired, run  # noqa: E402

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


def forked(cmd: list, threads: int, folder: Path) -> Run:
    """The job of ``cmd`` run as a local run runs it: forked by this process's helper, with its threads; its CPU
    time and peak RSS from its audit record."""
    import json
    import time

    from pbuf_data.operate.helper import run_in_helper

    here = os.getcwd()
    os.chdir(folder)
    try:
        start = time.perf_counter()
        run_in_helper([str(part) for part in cmd[1:]], threads)
        wall = time.perf_counter() - start
    finally:
        os.chdir(here)
    record = json.loads(next(folder.rglob("audit.jsonl")).read_text().splitlines()[-1])
    return Run(wall, int(record["peak_rss_mib"] * 1024), 0, record["cpu_seconds"])


def main() -> None:
    def options(parser):
        parser.add_argument("--rows", help=f"sizes, comma separated (default {SIZES}, --quick {QUICK_SIZES})")
        parser.add_argument("--process", action="store_true", help="the job as a process of its own (not forked by the helper)")

    args = cli(__doc__.splitlines()[1], runs=3, quick_runs=1, extra=options)
    os.environ["PYTHONPATH"] = str(PROJECT / "src")  # the helper's package: this copy's
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
                if not args.process:
                    return forked(job, threads, work / "job")
                return run(job, cwd=work / "job", env=env, log=work / f"job-{n}.log")

            notebook_env = dict(os.environ, **thread_env(1)) if n >= NOTEBOOK_ONE_THREAD_FROM else None

            def b():
                return run([PY, "-c", NOTEBOOK, table, cov, work / "b_cov.npy", work / "b_table.npy"],
                           env=notebook_env, log=work / f"notebook-{n}.log")

            report.info(f"{n} rows: covariance {cov.stat().st_size / 1e6:.0f} MB of text, matrix {matrix_mb:.0f} MB; "
                        f"the job on {threads} thread{'s' * (threads > 1)}, "
                        + ("a process of its own" if args.process else "forked by the helper"))
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
