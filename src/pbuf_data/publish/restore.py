"""Restore a snapshot of this project: everything is checked before anything in place changes.

1. The snapshot must be this project's and match both its sidecar and the
   project's record of the snapshots it wrote (a consistent but foreign or
   altered snapshot is refused).
2. Every member must be a regular file (no links, devices or FIFOs) with a
   relative, normalized path under a folder a restore may write (the published
   folders, the manifest's folder, ``config/``), listed exactly once.
3. Members are decompressed into a fresh ``results/<corpus>/.restore-*`` folder, each
   checked against its sha256 and size; the snapshot's manifest must list
   exactly the data members, with the same hashes.
4. Only then is a journal written, and the folders are swapped in by rename.
   The swap is resumable: after an interruption between renames, the next
   ``pbuf-data restore`` or ``pbuf-data resume`` re-checks the staged files and
   finishes it (verify says so meanwhile; a workflow run refuses to start).
   Leftovers of a restore interrupted before its journal
   changed nothing and are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import zstandard

from ..core.atomic import write_text
from .backup import (
    RECORD,
    adopt_project,
    blob_path,
    check_backup_dir,
    list_snapshots,
    load_snapshot,
    locked,
    project_id,
    projects,
)
from ..core import layout
from ..core.errors import PbufDataError
from ..core.integrity import CHUNK, read_manifest
from .writer import writing

STAGING_PREFIX = ".restore-"
KEPT = "restore-kept"  # in the tree: a user's files found in the folders a restore replaced
JOURNAL = "journal.json"
CONFIG_DIR = "config"
ENTRY_KEYS = {"path", "sha256", "size", "mode", "mtime_ns"}


def data_units(tree: layout.Tree) -> tuple[str, ...]:
    """The folders of a result tree a restore swaps as a whole: the published folders and the manifests."""
    return (*tree.watched, tree.manifests)


def restore(root: str | Path, tree: layout.Tree, backup_dir: str | Path, snapshot: str | None = None, *,
            with_config: bool = False, project: str | None = None) -> dict:
    """Restore ``snapshot`` (default: the tree's newest) into its result tree, or finish an interrupted restore first."""
    root = Path(root).resolve()
    store = check_backup_dir(root, backup_dir)
    base = root / tree.base
    for folder in (root / layout.RESULTS, base):
        if folder.is_symlink():
            raise PbufDataError(f"{folder.relative_to(root)}/ is a symbolic link; refusing to restore through it",
                                file=str(folder), check="regular folders only")
    base.mkdir(parents=True, exist_ok=True)
    with writing(root, "restore"), _restore_lock(base):
        finished = finish_interrupted(root, tree)
        if finished:
            return {"finished": finished}
        trust = "this project's record of its snapshots"
        if project is not None:
            adopted = adopt_project(root, tree, store, project)
            trust = f"the store's sidecars (project {project} adopted with {len(adopted)} snapshots)"
        pid = project_id(root, tree)
        if pid is None:
            others = projects(store)
            listing = "; ".join(f"{k} ({v['snapshots']} snapshots, written at {v['root']})" for k, v in others.items())
            raise PbufDataError(
                f"this project has no identity yet ({tree.project}/identity.json), so no snapshot is its own"
                + (f"; projects in this store: {listing}. If one is this project's, pass --project ID" if others else ""),
                file=str(store),
                check="project identity",
            )
        if not (root / tree.project / RECORD).exists():
            trust = "the store's sidecars only (this project's record is missing)"
        with locked(store, fcntl.LOCK_SH):
            name = _choose(store, root, tree, pid, snapshot)
            snap = load_snapshot(store, root, tree, pid, name)
            entries = check_members(snap, tree)
            staging = Path(tempfile.mkdtemp(dir=base, prefix=STAGING_PREFIX))
            try:
                for entry in entries:
                    _stage(store, staging / "new", entry)
                check_manifest(staging / "new", snap["manifest"], entries)
                units = sorted({_unit(e["path"], tree) for e in entries if with_config or not _is_config(e["path"])})
                keep = user_files(root, tree, units, {e["path"] for e in entries})
                journal = {"snapshot": name, "units": units, "files": {e["path"]: e["sha256"] for e in entries},
                           "keep": keep, "kept_in": f"{tree.base}/{KEPT}/{Path(name).stem}"}
                write_text(staging / JOURNAL, json.dumps(journal, indent=1) + "\n")  # from here on: resumable
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        _roll_forward(root, staging, journal)
    return {"snapshot": name, "restored": units, "files": len(entries), "trusted": trust, "kept": keep,
            "kept_in": journal["kept_in"]}


def user_files(root: Path, tree: layout.Tree, units: list[str], members: set[str]) -> list[str]:
    """Files in the folders a restore swaps that the workflow did not write (not in the tree's manifest) and
    the snapshot does not bring back: a user's files, moved aside by the restore and named, never deleted."""
    try:
        listed = set(read_manifest(root / tree.derived_manifest))
    except (OSError, ValueError, PbufDataError):
        listed = set()
    listed.add(tree.derived_manifest)
    found = []
    for unit in units:
        folder = root / unit
        if _is_config(unit) or folder.is_symlink() or not folder.is_dir():
            continue  # a link planted in place of a folder is replaced, never followed
        for top, dirs, files in os.walk(folder):  # links to folders inside: listed, not followed
            for entry in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                rel = os.path.relpath(os.path.join(top, entry), root)
                if rel not in listed and rel not in members:
                    found.append(rel)
    return sorted(found)


def finish_interrupted(root: Path, tree: layout.Tree) -> list[str]:
    """Finish every journaled restore of the tree and remove the leftovers of unjournaled ones."""
    finished = []
    for staging in sorted((root / tree.base).glob(f"{STAGING_PREFIX}*")):
        journal = staging / JOURNAL
        if staging.is_dir() and not staging.is_symlink() and journal.is_file():
            try:
                data = json.loads(journal.read_text())
                units, files = list(data["units"]), dict(data["files"])
            except (ValueError, KeyError, TypeError) as exc:
                raise PbufDataError(f"unreadable journal of an interrupted restore: {exc}", file=str(journal), check="restore journal") from None
            _roll_forward(root, staging, data | {"units": units, "files": files})
            finished.append(data["snapshot"])
        elif staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging)
        else:
            staging.unlink()
    return finished


