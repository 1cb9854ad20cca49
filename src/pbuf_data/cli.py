"""Command line: ``pbuf-data <command>`` (also ``python -m pbuf_data``).

Commands work from anywhere inside the project (the folder with Snakefile and
config/config.yaml is found upwards) or take ``--root``; outside a project they
refuse. Exit status: 0 fine, 1 a problem was found or refused, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import layout
from .errors import PbufDataError, suggest
from .locate import find_project

DEFAULT_BACKUP_DIR = layout.BACKUPS


def _config(root: Path) -> dict:
    """The configuration read leniently (no schema): verify and restore must work even when it is broken."""
    from .registry import read_yaml

    path = root / "config" / "config.yaml"
    try:
        config = read_yaml(path, "configuration file")
    except PbufDataError:
        return {}
    return config if isinstance(config, dict) else {}


def _backup_dir(args) -> str:
    return args.backup_dir or _config(Path(args.root)).get("backup", {}).get("dir", DEFAULT_BACKUP_DIR)


def cmd_verify(args) -> int:
    from .verify import verify_project

    report = verify_project(args.root, backup_dir=_backup_dir(args), raw_dir=args.raw_dir)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_restore(args) -> int:
    from .api import running_snakemake
    from .restore import restore
    from .verify import verify_project

    pids = running_snakemake(args.root)
    if pids:
        print(f"ERROR: a run is in progress here (pid {', '.join(map(str, pids))}); restore when it has finished", file=sys.stderr)
        return 1
    backup_dir = _backup_dir(args)
    result = restore(args.root, backup_dir, args.snapshot, with_config=args.with_config, project=args.project)
    if "finished" in result:
        print(f"finished the interrupted restore of {', '.join(result['finished'])} (run restore again for another snapshot)")
    else:
        print(f"restored {result['files']} files from {result['snapshot']} into {', '.join(result['restored'])}; "
              f"checked against {result['trusted']}; the swap is resumable: if interrupted, `pbuf-data restore` finishes it")
    report = verify_project(args.root, backup_dir=backup_dir)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_backups(args) -> int:
    from .backup import check_backup_dir, list_snapshots, load_snapshot, project_id, projects

    root = Path(args.root).resolve()
    store = check_backup_dir(root, _backup_dir(args))
    pid = project_id(root)
    print(f"project {pid or '(no identity yet: no backup written)'}; store {store}")
    status = 0
    for path in list_snapshots(store, root, pid):
        try:
            snapshot = load_snapshot(store, root, pid, path.name)
            state = f"{len(snapshot['files']):4d} files {sum(e['size'] for e in snapshot['files']):>12d} bytes  ok"
        except PbufDataError as exc:
            state, status = f"BAD: {exc.reason}", 1
        print(f"{path.name}  {state}")
    others = {k: v for k, v in projects(store).items() if k != pid}
    if others:
        print(f"other projects in this store (not listed, never touched): {len(others)}")
    return status


def cmd_health(args) -> int:
    from .ops import check_health, load_config

    try:
        thresholds = load_config(Path(args.root)).get("health")
        report = check_health(args.root, thresholds, cpu_interval=args.cpu_interval)
    except Exception as exc:  # the check itself could not run: status 2 for cron
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(report, indent=2))
    return 1 if report["alerts"] else 0


def cmd_certify(args) -> int:
    from .ops import certify

    report = certify(args.root, raw_dir=args.raw_dir, quick=args.health_check)
    for check in report["checks"]:
        mark = "PASS" if check["passed"] else "FAIL"
        details = check["details"] if isinstance(check["details"], str) else json.dumps(check["details"])
        print(f"[{mark}] {check['check']}: {details}")
    print(f"certification_status: {report['certification_status']} (report: {report['report_file']})")
    return 0 if report["certification_status"] == "CERTIFIED" else 1


def cmd_trends(args) -> int:
    from .logs import processing_trends

    problems: list[str] = []
    trends = processing_trends(Path(args.root) / layout.LOGS, problems)
    for problem in problems:
        print(f"WARNING: processing summary left out: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(trends, indent=2))
        return 0
    print(f"{'dataset':28s} {'runs':>5s} {'fail':>5s} {'mean s':>8s} {'max s':>8s} {'mean MB':>8s} {'max MB':>8s}")
    for name, t in trends.items():
        print(
            f"{name:28s} {t['runs']:5d} {t['failures']:5d} {t['mean_duration_s']:8.3f} {t['max_duration_s']:8.3f}"
            f" {t['mean_peak_memory_mb']:8.1f} {t['max_peak_memory_mb']:8.1f}"
        )
    return 0


def cmd_reprocess(args) -> int:
    """Rederive the named datasets (e.g. after a corruption), then everything that depends on them."""
    from .api import active_datasets, run_workflow

    names = list(args.datasets)
    if args.from_file:
        names += [line.strip() for line in Path(args.from_file).read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        print("ERROR: no dataset named", file=sys.stderr)
        return 2
    known = active_datasets(Path(args.root), args.raw_dir)
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = "; ".join(f"'{name}'{suggest(name, known)}" for name in unknown)
        print(f"ERROR: unknown dataset {listed}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    config = {"raw_dir": str(Path(args.raw_dir).resolve())} if args.raw_dir else {}
    forcerun = {layout.receipt(name) for name in names}
    print("equivalent: snakemake --cores {} {}--forcerun {}".format(
        args.cores, f"--config raw_dir={args.raw_dir} " if args.raw_dir else "", " ".join(sorted(forcerun))))
    try:
        run_workflow(args.root, {"all"}, cores=args.cores, config=config, forcerun=forcerun)
    except Exception as exc:
        print(f"ERROR: reprocessing failed: {exc} (see data/logs/errors.log)", file=sys.stderr)
        return 1
    return 0


def cmd_resume(args) -> int:
    """After a crash: remove a stale lock (only if no Snakemake runs here), then finish the run."""
    from .api import run_workflow, running_snakemake

    root = Path(args.root)
    pids = running_snakemake(root)
    if pids:
        print(f"ERROR: a run is in progress here (pid {', '.join(map(str, pids))}); not touching its lock", file=sys.stderr)
        return 1
    config = {"raw_dir": str(Path(args.raw_dir).resolve())} if args.raw_dir else {}
    if any((root / ".snakemake" / "locks").glob("*")):
        print("stale lock found (no Snakemake process runs here): unlocking")
        run_workflow(root, {"all"}, config=config, unlock=True)
    print(f"equivalent: snakemake --unlock && snakemake --cores {args.cores} --rerun-incomplete"
          + (f" --config raw_dir={args.raw_dir}" if args.raw_dir else ""))
    try:
        run_workflow(root, {"all"}, cores=args.cores, config=config)
    except Exception as exc:
        print(f"ERROR: the resumed run failed: {exc} (see data/logs/errors.log)", file=sys.stderr)
        return 1
    return 0


def cmd_status(args) -> int:
    from .status import UP_TO_DATE, workflow_status

    report = workflow_status(args.root, raw_dir=args.raw_dir)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, reasons in report.items():
            print(f"{name:28s} {UP_TO_DATE if not reasons else 'would be reprocessed:'}")
            for reason in reasons:
                print(f"    - {reason}")
    stale = sum(bool(r) for r in report.values())
    print(f"{len(report) - stale} of {len(report)} datasets up to date" + ("" if args.json else "; job-level view: snakemake -n"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbuf-data", description="PBUF data preparation: operations")
    parser.add_argument("--root", help="project folder (default: the one containing the current folder)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="recompute every recorded checksum; report missing, extra, corrupted files")
    p.add_argument("--raw-dir", help="also check the registry's raw files there against their pins")
    p.add_argument("--backup-dir", help=f"backup folder (default: config backup.dir or {DEFAULT_BACKUP_DIR})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("restore", help="check a snapshot of this project fully, swap it in, verify the result")
    p.add_argument("snapshot", nargs="?", help="snapshot name (default: this project's newest; see pbuf-data backups)")
    p.add_argument("--backup-dir")
    p.add_argument("--with-config", action="store_true", help="also restore config/ (registries, config.yaml)")
    p.add_argument("--project", help="after losing data/: the project id whose snapshots are this project's")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("backups", help="list this project's snapshots and check each against its checksums")
    p.add_argument("--backup-dir")
    p.set_defaults(func=cmd_backups)

    p = sub.add_parser("health", help="psutil health report (JSON); exit 0 healthy, 1 alerts, 2 error")
    p.add_argument("--cpu-interval", type=float, default=1.0, help="seconds over which CPU use is measured")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("certify", help="system certification: run every check, write data/logs/certification_report_<time>.json")
    p.add_argument("--health-check", action="store_true", help="quick mode: configuration and health only")
    p.add_argument("--raw-dir", help="raw folder to check against the pins (default: config raw_dir)")
    p.set_defaults(func=cmd_certify)

    p = sub.add_parser("trends", help="processing time and memory per dataset over all processing summaries")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trends)

    p = sub.add_parser("reprocess", help="rederive the given datasets and everything downstream")
    p.add_argument("datasets", nargs="*")
    p.add_argument("--from-file", help="file with one dataset name per line")
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--raw-dir", help="as --config raw_dir=...")
    p.set_defaults(func=cmd_reprocess)

    p = sub.add_parser("status", help="per dataset: up to date, or why it would be reprocessed")
    p.add_argument("--raw-dir", help="as --config raw_dir=... (default: config raw_dir, empty = mock default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("resume", help="after a crash: clear a stale lock and finish the interrupted run")
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--raw-dir", help="as --config raw_dir=...")
    p.set_defaults(func=cmd_resume)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.root = str(find_project(args.root))
        return args.func(args)
    except PbufDataError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
