"""The one verification of a project, used by ``pbuf-data verify``, certification and restore.

Parts, each a :class:`~pbuf_data.core.integrity.VerifyReport` kept under its name in
the merged report: ``published`` (the manifest's files, files it does not list,
an interrupted restore), ``other files`` (figures, staged files and the backup
record against their sums, :mod:`pbuf_data.publish.sidecars`, and the files no sums
cover), ``backups`` (this project's snapshots and their
blobs), ``raw`` (raw files against their registry pins).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..core import layout
from ..core.errors import PbufDataError
from ..core.integrity import VerifyReport, verify_tree
from ..read.raw import verify_raw
from .backup import (RECORD, blob_digest, blob_path, check_backup_dir, load_snapshot, project_id, snapshot_files,
                     snapshot_record, snapshot_sidecars)
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


def verify_store(root: Path, tree: layout.Tree, backup_dir: str | Path, report: VerifyReport) -> None:
    """Check this project's snapshots against their sidecars and its record, and every blob they reference."""
    try:
        _verify_store(root, tree, check_backup_dir(root, backup_dir), report)
    except PbufDataError as exc:  # an unreadable identity, record or sidecar
        report.problems.append(str(exc))


def _verify_store(root: Path, tree: layout.Tree, store: Path, report: VerifyReport) -> None:
    pid = project_id(root, tree)
    if pid is None:
        return
    folder = store / "snapshots" / pid
    present = {p.name for p in snapshot_files(store, pid)}
    if (root / tree.project / RECORD).exists():
        record = snapshot_record(root, tree)
    else:
        record = snapshot_sidecars(store, pid)
        if present:
            report.problems.append(f"{tree.project}/{RECORD} (this project's record of its snapshots) is missing: snapshots are checked "
                                   f"against their sidecars only; `pbuf-data restore --project {pid}` rebuilds it from them (and restores)")
    for name in sorted(set(record) - present):
        report.checked += 1
        report.missing.append(str(folder / name))
    blobs: dict[str, int] = {}
    for name in sorted(present):
        if name not in record:
            report.notes.append(f"{folder / name}: unconfirmed snapshot (an interrupted backup, or not written by this "
                                "project); never restored, removed by the next backup")
            continue
        report.checked += 1
        try:
            snapshot = load_snapshot(store, root, tree, pid, name)
        except PbufDataError as exc:
            if exc.check == "sha256":
                actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
                report.corrupted.append((str(folder / name), record[name], actual))
            else:
                report.problems.append(str(exc))
            continue
        for entry in snapshot["files"]:
            blobs[entry["sha256"]] = entry["size"]
    for sha, size in sorted(blobs.items()):
        report.checked += 1
        blob = blob_path(store, sha)
        if not blob.is_file():
            report.missing.append(str(blob))
        elif (actual := blob_digest(blob, size)) != sha:
            report.corrupted.append((str(blob), sha, actual or "undecodable or of the wrong size"))
