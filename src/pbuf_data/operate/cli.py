"""Command line: ``pbuf-data <command>`` (also ``python -m pbuf_data``).

Commands work from anywhere inside the project (the folder with Snakefile and
config/config.yaml is found upwards) or take ``--root``; outside a project they
refuse. The options ``--root``, ``--corpus`` and ``--raw-dir`` go before or after
the command. A command works on one corpus's result tree (``results/<corpus>/``):
the one ``--corpus NAME`` or ``--raw-dir`` names; not told, ``verify`` and
``status`` work on every tree present, ``restore`` and ``prune`` refuse with the
list of trees when there are several, the others use the configured corpus. The
first line it prints names the tree(s).
Exit status: 0 fine, 1 a problem was found (or a write refused to protect data),
2 the command could not run (usage, no project, no such tree, another writer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import __version__
from .cli_trees import (CANNOT_RUN, DEFAULT_BACKUP_DIR, LENIENT, OK, PROBLEM, CannotRun, _backup_dir, _check_tree,
                        _each_tree, _one_tree, _say_tree, _told)
from ..core.errors import PbufDataError, suggest
from .project import Project, read_built_from

def cmd_verify(args) -> int:
    from ..publish.verify import verify_project

    projects = _each_tree(args)
    if not args.json and len(projects) > 1:
        print(f"every result tree present: {', '.join(p.corpus for p in projects)}")
    reports = {}
    for project in projects:
        if not args.json:
            _say_tree(args, project)
        report = verify_project(args.root, project.tree, backup_dir=_backup_dir(args), raw_dir=args.raw_dir)
        reports[project.corpus] = report
        if not args.json:
            print("\n".join(report.lines()))
    if args.json:
        shown = {c: r.as_dict() for c, r in reports.items()}
        print(json.dumps(shown[projects[0].corpus] if _told(args) else {"trees": shown}, indent=2))
    return OK if all(r.ok for r in reports.values()) else PROBLEM


def cmd_restore(args) -> int:
    from ..core.logs import audit_operation
    from ..publish.restore import restore
    from ..publish.verify import verify_project

    project = args.project = _one_tree(args)
    _check_tree(project)
    _say_tree(args)
    backup_dir = _backup_dir(args)
    result = restore(args.root, project.tree, backup_dir, args.snapshot, with_config=args.with_config,
                     project=args.project_id)
    if "finished" in result:
        print(f"finished the interrupted restore of {', '.join(result['finished'])} (run restore again for another snapshot)")
    else:
        print(f"restored {result['files']} files from {result['snapshot']} into {', '.join(result['restored'])}; "
              f"checked against {result['trusted']}; the swap is resumable: if interrupted, `pbuf-data restore` finishes it")
        if result["kept"]:
            print(f"kept {len(result['kept'])} files the workflow did not write (not in the snapshot), moved to "
                  f"{result['kept_in']}/: {', '.join(result['kept'])}")
    audit_operation(args.root / project.tree.logs, "restore", {k: v for k, v in result.items() if k != "kept"}
                    | {"with_config": args.with_config, "kept": result.get("kept", [])})
    report = verify_project(args.root, project.tree, backup_dir=backup_dir)
    print("\n".join(report.lines()))
    return OK if report.ok else PROBLEM


def cmd_backups(args) -> int:
    from ..publish.backup import check_backup_dir, list_snapshots, load_snapshot, project_id, projects

    if args.move_to:
        from ..publish.backup_move import move_store

        moved = move_store(args.root, _backup_dir(args), args.move_to)
        print(f"moved the snapshots of {', '.join(f'{c} ({n})' for c, n in moved.items()) or 'no tree'} to "
              f"{args.move_to}; config backup.dir is now {args.move_to}")
        return OK
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
        return CANNOT_RUN
    print(json.dumps(report, indent=2))
    return PROBLEM if report["alerts"] else OK


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
    from ..core.logs import processing_trends

    if not (Path(args.root) / args.project.tree.base).is_dir():
        raise CannotRun(f"no result tree {args.project.tree.base}/{args.project.missing_tree_hint()}")
    if not args.json:
        _say_tree(args)
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
    from ..read.listfile import read_names
    from .api import run_workflow

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
    _check_tree(args.project)
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
    """After a crash: finish an interrupted restore, remove Snakemake's stale lock (stale: the project's writer
    lock is free, so no run holds it), then finish the run."""
    from ..publish import writer
    from ..publish.restore import finish_interrupted_restore
    from .api import run_workflow

    root = Path(args.root)
    _check_tree(args.project)
    _say_tree(args)
    with writer.writing(root, "pbuf-data resume"):
        finished = finish_interrupted_restore(root, args.project.tree)  # before the run: no mixed tree
        if finished:
            print(f"finished the interrupted restore of {', '.join(finished)}")
        config = args.project.overrides()
        if any((root / ".snakemake" / "locks").glob("*")):
            print("stale lock found (Snakemake's; no run holds this project's writer lock): unlocking")
            run_workflow(root, {"all"}, config=config, unlock=True)
        print(f"equivalent: snakemake --unlock && snakemake --cores {args.cores} --rerun-incomplete {_config_flag(config)}".rstrip())
        try:
            run_workflow(root, {"all"}, cores=args.cores, config=config)
        except Exception as exc:
            print(f"ERROR: the resumed run failed: {exc} (see {args.project.tree.logs}/errors.log)", file=sys.stderr)
            return PROBLEM
    return OK


def cmd_status(args) -> int:
    from ..publish import writer
    from .status import UP_TO_DATE, workflow_status

    projects = _each_tree(args)
    running = writer.holder(args.root)
    reports = {}
    for project in projects:
        report = reports[project.corpus] = workflow_status(project)
        if args.json:
            continue
        _say_tree(args, project)
        for name, reasons in report.items():
            print(f"{name:28s} {UP_TO_DATE if not reasons else 'would be reprocessed:'}")
            for reason in reasons:
                print(f"    - {reason}")
        stale = sum(bool(r) for r in report.values())
        print(f"{len(report) - stale} of {len(report)} datasets up to date; job-level view: snakemake -n")
    if args.json:
        print(json.dumps(reports[projects[0].corpus] if _told(args) else {"trees": reports,
                                                                         "running": running}, indent=2))
    elif running:
        print(f"a run is in progress in this project: {writer.describe(running)}; `pbuf-data stop` stops it")
    return OK


def cmd_stop(args) -> int:
    """Stop this project's run (the holder of its writer lock), and no other process."""
    import os
    import signal
    import socket
    import time

    from ..publish import writer

    info = writer.holder(args.root)
    if not info:
        print("no run in progress in this project")
        return OK
    if info.get("host") not in (None, socket.gethostname()) or not isinstance(info.get("pid"), int):
        raise CannotRun(f"the run in progress ({writer.describe(info)}) is on host {info.get('host')}: stop it there")
    print(f"stopping {writer.describe(info)}")
    os.kill(info["pid"], signal.SIGTERM)  # Snakemake cancels its jobs and exits; outputs are written atomically
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not writer.holder(args.root):
            print("stopped; `pbuf-data resume` finishes the run")
            return OK
        time.sleep(0.2)
    print(f"ERROR: pid {info['pid']} still runs after {args.timeout:g} s", file=sys.stderr)
    return PROBLEM


