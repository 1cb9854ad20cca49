"""Outputs of datasets that left the registry: found per result tree, listed, and removed on request.

A dataset (or combination) removed from the registry or from config leaves its
published files, reports, exports, receipts and figures behind; the manifest
still lists them and verify still checks them. :func:`prune_tree` finds them
by name in one result tree and, with ``apply``, removes them and rebuilds the
tree's manifest and validation summary, so that verify stays true. Job logs
and the audit trail are history and are kept; backups keep their snapshots.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from . import layout

SUMMARY = "summary"  # the validation summary's reserved name


def outputs(root: Path, tree: layout.Tree) -> dict[str, list[str]]:
    """Every dataset with outputs in the tree: name -> its files (relative to the project root)."""
    root = Path(root)
    found: dict[str, list[str]] = {}

    def add(name, path):
        found.setdefault(name, []).append(str(path.relative_to(root)))

    for folder, pattern in (
        (tree.derived, r"(?P<name>[a-z][a-z0-9_]*)\.(json|npz)"),
        (f"{tree.derived}/{layout.VERSIONS}", r"(?P<name>[a-z][a-z0-9_]*)-[0-9a-f]{16}\.npz"),
        (tree.validation, r"(?P<name>[a-z][a-z0-9_]*)\.(json|txt)"),
        (tree.state, r"(?P<name>[a-z][a-z0-9_]*)(\.exports)?\.json"),
        (tree.staging, r"(?P<name>[a-z][a-z0-9_]*)\.(json|npz)"),
        (tree.plots, r"(?P<name>[a-z][a-z0-9_]*)_[a-z0-9]+\.[a-z]+"),  # figure names hold no '_'
    ):
        for path in sorted((root / folder).glob("*")):
            match = re.fullmatch(pattern, path.name)
            if match and path.is_file() and match["name"] != SUMMARY:
                add(match["name"], path)
    for path in sorted((root / tree.exports).glob("*")):  # <name>.<suffixes>: the name ends at the first dot
        name = path.name.split(".", 1)[0]
        if path.is_file() and re.fullmatch(r"[a-z][a-z0-9_]*", name):
            add(name, path)
    return found


def prune_tree(root: str | Path, tree: layout.Tree, registered: set[str], *, apply: bool = False) -> dict[str, list[str]]:
    """The outputs of datasets not in ``registered`` (name -> files); with ``apply`` they are removed, then the
    manifest and the summary of the tree are rebuilt."""
    from .steps import manifest, summarize_validation

    root = Path(root)
    stale = {name: files for name, files in outputs(root, tree).items() if name not in registered}
    if apply and stale:
        for files in stale.values():
            for rel in files:
                (root / rel).unlink(missing_ok=True)
        kept = sorted(name for name in outputs(root, tree) if name in registered)
        with contextlib.chdir(root):  # the steps work on paths relative to the project root, as the jobs do
            summarize_validation(tree, kept)
            manifest(tree)
    return stale
