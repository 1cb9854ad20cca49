"""Publication of a validated dataset: its staged pair of files (``.npz`` and ``.json``) put in place in a derived
folder by atomic renames, without removing anything first (:func:`publish`), and the versioned archive a published
document names (:func:`published_archive`)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..core import layout
from ..core.atomic import atomic_file
from ..core.errors import PbufDataError
from ..core.integrity import HashingWriter, known_sha256
from ..model.dataset import VERSIONED, archive_name, atomic_write, read_document, same_dataset


def published_archive(folder: str | Path, name: str) -> tuple[str, str] | None:
    """(versioned archive relative to ``folder``, its sha256) as ``<name>.json`` names them, if it names one."""
    try:
        document = read_document(Path(folder) / f"{name}.json", name)
        same_dataset(document, name, Path(folder) / f"{name}.json")
        member = archive_name(document, Path(folder) / f"{name}.json")
    except PbufDataError:
        return None
    return (member, document["npz_sha256"]) if VERSIONED.match(member) else None


def publish(npz_path: str | Path, json_path: str | Path, folder: str | Path) -> dict:
    """Publish a validated dataset (its staged pair of files) into ``folder`` without removing anything first.

    1. the archive is copied to ``.versions/<name>-<sha16>.npz`` and to a temporary file beside
       ``<name>.npz`` (both fsynced); the bytes copied must have the sha256 its document records; the
       versioned file is renamed into place;
    2. the document, now naming the versioned file, replaces ``<name>.json`` (fsynced, one rename);
    3. the copy replaces ``<name>.npz`` (one rename);
    4. versions other than the new one and the one it replaced are removed (two are kept).

    (``<name>.npz`` is a copy, not a hard link, so that tar-based backups store and check it as a file.)
    The bytes copied are hashed unless this process wrote the staged archive itself and it is unchanged since
    (:func:`pbuf_data.core.integrity.known_sha256`): the digest of its writing is trusted.
    A failure at any step (disk full, ...) raises a PbufDataError and leaves every published file as it
    was, except that after step 2 ``<name>.npz`` may still hold the previous version (the document, which
    ``load_dataset`` follows, already names the new one). Returns ``{path relative to folder: sha256}`` of
    the published files.
    """
    folder, npz_path, json_path = Path(folder), Path(npz_path), Path(json_path)
    document = read_document(json_path, npz_path.stem)
    name, sha256 = document["name"], document["npz_sha256"]
    previous = (published_archive(folder, name) or (None,))[0]
    member = layout.version(name, sha256)
    target = folder / member
    plain = folder / f".{name}.npz.{os.getpid()}.tmp"
    try:
        with open(npz_path, "rb") as src, atomic_file(target) as versioned:
            try:
                with open(plain, "wb") as copy:
                    hashing = None if known_sha256(src.fileno()) == sha256 else HashingWriter(versioned)
                    while chunk := src.read(8 << 20):
                        (hashing or versioned).write(chunk)
                        copy.write(chunk)
                    if hashing and hashing.hexdigest() != sha256:
                        raise PbufDataError(
                            f"staged archive has sha256 {hashing.hexdigest()}, its document records {sha256}: "
                            "not published", dataset=name, file=str(npz_path), check="sha256")
                    copy.flush()
                    os.fsync(copy.fileno())
            except OSError as exc:
                raise PbufDataError(f"cannot write {plain}: {exc.strerror or exc} (the published version is "
                                    "unchanged)", dataset=name, file=str(plain), check="write") from None
        _sync_folder(target.parent)

        document = dict(document, npz_file=member)
        text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"
        json_sha = atomic_write(folder / f"{name}.json", lambda fh: fh.write(text.encode()))
        _sync_folder(folder)
        try:
            os.chmod(plain, 0o644)
            os.replace(plain, folder / f"{name}.npz")
        except OSError as exc:
            raise PbufDataError(f"cannot replace {name}.npz: {exc.strerror or exc} (the document already names "
                                f"{member}; {name}.npz still holds the previous version)", dataset=name,
                                file=str(folder / f"{name}.npz"), check="write") from None
        _sync_folder(folder)
    finally:
        with contextlib.suppress(OSError):  # a read-only folder refuses even the unlink of a file never written
            plain.unlink(missing_ok=True)

    kept = {member, previous}
    for old in sorted((folder / layout.VERSIONS).glob(f"{name}-*.npz")):
        relative = f"{layout.VERSIONS}/{old.name}"
        if VERSIONED.match(relative) and relative not in kept:
            old.unlink(missing_ok=True)
    return {member: sha256, f"{name}.npz": sha256, f"{name}.json": json_sha}


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that the renames in it are on disk."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise PbufDataError(f"cannot write {folder}: {exc.strerror or exc} (the previous version, if any, is "
                            "unchanged)", file=str(folder), check="write") from None
