"""Python API for fitting codes and notebooks.

``prepare_dataset(name)`` runs the workflow for one dataset through
Snakemake's Python API — only its stale jobs, with the settings of
``profiles/default`` — and returns the loaded dataset.
``prepare_datasets(names)`` does the same for several, like the operations
document's ``process_multiple_datasets``: it does not stop at the first
failure and returns a status per dataset.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..core.errors import PbufDataError
from ..model.dataset import Dataset, load_dataset
from .project import Project

PROFILE = Path("profiles") / "default" / "config.yaml"


def run_workflow(root: str | Path, targets: set[str], *, cores: int = 1, config: dict | None = None,
                 forcerun: set[str] = frozenset(), dryrun: bool = False, unlock: bool = False) -> None:
    """One Snakemake invocation through its Python API, with the default profile's settings (all of them:
    a setting this function does not know is an error, not silently a different run). The datasets of
    ``forcerun`` are republished even when their content did not change (a rederivation asked for)."""
    import os

    from .steps import REPUBLISH_ENV

    before = os.environ.get(REPUBLISH_ENV)
    if forcerun:
        os.environ[REPUBLISH_ENV] = "1"
    try:
        _run_workflow(root, targets, cores=cores, config=config, forcerun=forcerun, dryrun=dryrun, unlock=unlock)
    finally:
        if before is None:
            os.environ.pop(REPUBLISH_ENV, None)
        else:
            os.environ[REPUBLISH_ENV] = before


def _run_workflow(root, targets, *, cores, config, forcerun, dryrun, unlock) -> None:
    import yaml
    from snakemake.api import SnakemakeApi
    from snakemake.scheduling.greedy import SchedulerSettings as GreedySchedulerSettings
    from snakemake.settings.enums import Quietness, RerunTrigger
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        OutputSettings,
        ResourceSettings,
        SchedulingSettings,
    )

    root = Path(root).resolve()
    profile = yaml.safe_load((root / PROFILE).read_text())
    take = profile.pop  # each setting as the command line would pass it; what is left is not applied here
    quiet = {Quietness.PROGRESS, Quietness.RULES} | {Quietness[q.upper()] for q in take("quiet", [])}
    output = OutputSettings(quiet=quiet, show_failed_logs=take("show-failed-logs", False))
    resources = ResourceSettings(cores=cores, resources=take("resources", {}))
    dag_settings = DAGSettings(
        targets=set(targets),
        forcerun=set(forcerun),
        force_incomplete=take("rerun-incomplete", False),
        max_checksum_file_size=int(take("max-checksum-file-size")),
        rerun_triggers={RerunTrigger[t.upper()] for t in take("rerun-triggers")},
    )
    execution = ExecutionSettings(keep_going=take("keep-going", False), use_threads=take("force-use-threads", False))
    scheduler = take("scheduler", "ilp")
    if profile:
        raise PbufDataError(f"{PROFILE}: {', '.join(sorted(profile))}: not a setting that pbuf-data applies to its runs")
    from ..publish import writer

    held = writer.holds(root)
    try:
        writer.acquire(root)  # this process's command (pbuf-data reprocess ..., a notebook's python)
        with SnakemakeApi(output) as api:
            workflow = api.workflow(
                resource_settings=resources,
                config_settings=ConfigSettings(config=config or {}),
                snakefile=root / "Snakefile",
                workdir=root,
            )
            dag = workflow.dag(dag_settings)
            if unlock:
                dag.unlock()
                return
            dag.execute_workflow(
                executor="local",
                pseudo_executor="dryrun" if dryrun else None,
                execution_settings=execution,
                scheduling_settings=SchedulingSettings(scheduler=scheduler),
                scheduler_settings=GreedySchedulerSettings() if scheduler == "greedy" else None,
                greedy_scheduler_settings=GreedySchedulerSettings(),
            )
    finally:  # the run's helper process (mock files, figures, exports) ends with it, not with this process
        from .helper import stop_helper

        stop_helper()
        writer.release_to(root, held)  # also the hold of the run's onstart, if its onsuccess/onerror did not run


def _failure(project: Project, name: str, exc: Exception) -> str:
    """The clear error a failed job logged (dataset, file, line/check), else the exception."""
    from ..core.logs import last_error

    for step in ("derive", "validate", "publish"):
        message = last_error(project.root / project.tree.job_log(step, name))
        if message:
            return message
    return str(exc)


def prepare_dataset(name: str, cores: int = 1, force: bool = False, root: str | Path | None = None,
                    raw_dir: str | Path | None = None, corpus: str | None = None) -> Dataset:
    """Bring dataset ``name`` up to date (only stale jobs; ``force`` rederives it) and load it.

    ``root`` defaults to the project containing the current folder. ``raw_dir``
    selects the real registry (as ``--config raw_dir=...``); without it the
    workflow's configured default is used. ``corpus`` as ``--config corpus=...``.
    """
    from ..core.errors import suggest

    project = Project.open(root, raw_dir=raw_dir, corpus=corpus)
    known = sorted(project.registry)
    if name not in known:
        raise PbufDataError(f"not in the active registry ({project.describe()}){suggest(name, known)}; "
                            f"known: {', '.join(known)}", dataset=name)
    project.check_tree()
    tree = project.tree
    targets = {tree.receipt(name), tree.export_receipt(name)}
    from ..publish import writer

    with writer.writing(project.root, f"prepare_dataset({name!r})"):
        try:
            run_workflow(project.root, targets, cores=cores, config=project.overrides(),
                         forcerun={tree.receipt(name)} if force else set())
        except Exception as exc:  # Snakemake reports job failures as exceptions of its own
            raise PbufDataError(f"preparation failed: {_failure(project, name, exc)}", dataset=name) from None
    # the run's end (settle_tree of rules/common.smk) left the summary, the manifest and a snapshot as a full run
    # does: verify and certify pass right after
    return load_dataset(name, root=project.root / tree.base)


def prepare_datasets(names, cores: int = 1, force: bool = False, root: str | Path | None = None,
                     raw_dir: str | Path | None = None, corpus: str | None = None) -> dict[str, dict]:
    """Prepare several datasets; a failure is recorded and the next dataset is still processed."""
    results = {}
    for name in names:
        start = time.perf_counter()
        try:
            dataset = prepare_dataset(name, cores=cores, force=force, root=root, raw_dir=raw_dir, corpus=corpus)
            results[name] = {"status": "success", "data_points": len(dataset), "processing_time": time.perf_counter() - start}
        except PbufDataError as exc:
            results[name] = {"status": "failed", "error": str(exc), "processing_time": time.perf_counter() - start}
    return results