def _config_flag(config: dict) -> str:
    return ("--config " + " ".join(f"{k}={v}" for k, v in config.items()) + " ") if config else ""


def cmd_prune(args) -> int:
    """Outputs of datasets the tree's own registry no longer defines: listed (dry run) or removed (--apply)."""
    from ..core.logs import audit_operation
    from ..publish import writer
    from .prune import prune_tree

    project = args.project = _one_tree(args)
    _say_tree(args)
    if not read_built_from(project.root, project.corpus):
        raise CannotRun(f"{project.tree.base}/ has no record of the registry it was built from ({project.tree.built_from}), "
                        "so which datasets are registered is not known: nothing is listed or removed; a run of the "
                        "workflow on this tree writes the record")
    project.check_tree()
    # every dataset of the tree's registry is kept, not only a configured subset (config 'datasets')
    registered = set(project.registry) | set(project.combinations)
    with writer.writing(project.root, "pbuf-data prune" + (" --apply" if args.apply else "")):
        removed = prune_tree(project.root, project.tree, registered, apply=args.apply)
        if args.apply and removed:
            audit_operation(project.root / project.tree.logs, "prune", {"removed": removed,
                            "registry": project.registry_files})
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
    return OK


def build_parser() -> argparse.ArgumentParser:
    # --root, --corpus, --raw-dir: before or after the command (on the command they win)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help="project folder (default: the one containing the current folder)")
    common.add_argument("--corpus", help="the corpus whose result tree (results/<corpus>/) to use (default: config corpus, "
                                         "else 'real' with --raw-dir or a configured raw_dir, 'mock' without)")
    common.add_argument("--raw-dir", help="as --config raw_dir=... (selects the real corpus)")
    parser = argparse.ArgumentParser(prog="pbuf-data", parents=[common],
                                     description="PBUF data preparation: operations. Exit status: 0 fine, 1 a problem "
                                                 "found, 2 could not run.")
    parser.add_argument("--version", action="version", version=f"pbuf-data {__version__}")
    sub_common = argparse.ArgumentParser(add_help=False)
    for action in common._actions:
        sub_common.add_argument(*action.option_strings, dest=action.dest, help=action.help, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, help, raw_dir=None):
        p = sub.add_parser(name, help=help, parents=[sub_common])
        if raw_dir:
            p._option_string_actions["--raw-dir"].help = raw_dir
        return p

    p = command("verify", "recompute every recorded checksum; report missing, extra, corrupted files (every tree "
                          "present unless told one)",
                "also check the registry's raw files there against their pins (and use the real corpus)")
    p.add_argument("--backup-dir", help=f"backup folder (default: config backup.dir or {DEFAULT_BACKUP_DIR})")
    p.add_argument("--json", action="store_true", help="machine-readable output (only JSON on stdout)")
    p.set_defaults(func=cmd_verify)

    p = command("restore", "check a snapshot of this result tree fully, swap it in, verify the result")
    p.add_argument("snapshot", nargs="?", help="snapshot name (default: the tree's newest; see pbuf-data backups)")
    p.add_argument("--backup-dir")
    p.add_argument("--with-config", action="store_true", help="also restore config/ (registries, config.yaml)")
    p.add_argument("--project", dest="project_id", help="after losing the result tree: the project id whose snapshots are its own")
    p.set_defaults(func=cmd_restore)

    p = command("backups", "list this result tree's snapshots and check each against its checksums")
    p.add_argument("--backup-dir")
    p.add_argument("--move-to", metavar="DIR", help="move this tree's snapshots to another store and point "
                                                    "config backup.dir at it (verify stays true)")
    p.set_defaults(func=cmd_backups)

    p = command("health", "psutil health report (JSON); exit 0 healthy, 1 alerts, 2 error")
    p.add_argument("--cpu-interval", type=float, default=1.0, help="seconds over which this moment's CPU use is measured "
                                                                   "(reported; alerts come from the load average)")
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

    p = command("status", "per dataset: up to date, or why it would be reprocessed (every tree present unless told one)",
                "as --config raw_dir=... (default: config raw_dir; empty = data/raw if it holds releases, else mock)")
    p.add_argument("--json", action="store_true", help="machine-readable output (only JSON on stdout)")
    p.set_defaults(func=cmd_status)

    p = command("resume", "after a crash: clear a stale lock and finish the interrupted run")
    p.add_argument("--cores", type=int, default=1)
    p.set_defaults(func=cmd_resume)

    p = command("prune", "list (dry run) or remove (--apply) the outputs of datasets no longer registered")
    p.add_argument("--apply", action="store_true", help="remove them, then rebuild the manifest and the summary")
    p.set_defaults(func=cmd_prune)

    p = command("stop", "stop this project's run in progress (and nothing else): its PID is in `pbuf-data status`")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to end")
    p.set_defaults(func=cmd_stop)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # a usage error: argparse's message, exit 2
    try:
        try:
            args.project = Project.open(args.root, raw_dir=args.raw_dir, corpus=args.corpus,
                                        lenient=args.command in LENIENT)
        except PbufDataError as exc:
            if args.command == "health":  # cron reads JSON
                print(json.dumps({"error": str(exc)}))
            else:
                print(f"ERROR: {exc}", file=sys.stderr)
            return CANNOT_RUN
        args.root = args.project.root
        return args.func(args)
    except CannotRun as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return CANNOT_RUN
    except PbufDataError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return PROBLEM
    except BrokenPipeError:  # the reader went away (`pbuf-data status | head`): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except OSError as exc:  # a file the command was given or had to read: one line, no traceback
        print(f"ERROR: {'' if exc.filename is None else f'{exc.filename}: '}{exc.strerror or exc}", file=sys.stderr)
        return CANNOT_RUN
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