def finish_interrupted_restore(root: str | Path, tree: layout.Tree) -> list[str]:
    """Finish a restore interrupted in the tree (under the restore lock), e.g. before a run resumes: the
    snapshots finished (none if no swap was under way; leftovers of unjournaled restores are removed)."""
    root = Path(root).resolve()
    base = root / tree.base
    if not base.is_dir() or base.is_symlink() or not interrupted(root, tree):
        return []
    with _restore_lock(base):
        return finish_interrupted(root, tree)


def interrupted(root: Path, tree: layout.Tree) -> list[tuple[str, bool]]:
    """The tree's ``.restore-*`` folders: (path, True if a swap was under way — the tree may be mixed)."""
    return [(f"{tree.base}/{p.name}", (p / JOURNAL).is_file()) for p in sorted((root / tree.base).glob(f"{STAGING_PREFIX}*"))]


def check_members(snapshot: dict, tree: layout.Tree) -> list[dict]:
    """The snapshot's members, each checked against what a restore may write; raises on the first that may not."""
    entries, seen = [], set()
    for number, entry in enumerate(snapshot["files"], start=1):
        where = f"member {number}"
        if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
            raise _refused(f"{where}: fields {sorted(entry) if isinstance(entry, dict) else entry!r}, expected "
                           f"{sorted(ENTRY_KEYS)} (members are regular files only)")
        path, sha, size, mode = entry["path"], entry["sha256"], entry["size"], entry["mode"]
        _check_path(path, where, tree)
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise _refused(f"{where} {path!r}: sha256 {sha!r} is not 64 hex digits")
        for key, value in (("size", size), ("mtime_ns", entry["mtime_ns"])):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _refused(f"{where} {path!r}: {key} {value!r} is not a non-negative integer")
        try:
            bits = int(mode, 8)
        except (TypeError, ValueError):
            raise _refused(f"{where} {path!r}: mode {mode!r} is not octal") from None
        if stat.S_IFMT(bits) not in (0, stat.S_IFREG):
            raise _refused(f"{where} {path!r}: mode {mode} is not a regular file (link, device, FIFO or folder)")
        if path in seen:
            raise _refused(f"{where} {path!r}: listed twice")
        seen.add(path)
        entries.append({"path": path, "sha256": sha, "size": size, "mode": (stat.S_IMODE(bits) & 0o755) | 0o600,
                        "mtime_ns": entry["mtime_ns"]})
    for path in seen:  # a file may not also be a folder of another member
        for parent in PurePosixPath(path).parents:
            if str(parent) in seen:
                raise _refused(f"member {path!r} lies inside member {str(parent)!r}")
    manifest = snapshot.get("manifest")
    if manifest != tree.derived_manifest or manifest not in seen:
        raise _refused(f"manifest {snapshot.get('manifest')!r} is not the manifest of {tree.base} among the snapshot's members")
    return entries


