"""Operations: health check (psutil) and system certification.

Health answers "can this machine run the workflow now?" (memory, disk of the
data folder, CPU, log sizes, workflow state) against thresholds from the
configuration. Certification runs real checks of the whole installation and
writes ``results/<corpus>/logs/certification_report_<time>.json``.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from ..core import layout
from ..core.errors import PbufDataError

DEFAULT_HEALTH = {"memory_percent": 85.0, "disk_percent": 90.0, "cpu_percent": 90.0, "log_file_mb": 100.0,
                  "cpu_window_minutes": 15}
LOAD_WINDOWS = {1: 0, 5: 1, 15: 2}  # minutes -> index in os.getloadavg()


def _log_sizes(root: Path, tree: layout.Tree) -> dict[str, int]:
    """Sizes of the aggregate logs (processing, errors, audit, their rotations) in the tree's logs."""
    logs = root / tree.logs
    files = [p for p in logs.glob("*") if p.is_file() and not p.name.endswith(".lock")] if logs.exists() else []
    return {p.name: p.stat().st_size for p in sorted(files)}


def snakemake_state(root: Path, tree: layout.Tree) -> dict:
    """What Snakemake's own state says: a lock (a run in progress or a crash), incomplete outputs, last verdicts."""
    meta = root / ".snakemake"
    locks = sorted(p.name for p in (meta / "locks").glob("*")) if (meta / "locks").exists() else []
    incomplete = sum(1 for _ in (meta / "incomplete").rglob("*") if _.is_file()) if (meta / "incomplete").exists() else 0
    summary_path = root / tree.summary_json
    try:
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    except (OSError, ValueError):
        summary = {"n_failed": "unreadable summary"}
    from ..publish.writer import describe, holder

    running = holder(root)  # proved: the project's writer lock is held
    state = "idle"
    if running:
        state = f"running: {describe(running)} (`pbuf-data stop` stops it)"
    elif locks:
        state = "stale Snakemake lock (no process holds the writer lock): `pbuf-data resume` clears it"
    elif incomplete:
        state = "interrupted: incomplete outputs (next run reruns them)"
    return {
        "state": state,
        "locks": locks,
        "run_in_progress": running,
        "incomplete_outputs": incomplete,
        "datasets_failed_validation": summary["n_failed"] if summary else None,
    }


def check_health(root: str | Path, tree: layout.Tree, thresholds: dict | None = None, cpu_interval: float = 0.5) -> dict:
    """The operations document's health report, with alerts against ``thresholds``."""
    import psutil

    root = Path(root)
    limits = dict(DEFAULT_HEALTH, **(thresholds or {}))
    data = root / tree.base
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(data if data.exists() else root))
    cpu = psutil.cpu_percent(interval=cpu_interval)
    logs = _log_sizes(root, tree)
    status = snakemake_state(root, tree)
    try:
        import pbuf_data.read.derive  # noqa: F401  (the derivation code imports)

        framework = "healthy"
    except Exception as exc:  # pragma: no cover - only on a broken install
        framework = f"unhealthy: {exc}"
    alerts = {}  # kind -> message
    if memory.percent > limits["memory_percent"]:
        alerts["memory"] = f"High memory usage: {memory.percent:.1f}% > {limits['memory_percent']}%"
    if disk.percent > limits["disk_percent"]:
        alerts["disk"] = f"Low disk space: {disk.percent:.1f}% used > {limits['disk_percent']}% on the data folder"
    # sustained load only: the load average over the configured window, per core (a moment's peak is no alert)
    window = int(limits["cpu_window_minutes"])
    sustained = min(100.0, os.getloadavg()[LOAD_WINDOWS[window]] / (psutil.cpu_count() or 1) * 100)
    if sustained > limits["cpu_percent"]:
        alerts["cpu"] = (f"Sustained CPU load: {sustained:.1f}% of {psutil.cpu_count()} cores over {window} min "
                         f"> {limits['cpu_percent']}%")
    big = [f"{name} is {size / 1e6:.1f} MB" for name, size in logs.items() if size > limits["log_file_mb"] * 1e6]
    if big:
        alerts["logs"] = f"Log files over {limits['log_file_mb']} MB: {', '.join(big)}"
    if framework != "healthy":
        alerts["framework"] = f"Framework {framework}"
    if status["locks"] and not status["run_in_progress"]:
        alerts["workflow"] = f"Workflow {status['state']}"
    if status["datasets_failed_validation"]:
        alerts["validation"] = f"{status['datasets_failed_validation']} dataset(s) failed validation"
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "system_resources": {
            "memory_percent": memory.percent,
            "memory_available_gb": memory.available / 1e9,
            "disk_path": str((data if data.exists() else root).resolve()),
            "disk_percent": disk.percent,
            "disk_free_gb": disk.free / 1e9,
            "cpu_percent": cpu,
            "cpu_load_percent": round(sustained, 1),
            "cpu_window_minutes": window,
        },
        "framework_status": framework,
        "workflow": status,
        "log_file_sizes": logs,
        "thresholds": limits,
        "alerts": list(alerts.values()),
        "alert_kinds": list(alerts),
    }


