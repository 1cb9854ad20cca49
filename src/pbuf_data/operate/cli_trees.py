"""The result trees a ``pbuf-data`` command works on, and how it says so: one it was told, every tree present
(reading commands), or the only one (writing commands; several: refused with their list). Exit statuses."""

from __future__ import annotations

import sys

from ..core import layout
from ..core.errors import PbufDataError
from .project import Project, read_built_from

OK, PROBLEM, CANNOT_RUN = 0, 1, 2
# commands that must work with a broken configuration (they only read what was recorded)
LENIENT = {"verify", "restore", "backups", "health", "trends", "certify", "stop"}


class CannotRun(PbufDataError):
    """The command could not run (exit 2): usage, no project, no such tree, another writer at work."""

DEFAULT_BACKUP_DIR = layout.BACKUPS


def _backup_dir(args) -> str:
    backup = args.project.config.get("backup")
    return args.backup_dir or (backup.get("dir") if isinstance(backup, dict) else None) or DEFAULT_BACKUP_DIR


def _say_tree(args, project=None, *, file=sys.stdout) -> None:
    """The first line of a command: which corpus and result tree it works on."""
    project = project or args.project
    note = ""
    if not (project.root / project.tree.base).is_dir():
        note = f" (no results yet{project.missing_tree_hint()})"
    print(f"{project.describe()}{note}", file=file)


def _told(args) -> bool:
    return bool(args.corpus or args.raw_dir)


def _each_tree(args) -> list[Project]:
    """The trees a reading command works on: the one it was told, else every tree present (else the configured)."""
    present = layout.trees(args.root)
    if _told(args) or not present:
        return [args.project]
    return [Project.for_tree(args.root, t.corpus, lenient=args.command in LENIENT) for t in present]


def _one_tree(args) -> Project:
    """The tree a command that writes or removes works on: the one it was told, the only one present, or the
    configured one when it is present; several others: refused with their list (nothing guessed)."""
    present = layout.trees(args.root)
    if _told(args) or not present or present == [args.project.tree]:
        return args.project
    listing = "; ".join(f"{t.corpus} ({_source(args.root, t.corpus)})" for t in present)
    raise CannotRun(f"{args.command}: this project has several result trees: {listing}; say which with --corpus NAME")


def _source(root, corpus) -> str:
    recorded = read_built_from(root, corpus)
    if not recorded:
        return "no record of its raw folder"
    return "mock surveys" if recorded.get("mock") else f"raw folder {recorded.get('raw_dir')}"


def _check_tree(project: Project) -> None:
    """A write refused into a tree built from another registry or corpus (a broken configuration: not checked)."""
    try:
        project.check_tree()
    except (KeyError, TypeError):  # read leniently: no registry names to compare
        return