def check_manifest(staged: Path, manifest: str, entries: list[dict]) -> None:
    """The staged manifest must list exactly the data members (nothing unlisted, nothing absent), same hashes."""
    listed = read_manifest(staged / manifest)
    members = {e["path"]: e["sha256"] for e in entries if e["path"] != manifest and not _is_config(e["path"])}
    unlisted = sorted(set(members) - set(listed))
    absent = sorted(set(listed) - set(members))
    differ = sorted(p for p in set(members) & set(listed) if members[p] != listed[p])
    if unlisted or absent or differ:
        raise _refused(f"snapshot and its manifest {manifest} disagree: members the manifest does not list {unlisted}, "
                       f"listed files the snapshot lacks {absent}, different sha256 {differ}")


def _check_path(path, where: str, tree: layout.Tree) -> None:
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path or path.startswith("/"):
        raise _refused(f"{where}: path {path!r} is not a relative path")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise _refused(f"{where}: path {path!r} is not normalized or leaves its folder ('..', '.', '//')")
    if _is_config(path):
        return
    units = data_units(tree)
    if not any(path.startswith(f"{folder}/") for folder in units):
        raise _refused(f"{where}: path {path!r} is outside the folders a restore writes ({', '.join(units)}, {CONFIG_DIR}/*.yaml)")


def _is_config(path: str) -> bool:
    return path.startswith(f"{CONFIG_DIR}/") and path.endswith((".yaml", ".yml"))


def _unit(path: str, tree: layout.Tree) -> str:
    """What is swapped in for a member: its published folder as a whole, or the configuration file itself."""
    if _is_config(path):
        return path
    return next(folder for folder in data_units(tree) if path.startswith(f"{folder}/"))


def _stage(store: Path, staged: Path, entry: dict) -> None:
    """Decompress one member into the staging folder, checking its size and sha256 on the way."""
    target = staged / entry["path"]
    base = os.path.realpath(staged)
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.commonpath([base, os.path.realpath(target.parent)]) != base:
        raise _refused(f"member {entry['path']!r} would be written outside the staging folder")
    blob = blob_path(store, entry["sha256"])
    digest, total = hashlib.sha256(), 0
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, entry["mode"])
        with open(blob, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as zfh, open(fd, "wb") as out:
            while chunk := zfh.read(CHUNK):
                total += len(chunk)
                if total > entry["size"]:
                    break
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(target, entry["mode"])
        os.utime(target, ns=(entry["mtime_ns"], entry["mtime_ns"]))  # as backed up: the workflow sees what it wrote
    except FileNotFoundError:
        raise _refused(f"member {entry['path']!r}: its blob is missing", file=str(blob)) from None
    except (OSError, zstandard.ZstdError) as exc:
        raise _refused(f"member {entry['path']!r}: {exc}", file=str(blob)) from None
    if total != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise PbufDataError(
            f"member {entry['path']!r} does not match the snapshot (size {total}, sha256 {digest.hexdigest()}; "
            f"expected {entry['size']}, {entry['sha256']}); nothing was changed",
            file=str(blob),
            check="member sha256",
        )


def _roll_forward(root: Path, staging: Path, journal: dict) -> None:
    """Swap each staged unit into place (idempotent: after an interruption, run again), then drop the old copies."""
    for rel, expected in journal["files"].items():  # the staged copy is what the journal recorded
        staged = staging / "new" / rel
        if staged.is_file() and hashlib.sha256(staged.read_bytes()).hexdigest() != expected:
            raise PbufDataError("staged file changed since it was verified; not finishing this restore",
                                file=str(staged), check="member sha256")
    aside = staging / "old"
    aside.mkdir(exist_ok=True)
    for unit in journal["units"]:
        new, current = staging / "new" / unit, root / unit
        if not os.path.lexists(new):
            continue  # swapped in already
        if os.path.lexists(current):
            (aside / unit).parent.mkdir(parents=True, exist_ok=True)
            os.replace(current, aside / unit)
        current.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, current)
    for rel in journal.get("keep", []):  # a user's files: kept, out of the published folders
        old, kept = aside / rel, root / journal["kept_in"] / rel
        if os.path.lexists(old):
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, kept)
    shutil.rmtree(staging)


def _choose(store: Path, root: Path, tree: layout.Tree, pid: str, snapshot: str | None) -> str:
    names = [p.name for p in list_snapshots(store, root, tree, pid)]
    if snapshot is None:
        if not names:
            raise PbufDataError(f"no snapshot of this project (id {pid}) to restore", file=str(store), check="exists")
        return names[-1]
    name = Path(snapshot).name
    return name if name.endswith(".json") else f"{name}.json"


def _refused(reason: str, file: str | None = None) -> PbufDataError:
    return PbufDataError(f"snapshot refused: {reason}; nothing was changed", file=file, check="snapshot members")


@contextmanager
def _restore_lock(base: Path):
    """One restore at a time per result tree (a second one would take the first one's staging for a leftover);
    the lock is held on the tree's folder itself, so it leaves no file behind."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PbufDataError("another restore is running in this result tree", file=str(base), check="lock") from None
        yield
    finally:
        os.close(fd)
