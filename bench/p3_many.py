#!/usr/bin/env python3
"""P3: a registry of many mock datasets: dry-run time vs a bare workflow; full run vs the same work in one process.

A registry of N mock datasets of a small format (bao_mean_cov, the DESI DR1 layout, each with its own seed
and folder; bench/_data.py:mock_registry) is passed to a temporary copy of the workflow with
``--config mock_registry=<file>``.
- Dry run (``snakemake -n --cores 2``), N = 1000 (--quick: 100): target <= 1.2 x a bare Snakefile with
  the same number of jobs (trivial jobs, none done yet).
- Full run from scratch on 2 cores, N = 100 (--full-datasets; --quick: 2), against the same work in one
  process (P8's floor, bench/_floor.py: the jobs of the workflow run just before, their steps called in order in
  one interpreter, same files written): wall <= 0.6 x the one-process time (the parallel limit on 2 cores is
  0.5, also printed), and CPU <= 1.2 x the one-process CPU (what per-job processes, imports and scheduling add).

    python bench/p3_many.py [--quick] [--datasets N] [--full-datasets M] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PY,
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

DRY_TARGET = 1.2
PARALLEL_TARGET = 0.6  # of the one-process time; the limit on 2 cores is 0.5
CPU_TARGET = 1.2


def options(parser):
    parser.add_argument("--datasets", type=int, help="datasets in the dry-run registry (default 1000, --quick 100)")
    parser.add_argument("--full-datasets", type=int, help="datasets in the full-run registry (default 100, --quick 2)")
    parser.add_argument("--full-runs", type=int, help="timed full-run pairs (default 1)")


def audit_summary(project: Path) -> list[str]:
    """Mean in-step seconds per rule from the workflow's audit log (start-up and imports excluded)."""
    audit = project / "results" / "mock" / "logs" / "audit.jsonl"
    if not audit.exists():
        return []
    per = defaultdict(list)
    for line in audit.read_text().splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        per[item.get("rule", "?")].append(float(item.get("seconds", 0.0)))
    return [f"{rule:24s} {len(v):5d} jobs, in-step mean {statistics.mean(v):.3f} s" for rule, v in sorted(per.items())]


RULES = ("generate_mock_file", "derive_dataset", "export_dataset")  # derive_dataset also validates and publishes; export_dataset draws the figures too


def per_rule_throughput(report, project: Path, registry: Path, n: int, bare_seconds_per_job: float, work: Path) -> None:
    """Force-rerun one rule at a time (--forcerun R --until R) for ``n`` datasets of a completed run:
    the wall time per job of each rule, start-up and the workflow's per-job costs included."""
    import yaml

    names = list(yaml.safe_load(registry.read_text())["datasets"])[:n]
    config = ["--config", f"mock_registry={registry}", f"datasets=[{','.join(names)}]"]
    report.info(f"per-rule forced reruns, {n} datasets (bare python+numpy job: {bare_seconds_per_job:.3f} s of wall per job):")
    for rule in RULES:
        jobs = count_jobs(project, "--forcerun", rule, "--until", rule, *config)
        result = run(snakemake_cmd("--cores", "2", "--forcerun", rule, "--until", rule, *config), cwd=project,
                     log=work / f"rerun-{rule}.log")
        if jobs:
            report.info(f"  {rule:22s} {jobs:4d} jobs in {result.wall:6.1f} s: {result.wall / jobs:.3f} s of wall per job "
                        f"({result.wall / jobs / bare_seconds_per_job:.1f} x bare), {result.cpu / jobs:.2f} CPU-s per job")


def main() -> None:
    args = cli(__doc__.splitlines()[1], runs=3, quick_runs=2, extra=options)
    n_dry = args.datasets or (100 if args.quick else 1000)
    n_full = args.full_datasets or (2 if args.quick else 100)
    full_runs = args.full_runs or 1
    report = Report(args, "P3")
    from _data import mock_registry

    with Workdir(args, "p3") as work:
        # -- dry run -----------------------------------------------------------------------
        registry = mock_registry(n_dry, work / f"registry_{n_dry}.yaml")
        project = copy_workflow(work / "dry")
        config = ["--config", f"mock_registry={registry}"]
        n_jobs = count_jobs(project, *config)
        bare = bare_workflow(work / "bare-dry", n_jobs)
        a = snakemake_cmd("-n", "--cores", "2", *config)
        b = snakemake_cmd("-n", "--cores", "2")
        dry = paired(lambda: run(a, cwd=project), lambda: run(b, cwd=bare), args.runs)
        report.verdict(f"dry_run_{n_dry}_datasets", dry.a_wall, dry.b_wall, dry.ratio, DRY_TARGET,
                       floor_name=f"bare {n_jobs} jobs", note=dry.spread())
        if args.profile:
            profile_snakemake(project, "-n", "--cores", "2", *config)

        # -- full run ----------------------------------------------------------------------
        from p8_floor import Case

        registry = mock_registry(n_full, work / f"registry_{n_full}.yaml")
        config = ["--config", f"mock_registry={registry}"]
        case = Case(work, "full", config)
        # A B, B A, ...: each one-process floor runs the jobs of the workflow run before it (a first run lists them)
        case.workflow()
        full = paired(case.workflow, case.floor, full_runs, warmup=0)
        n_jobs = len(case.job_walls[-1])
        left = count_jobs(case.project, *config)
        if left:
            raise RuntimeError(f"the full run left {left} jobs undone (see {case.logs})")
        report.verdict(f"full_run_{n_full}_datasets", full.a_wall, full.b_wall, full.ratio, PARALLEL_TARGET,
                       floor_name="the same work in one process",
                       note=f"{n_jobs} jobs; parallel limit on 2 cores {full.b_wall / 2:.1f} s: "
                       f"{full.a_wall / (full.b_wall / 2):.2f} x it; {full.spread()}")
        cpu_a, cpu_b = statistics.median(r.cpu for r in full.a), statistics.median(r.cpu for r in full.b)
        report.verdict(f"full_run_{n_full}_datasets_cpu", cpu_a, cpu_b, full.cpu_ratio, CPU_TARGET, unit="CPU-s",
                       floor_name="the same work in one process", note=f"{(cpu_a - cpu_b) / n_jobs:.3f} CPU-s per job added")
        for line in audit_summary(case.project):
            report.info(line)
        if args.profile:
            bare = bare_workflow(work / "bare-full", n_jobs, shell=f"{PY} -c 'import numpy' && touch {{output}}")
            bare_run = run(snakemake_cmd("--cores", "2"), cwd=bare, log=work / "bare-full.log")
            per_rule_throughput(report, case.project, registry, min(20, n_full), bare_run.wall / n_jobs, work)
    report.finish()


if __name__ == "__main__":
    main()
