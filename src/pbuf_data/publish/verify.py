"""The one verification of a project, used by ``pbuf-data verify``, certification and restore.

Parts, each a :class:`~pbuf_data.core.integrity.VerifyReport` kept under its name in
the merged report: ``published`` (the manifest's files, files it does not list,
an interrupted restore), ``other files`` (figures, staged files and the backup
record against their sums, :mod:`pbuf_data.publish.sidecars`, and the files no sums
cover), ``backups`` (this project's snapshots and their
blobs), ``raw`` (raw files against their registry pins).
"""

from __future__ import annotations

from pathlib import Path

from ..core import layout
from ..core.integrity import VerifyReport, verify_tree
from ..read.raw import verify_raw
from .backup import verify_store
from .restore import interrupted
from .sidecars import verify_other_files


def verify_project(root: str | Path, tree: layout.Tree, *, backup_dir: str | Path | None = None,
                   raw_dir: str | Path | None = None, registry: str | None = None) -> VerifyReport:
    """Recompute every checksum the project recorded in a result tree; ``backup_dir``/``raw_dir`` add those parts."""
    root = Path(root)
    published = verify_tree(root, tree)
    for name, swapping in interrupted(root, tree):
        if swapping:
            published.problems.append(f"{name}: a restore was interrupted while swapping folders (the published "
                                      "folders may be mixed); `pbuf-data restore` finishes it")
        else:
            published.notes.append(f"{name}: leftover of a restore interrupted before it changed anything; "
                                   "removed by the next `pbuf-data restore`")
    parts = {"published": published, "other files": verify_other_files(root, tree)}
    if backup_dir is not None:
        parts["backups"] = VerifyReport()
        verify_store(root, tree, backup_dir, parts["backups"])
    if raw_dir is not None:
        parts["raw"] = VerifyReport()
        verify_raw(root, raw_dir, parts["raw"], **({"registry": registry} if registry else {}))
    return VerifyReport.merged(parts)
