"""Command line: ``pbuf-data <command>`` (also ``python -m pbuf_data``).

Commands that operate on the project take ``--root`` (default: the current
folder). Exit status: 0 fine, 1 a problem was found or refused, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import PbufDataError

DEFAULT_BACKUP_DIR = "data/backups"


def _config(root: Path) -> dict:
    import yaml

    path = root / "config" / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _backup_dir(args) -> str:
    return args.backup_dir or _config(Path(args.root)).get("backup", {}).get("dir", DEFAULT_BACKUP_DIR)


def cmd_verify(args) -> int:
    from .integrity import verify_tree

    report = verify_tree(args.root, backup_dir=_backup_dir(args))
    if args.raw_dir:
        from .raw import verify_raw

        verify_raw(Path(args.root), args.raw_dir, report)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_restore(args) -> int:
    from .backup import restore
    from .integrity import verify_tree

    result = restore(args.root, _backup_dir(args), args.archive, with_config=args.with_config)
    print(f"restored {result['files']} files from {result['archive']} into {', '.join(result['restored'])}")
    report = verify_tree(args.root)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_backups(args) -> int:
    from .backup import list_backups, verify_archive

    status = 0
    for archive in list_backups(Path(args.root) / _backup_dir(args)):
        try:
            verify_archive(archive)
            state = "ok"
        except PbufDataError as exc:
            state, status = f"BAD: {exc.reason}", 1
        print(f"{archive.name}  {archive.stat().st_size:>12d} bytes  {state}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbuf-data", description="PBUF data preparation: operations")
    parser.add_argument("--root", default=".", help="project folder (default: current folder)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="recompute every recorded checksum; report missing, extra, corrupted files")
    p.add_argument("--raw-dir", help="also check the registry's raw files there against their pins")
    p.add_argument("--backup-dir", help=f"backup folder (default: config backup.dir or {DEFAULT_BACKUP_DIR})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("restore", help="verify a backup archive, restore it atomically, verify the result")
    p.add_argument("archive", nargs="?", help="archive name or path (default: the newest)")
    p.add_argument("--backup-dir")
    p.add_argument("--with-config", action="store_true", help="also restore config/ (registries, config.yaml)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("backups", help="list backup archives and check each against its checksum")
    p.add_argument("--backup-dir")
    p.set_defaults(func=cmd_backups)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PbufDataError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
