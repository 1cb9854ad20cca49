"""Command line: ``pbuf-data <command>`` (also ``python -m pbuf_data``).

Commands work from anywhere inside the project (the folder with Snakefile and
config/config.yaml is found upwards) or take ``--root``; outside a project they
refuse. Each works on one corpus's result tree (``results/<corpus>/``): the
configured one, ``--raw-dir`` (as ``--config raw_dir=...``: the real corpus) or
``--corpus NAME``; the first line it prints names the tree.
Exit status: 0 fine, 1 a problem was found or refused, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import layout
from .errors import PbufDataError, suggest
from .project import Project

DEFAULT_BACKUP_DIR = layout.BACKUPS


def _backup_dir(args) -> str:
    backup = args.project.config.get("backup")
    return args.backup_dir or (backup.get("dir") if isinstance(backup, dict) else None) or DEFAULT_BACKUP_DIR


def _say_tree(args, *, file=sys.stdout) -> None:
    """The first line of a command: which corpus and result tree it works on."""
    project = args.project
    note = ""
    if not (project.root / project.tree.base).is_dir():
        note = f" (no results yet{project.missing_tree_hint()})"
    print(f"{project.describe()}{note}", file=file)


def cmd_verify(args) -> int:
    from .verify import verify_project

    if not args.json:
        _say_tree(args)
    report = verify_project(args.root, args.project.tree, backup_dir=_backup_dir(args), raw_dir=args.raw_dir)
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
    _say_tree(args)
    backup_dir = _backup_dir(args)
    result = restore(args.root, args.project.tree, backup_dir, args.snapshot, with_config=args.with_config,
                     project=args.project_id)
    if "finished" in result:
        print(f"finished the interrupted restore of {', '.join(result['finished'])} (run restore again for another snapshot)")
    else:
        print(f"restored {result['files']} files from {result['snapshot']} into {', '.join(result['restored'])}; "
              f"checked against {result['trusted']}; the swap is resumable: if interrupted, `pbuf-data restore` finishes it")
    report = verify_project(args.root, args.project.tree, backup_dir=backup_dir)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_backups(args) -> int:
    from .backup import check_backup_dir, list_snapshots, load_snapshot, project_id, projects

    _say_tree(args)
    root, tree = Path(args.root).resolve(), args.project.tree
    store = check_backup_dir(root, _backup_dir(args))
    pid = project_id(root, tree)
    print(f"project {pid or '(no identity yet: no backup written)'}; store {store}")
    status = 0
    for path in list_snapshots(store, root, tree, pid):
        try:
            snapshot = load_snapshot(store, root, tree, pid, path.name)
            state = f"{len(snapshot['files']):4d} files {sum(e['size'] for e in snapshot['files']):>12d} bytes  ok"
        except PbufDataError as exc:
            state, status = f"BAD: {exc.reason}", 1
        print(f"{path.name}  {state}")
    others = {k: v for k, v in projects(store).items() if k != pid}
    if others:
        print(f"other projects in this store (not listed, never touched): {len(others)}")
    return status


def cmd_health(args) -> int:
    from .ops import check_health
    from .project import read_config

    try:
        thresholds = read_config(Path(args.root)).get("health")
        report = check_health(args.root, args.project.tree, thresholds, cpu_interval=args.cpu_interval)
    except Exception as exc:  # the check itself could not run: status 2 for cron
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(report, indent=2))
    return 1 if report["alerts"] else 0


def cmd_certify(args) -> int:
    from .ops import certify

    _say_tree(args)
    report = certify(args.project, quick=args.health_check)
    for check in report["checks"]:
        mark = "PASS" if check["passed"] else "FAIL"
        details = check["details"] if isinstance(check["details"], str) else json.dumps(check["details"])
        print(f"[{mark}] {check['check']}: {details}")
    print(f"certification_status: {report['certification_status']} (report: {report['report_file']})")
    return 0 if report["certification_status"] == "CERTIFIED" else 1


def cmd_trends(args) -> int:
    from .logs import processing_trends

    problems: list[str] = []
    trends = processing_trends(Path(args.root) / args.project.tree.logs, problems)
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
    from .api import run_workflow
    from .listfile import read_names

    names = list(args.datasets)
    if args.from_file:
        names += read_names(args.from_file)
    if not names:
        print("ERROR: no dataset named", file=sys.stderr)
        return 2
    _say_tree(args)
    known = sorted(args.project.registry)
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = "; ".join(f"'{name}'{suggest(name, known)}" for name in unknown)
        print(f"ERROR: unknown dataset {listed}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    config = args.project.overrides()
    forcerun = {args.project.tree.receipt(name) for name in names}
    print("equivalent: snakemake --cores {} {}--forcerun {}".format(args.cores, _config_flag(config), " ".join(sorted(forcerun))))
    try:
        run_workflow(args.root, {"all"}, cores=args.cores, config=config, forcerun=forcerun)
    except Exception as exc:
        print(f"ERROR: reprocessing failed: {exc} (see {args.project.tree.logs}/errors.log)", file=sys.stderr)
        return 1
    return 0


def cmd_resume(args) -> int:
    """After a crash: remove a stale lock (only if no Snakemake runs here), then finish the run."""
    from .api import run_workflow, running_snakemake
    from .restore import finish_interrupted_restore

    root = Path(args.root)
    pids = running_snakemake(root)
    if pids:
        print(f"ERROR: a run is in progress here (pid {', '.join(map(str, pids))}); not touching its lock", file=sys.stderr)
        return 1
    _say_tree(args)
    for name in finish_interrupted_restore(root, args.project.tree):  # before the run: it must not see a mixed tree
        print(f"finished the interrupted restore of {name}")
    config = args.project.overrides()
    if any((root / ".snakemake" / "locks").glob("*")):
        print("stale lock found (no Snakemake process runs here): unlocking")
        run_workflow(root, {"all"}, config=config, unlock=True)
    print(f"equivalent: snakemake --unlock && snakemake --cores {args.cores} --rerun-incomplete {_config_flag(config)}".rstrip())
    try:
        run_workflow(root, {"all"}, cores=args.cores, config=config)
    except Exception as exc:
        print(f"ERROR: the resumed run failed: {exc} (see {args.project.tree.logs}/errors.log)", file=sys.stderr)
        return 1
    return 0


def cmd_status(args) -> int:
    from .status import UP_TO_DATE, workflow_status

    if not args.json:
        _say_tree(args)
    report = workflow_status(args.project)
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


def _config_flag(config: dict) -> str:
    return ("--config " + " ".join(f"{k}={v}" for k, v in config.items()) + " ") if config else ""


def cmd_prune(args) -> int:
    """Outputs of datasets the active registry no longer defines: listed (dry run) or removed (--apply)."""
    from .prune import prune_tree

    _say_tree(args)
    project = args.project
    removed = prune_tree(project.root, project.tree, set(project.datasets) | set(project.combinations), apply=args.apply)
    for name, paths in removed.items():
        print(f"{name}: {len(paths)} files" + ("" if args.apply else " (would be removed)"))
        for path in paths:
            print(f"    {path}")
    total = sum(map(len, removed.values()))
    if not removed:
        print("nothing to prune: every dataset with outputs here is registered")
    elif args.apply:
        print(f"removed {total} files of {len(removed)} unregistered datasets; manifest and summary rebuilt")
    else:
        print(f"dry run: {total} files of {len(removed)} unregistered datasets; `pbuf-data prune --apply` removes them")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbuf-data", description="PBUF data preparation: operations")
    parser.add_argument("--root", help="project folder (default: the one containing the current folder)")
    tree = argparse.ArgumentParser(add_help=False)  # every command works on one corpus's result tree
    tree.add_argument("--corpus", help="the corpus whose result tree (results/<corpus>/) to use (default: config corpus, "
                                       "else 'real' with --raw-dir or a configured raw_dir, 'mock' without)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, help, raw_dir=None):
        p = sub.add_parser(name, help=help, parents=[tree])
        p.add_argument("--raw-dir", help=raw_dir or "as --config raw_dir=... (selects the real corpus)")
        return p

    p = command("verify", "recompute every recorded checksum; report missing, extra, corrupted files",
                "also check the registry's raw files there against their pins (and use the real corpus)")
    p.add_argument("--backup-dir", help=f"backup folder (default: config backup.dir or {DEFAULT_BACKUP_DIR})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_verify)

    p = command("restore", "check a snapshot of this result tree fully, swap it in, verify the result")
    p.add_argument("snapshot", nargs="?", help="snapshot name (default: the tree's newest; see pbuf-data backups)")
    p.add_argument("--backup-dir")
    p.add_argument("--with-config", action="store_true", help="also restore config/ (registries, config.yaml)")
    p.add_argument("--project", dest="project_id", help="after losing the result tree: the project id whose snapshots are its own")
    p.set_defaults(func=cmd_restore)

    p = command("backups", "list this result tree's snapshots and check each against its checksums")
    p.add_argument("--backup-dir")
    p.set_defaults(func=cmd_backups)

    p = command("health", "psutil health report (JSON); exit 0 healthy, 1 alerts, 2 error")
    p.add_argument("--cpu-interval", type=float, default=1.0, help="seconds over which CPU use is measured")
    p.set_defaults(func=cmd_health)

    p = command("certify", "system certification: run every check, write <tree>/logs/certification_report_<time>.json",
                "raw folder to check against the pins (default: config raw_dir)")
    p.add_argument("--health-check", action="store_true", help="quick mode: configuration and health only")
    p.set_defaults(func=cmd_certify)

    p = command("trends", "processing time and memory per dataset over all processing summaries")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trends)

    p = command("reprocess", "rederive the given datasets and everything downstream")
    p.add_argument("datasets", nargs="*")
    p.add_argument("--from-file", help="file with one dataset name per line")
    p.add_argument("--cores", type=int, default=1)
    p.set_defaults(func=cmd_reprocess)

    p = command("status", "per dataset: up to date, or why it would be reprocessed",
                "as --config raw_dir=... (default: config raw_dir; empty = data/raw if it holds releases, else mock)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = command("resume", "after a crash: clear a stale lock and finish the interrupted run")
    p.add_argument("--cores", type=int, default=1)
    p.set_defaults(func=cmd_resume)

    p = command("prune", "list (dry run) or remove (--apply) the outputs of datasets no longer registered")
    p.add_argument("--apply", action="store_true", help="remove them, then rebuild the manifest and the summary")
    p.set_defaults(func=cmd_prune)
    return parser


# commands that must work with a broken configuration (they only read what was recorded)
LENIENT = {"verify", "restore", "backups", "health", "trends", "certify"}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.project = Project.open(args.root, raw_dir=args.raw_dir, corpus=args.corpus, lenient=args.command in LENIENT)
        args.root = str(args.project.root)
        return args.func(args)
    except PbufDataError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`pbuf-data status | head`): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a read-only or full disk, a file in the way: one line naming the file
        print(f"ERROR: {'' if exc.filename is None else f'{exc.filename}: '}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
