#!/usr/bin/env python3
"""P3: a registry of many mock datasets: dry-run time and full-run throughput vs bare workflows.

A registry of N mock datasets of a small format (bao_mean_cov, the DESI DR1 layout, each with its own seed
and folder; bench/_data.py:mock_registry) is passed to a temporary copy of the workflow with
``--config mock_registry=<file>``.
- Dry run (``snakemake -n --cores 2``), N = 1000 (--quick: 100): target <= 1.2 x a bare Snakefile with
  the same number of jobs (trivial jobs, none done yet).
- Full run from scratch on 2 cores, N = 100 (--full-datasets; --quick: 2): throughput (jobs/s) >= 0.7 x a
  bare workflow of the same job count whose jobs only start Python and import numpy.

    python bench/p3_many.py [--quick] [--datasets N] [--full-datasets M] [--strict] [--runs N] [--profile]
"""

from __future__ import annotations

import json
import shutil
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
THROUGHPUT_TARGET = 0.7


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


RULES = ("generate_mock_file", "derive_dataset", "plot_dataset")  # derive_dataset also validates and publishes


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
        registry = mock_registry(n_full, work / f"registry_{n_full}.yaml")
        config = ["--config", f"mock_registry={registry}"]
        template = copy_workflow(work / "full-template")
        n_jobs = count_jobs(template, *config)
        bare_template = bare_workflow(work / "bare-full-template", n_jobs, shell=f"{PY} -c 'import numpy' && touch {{output}}")
        counter = iter(range(10**6))
        last = {}

        def fresh(template_dir: Path, cmd: list[str]):
            def go():
                i = next(counter)
                folder = work / f"{template_dir.name}-{i}"
                shutil.copytree(template_dir, folder)
                result = run(cmd, cwd=folder, log=work / f"{folder.name}.log")
                last[template_dir.name] = folder
                return result

            return go

        full = paired(
            fresh(template, snakemake_cmd("--cores", "2", *config)),
            fresh(bare_template, snakemake_cmd("--cores", "2")),
            full_runs,
            warmup=0,
        )
        jps_a, jps_b = n_jobs / full.a_wall, n_jobs / full.b_wall
        report.verdict(f"full_run_{n_full}_datasets", jps_a, jps_b, 1 / full.ratio, THROUGHPUT_TARGET, unit="jobs/s",
                       higher_is_better=True, floor_name="bare python+numpy jobs",
                       note=f"{n_jobs} jobs: {full.a_wall:.1f} s vs {full.b_wall:.1f} s; {full.spread()}")
        left = count_jobs(last[template.name], *config)
        if left:
            raise RuntimeError(f"the full run left {left} jobs undone (see {work}/{last[template.name].name}.log)")
        for line in audit_summary(last[template.name]):
            report.info(line)
        if args.profile:
            per_rule_throughput(report, last[template.name], registry, min(20, n_full), full.b_wall / n_jobs, work)
    report.finish()


if __name__ == "__main__":
    main()
