"""Moving the backup store of a project (``pbuf-data backups --move-to DIR``) so that ``verify`` stays true.

Every result tree of the project keeps its snapshots in the store config ``backup.dir`` names. The move copies
each tree's snapshots, sidecars and the blobs they reference into the new store, each blob checked against its
sha256 on the way, then points ``backup.dir`` in ``config/config.yaml`` at it, and only then removes this
project's snapshots from the old store (other projects sharing it are not touched) and the blobs no snapshot
there references any more. Interrupted before the configuration changed, the old store is still whole;
after, the new one is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..core import layout
from ..core.atomic import atomic_file, write_text
from ..core.errors import PbufDataError
from .backup import _collect_garbage, snapshot_files, blob_digest, blob_path, check_backup_dir, load_snapshot
from .backup import list_snapshots, locked, project_id
from .writer import writing

CONFIG = "config/config.yaml"
DIR_LINE = re.compile(r"^(backup:\s*\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+dir:[ \t]*)([^#\n]*?)([ \t]*(?:#.*)?)$", re.M)


def move_store(root: str | Path, old: str | Path, new: str) -> dict:
    """Move every tree's snapshots of this project from store ``old`` to ``new`` (relative to the project or
    absolute) and set ``backup.dir: new``; {corpus: number of snapshots moved}."""
    root = Path(root).resolve()
    source, target = check_backup_dir(root, old), check_backup_dir(root, new)
    if source == target:
        raise PbufDataError(f"{new} is the store in use already", file=str(target), check="backup.dir")
    config = (root / CONFIG).read_text()
    if not DIR_LINE.search(config):
        raise PbufDataError("no 'dir:' line under 'backup:' to point at the new store; set backup.dir by hand",
                            file=str(root / CONFIG), check="backup.dir")
    moved = {}
    with writing(root, f"pbuf-data backups --move-to {new}"), locked(source), locked(target):
        owners = {}
        for tree in layout.trees(root):
            pid = project_id(root, tree)
            if pid is None:
                continue
            owners[tree.corpus] = pid
            names = [p.name for p in list_snapshots(source, root, tree, pid)]
            for name in names:
                snapshot = load_snapshot(source, root, tree, pid, name)  # checked against the tree's record
                for entry in snapshot["files"]:
                    _copy_blob(source, target, entry["sha256"], entry["size"])
                folder = target / "snapshots" / pid
                folder.mkdir(parents=True, exist_ok=True)
                for suffix in ("", ".sha256"):
                    _copy(source / "snapshots" / pid / f"{name}{suffix}", folder / f"{name}{suffix}")
            moved[tree.corpus] = len(names)
        text = DIR_LINE.sub(lambda m: f"{m[1]}{new}{m[3]}", config, count=1)
        write_text(root / CONFIG, text)  # from here on the new store is the one in use
        for pid in set(owners.values()):
            for path in snapshot_files(source, pid):
                path.unlink(missing_ok=True)
                Path(f"{path}.sha256").unlink(missing_ok=True)
            shutil.rmtree(source / "snapshots" / pid, ignore_errors=True)
        _collect_garbage(source)
    return moved


def _copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fh, atomic_file(dst) as out:
        shutil.copyfileobj(fh, out)


def _copy_blob(source: Path, target: Path, sha: str, size: int) -> None:
    dst = blob_path(target, sha)
    if dst.is_file() and blob_digest(dst, size) == sha:
        return  # the new store holds it already (shared with another project)
    src = blob_path(source, sha)
    if blob_digest(src, size) != sha:
        raise PbufDataError("blob missing or corrupted in the old store: the store in use is unchanged (run `pbuf-data verify`)",
                            file=str(src), check="blob sha256")
    dst.parent.mkdir(parents=True, exist_ok=True)
    _copy(src, dst)
