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
from pathlib import Path

from ..core import layout

SUMMARY = "summary"  # the validation summary's reserved name


def outputs(root: Path, tree: layout.Tree) -> dict[str, list[str]]:
    """Every dataset with outputs in the tree: name -> its files (relative to the project root)."""
    root = Path(root)
    found: dict[str, list[str]] = {}
    folders = (tree.derived, f"{tree.derived}/{layout.VERSIONS}", tree.validation, tree.state, tree.staging, tree.plots,
               tree.exports)
    for folder in folders:
        for path in sorted((root / folder).glob("*")):
            rel = str(path.relative_to(root))
            name = tree.dataset_of(rel)
            if name and name != SUMMARY and path.is_file():
                found.setdefault(name, []).append(rel)
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