def _check(name, func):
    """Run one certification check; a check that cannot even run has failed."""
    try:
        passed, details = func()
    except PbufDataError as exc:
        passed, details = False, str(exc)
    except (OSError, ValueError) as exc:  # unreadable or corrupted files, e.g. a damaged report
        passed, details = False, f"check could not run: {exc!r}"
    return {"check": name, "passed": bool(passed), "details": details}


def certify(project, quick: bool = False) -> dict:
    """Run every check of a project's result tree for real and write the certification report; nothing is assumed.

    ``project`` (:class:`pbuf_data.operate.project.Project`) may have been read leniently: the configuration is checked
    against its schema here, with the project's overrides (raw folder, corpus)."""
    from ..core.atomic import write_text
    from ..model.dataset import load_dataset
    from ..publish.backup import check_backup_dir, list_snapshots, project_id
    from ..publish.verify import verify_project
    from .project import Project, read_config

    root, tree = project.root, project.tree
    checks = []
    state: dict = {}

    def config_check():
        active = Project(root, dict(read_config(root), **project.overrides()))
        state.update(config=active.config, project=active, registry=active.registry)
        return True, f"config valid; {len(state['registry'])} datasets in {', '.join(active.registry_files)}"

    checks.append(_check("config_schema", config_check))
    health_limits = state.get("config", {}).get("health")
    health = check_health(root, tree, health_limits)
    # a momentary CPU peak is no defect of the installation: it is reported, not certified against
    lasting = [msg for kind, msg in zip(health["alert_kinds"], health["alerts"]) if kind != "cpu"]
    checks.append({"check": "health", "passed": not lasting, "details": lasting or "no lasting alerts (memory, disk, logs, workflow)"})

    if not quick and "registry" in state:
        registry, active, config = state["registry"], state["project"], state["config"]
        try:  # the one verification (published data, backups, raw files), reported below as three checks
            verified = verify_project(root, tree, backup_dir=config["backup"]["dir"], raw_dir=root / active.raw_dir,
                                      registry=config["mock_registry"] if active.use_mock else config["registry"])
        except (PbufDataError, OSError, ValueError) as exc:
            verified = exc

        def part_check(name):
            if isinstance(verified, Exception):
                raise verified
            report = verified.parts[name]
            return report.ok, report.lines()[-1] if report.ok else report.lines()

        def datasets_check():
            problems = []
            for name in registry:
                try:
                    load_dataset(name, root=root / tree.base, verify=True)
                except PbufDataError as exc:
                    problems.append(str(exc))
                    continue
                report_path = root / tree.report(name, "json")
                try:
                    verdict = json.loads(report_path.read_text())["verdict"]
                except FileNotFoundError:
                    verdict = "missing"
                except (ValueError, KeyError, TypeError):
                    verdict = "unreadable"
                if verdict in ("missing", "unreadable", "failed"):
                    problems.append(f"{name}: validation report {verdict}")
            return not problems, problems or f"{len(registry)} datasets derived, published and validated"

        def backup_check():
            store = check_backup_dir(root, config["backup"]["dir"])
            snapshots = list_snapshots(store, root, tree, project_id(root, tree))
            if not snapshots:
                return False, f"no snapshot of this project in {store}"
            passed, details = part_check("backups")
            return passed, f"{len(snapshots)} snapshots verified; newest {snapshots[-1].name}" if passed else details

        def permissions_check():
            bad = [str(p.relative_to(root)) for folder in (layout.DATA, tree.base) for p in (root / folder).rglob("*")
                   if not p.is_symlink() and p.stat().st_mode & stat.S_IWOTH]
            return not bad, bad or f"no world-writable file or folder under {layout.DATA}/ and {tree.base}/"

        def log_size_check():
            limit = dict(DEFAULT_HEALTH, **(health_limits or {}))["log_file_mb"] * 1e6
            big = {k: v for k, v in _log_sizes(root, tree).items() if v > limit}
            return not big, big or f"all aggregate logs below {limit / 1e6:.0f} MB"

        for name, func in [
            ("raw_files_match_pins", lambda: part_check("raw")),
            ("datasets_derived_and_validated", datasets_check),
            ("manifest_verified", lambda: part_check("published")),
            ("backups_present_and_verified", backup_check),
            ("no_world_writable_files", permissions_check),
            ("log_sizes", log_size_check),
        ]:
            checks.append(_check(name, func))

    passed = all(c["passed"] for c in checks)
    report = {
        "certification_status": "CERTIFIED" if passed else "FAILED",
        "mode": "health-check" if quick else "full",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checks": checks,
        "health": health,
    }
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1e6) % 1000000:06d}Z"
    path = root / tree.logs / f"certification_report_{stamp}.json"
    write_text(path, json.dumps(report, indent=2, default=str) + "\n")
    report["report_file"] = str(path)
    return report
