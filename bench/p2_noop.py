#!/usr/bin/env python3
"""P2: a no-op run (nothing to do) of the workflow vs a bare Snakemake workflow of the same job count.

In temporary copies of the workflow, a complete run is made first for (a) the real corpus
(``--config raw_dir=<raw>``; --quick: two of its datasets only) and (b) the embedded default (the mock surveys); then ``snakemake --cores 2``
is timed while it has nothing to do. The baseline is a bare Snakefile in a temporary folder with the same
number of jobs (trivial ``touch`` jobs, already complete), timed the same way. Target: A / B <= 1.3 for each.

    python bench/p2_noop.py [--quick] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RAW_DIR,
    Report,
    Workdir,
    bare_workflow,
    cli,
    copy_workflow,
    count_jobs,
    paired,
    profile_snakemake,
    run,
    snakemake_cmd,
)

TARGET = 1.3


def prepare(work: Path, label: str, config: list[str]) -> tuple[Path, Path, int]:
    """A completed copy of the workflow and a completed bare workflow with the same job count."""
    project = copy_workflow(work / label)
    n_jobs = count_jobs(project, *config)
    run(snakemake_cmd("--cores", "2", *config), cwd=project, log=work / f"{label}-run.log")
    left = count_jobs(project, *config)
    if left:
        raise RuntimeError(f"{label}: {left} jobs left after a complete run (see {work / f'{label}-run.log'})")
    bare = bare_workflow(work / f"bare-{label}", n_jobs)
    run(snakemake_cmd("--cores", "2"), cwd=bare, log=work / f"bare-{label}-run.log")
    return project, bare, n_jobs


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=9, quick_runs=3)
    report = Report(args, "P2")
    cases = []
    if (RAW_DIR / "SOURCES.md").exists():
        # --quick: two small datasets of the real corpus, to keep CI short
        subset = ["datasets=[bao_desi_dr1,cc_moresco]"] if args.quick else []
        cases.append(("noop_real", ["--config", f"raw_dir={RAW_DIR}", *subset]))
    else:
        report.info(f"real corpus not found at {RAW_DIR} (set PBUF_RAW_DIR): real-corpus case skipped")
    if not args.quick or not cases:
        cases.append(("noop_mock", []))
    with Workdir(args, "p2") as work:
        for label, config in cases:
            project, bare, n_jobs = prepare(work, label, config)
            a = snakemake_cmd("--cores", "2", *config)
            b = snakemake_cmd("--cores", "2")
            result = paired(lambda: run(a, cwd=project), lambda: run(b, cwd=bare), args.runs)
            report.verdict(label, result.a_wall, result.b_wall, result.ratio, TARGET, floor_name=f"bare {n_jobs} jobs",
                           note=result.spread())
            if args.profile:
                profile_snakemake(project, "--cores", "2", *config)
    report.finish()


if __name__ == "__main__":
    main()
