"""Publication of a validated dataset: its staged pair of files (``.npz`` and ``.json``) put in place in a derived
folder by atomic renames, without removing anything first (:func:`publish`), and the versioned archive a published
document names (:func:`published_archive`)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path

from ..core import layout
from ..core.atomic import atomic_file
from ..core.errors import PbufDataError
from ..core.integrity import HashingWriter, known_sha256, remember_digest
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

    1. the archive is put at ``.versions/<name>-<sha16>.npz`` and copied to a temporary file beside
       ``<name>.npz`` (fsynced; or that copy made ahead, :func:`prepare_copy`); the bytes must have the sha256 its
       document records; the versioned file is renamed into place;
    2. the document, now naming the versioned file, replaces ``<name>.json`` (fsynced, one rename);
    3. the copy replaces ``<name>.npz`` (one rename);
    4. versions other than the new one and the one it replaced are removed (two are kept).

    (``<name>.npz`` is a copy, not a hard link, so that tar-based backups store and check it as a file; the
    versioned file may share its bytes with the staged archive, scratch that backups leave out.)
    When this process wrote the staged archive itself and it is unchanged since
    (:func:`pbuf_data.core.integrity.known_sha256`), the digest of its writing is trusted: the versioned file is
    a hard link to it (staging is rewritten by renames, never in place; a copy where links are refused) and
    ``<name>.npz`` an in-kernel copy (``os.copy_file_range``), the archive unchanged until both are made.
    Otherwise the bytes copied to both are hashed on the way.
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
    plain = _plain(folder, name)
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PbufDataError(f"cannot write {folder}: {exc.strerror or exc}", dataset=name, file=str(folder),
                                check="write") from None
        with open(npz_path, "rb") as src:
            if known_sha256(src.fileno()) == sha256:
                if known_sha256(plain) != sha256:  # not made ahead (prepare_copy), or changed since
                    _write_copy(plain, name, lambda copy: _copy_in_kernel(src, copy))
                if known_sha256(src.fileno()) != sha256:
                    raise _changed(name, npz_path, "changed")
                try:
                    _link_or_copy(src, npz_path, target, sha256, name)
                except OSError as exc:
                    raise PbufDataError(f"cannot write {target} from {npz_path}: {exc.strerror or exc} (the published "
                                        "version is unchanged)", dataset=name, file=str(target), check="write") from None
            else:
                with atomic_file(target) as versioned:
                    _write_copy(plain, name, lambda copy: _hashed_copy(src, versioned, copy, sha256, name, npz_path))
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
        _discard(plain)

    kept = {member, previous}
    for old in sorted((folder / layout.VERSIONS).glob(f"{name}-*.npz")):
        relative = f"{layout.VERSIONS}/{old.name}"
        if VERSIONED.match(relative) and relative not in kept:
            old.unlink(missing_ok=True)
    return {member: sha256, f"{name}.npz": sha256, f"{name}.json": json_sha}


def _plain(folder: Path, name: str) -> Path:
    """The temporary copy this process puts in place of ``<name>.npz`` (:func:`publish`)."""
    return folder / f".{name}.npz.{os.getpid()}.tmp"


def _discard(temporary: Path) -> None:
    """Remove a temporary file of this module that was not put in place, if there is one."""
    with contextlib.suppress(OSError):  # a read-only folder refuses even the unlink of a file never written
        temporary.unlink(missing_ok=True)


def prepare_copy(npz_path: str | Path, folder: str | Path) -> None:
    """Make ahead of :func:`publish` the copy of a staged archive it puts in place of ``<name>.npz`` (a hidden
    temporary file beside it, fsynced; a job makes it while it validates the dataset): an in-kernel copy of an
    archive this process wrote, unchanged since, whose digest is then trusted too; publish takes it while it is
    unchanged instead of copying again. Where it cannot be made (no digest of this process, a full disk), nothing is
    left: publish makes the copy itself, and says what stops it. A copy publish does not take (a dataset that
    failed validation or equals its published copy, a job that stopped) is removed at the end of the job's
    :func:`copy_ahead`; only a process killed meanwhile leaves it (hidden, and named after that process)."""
    import logging

    folder, npz_path = Path(folder), Path(npz_path)
    name = npz_path.stem
    plain = _plain(folder, name)
    try:
        with open(npz_path, "rb") as src:
            sha256 = known_sha256(src.fileno())
            if sha256 is None:
                return
            folder.mkdir(parents=True, exist_ok=True)
            _write_copy(plain, name, lambda copy: _copy_in_kernel(src, copy))
            if known_sha256(src.fileno()) != sha256:
                raise _changed(name, npz_path, "changed")
            remember_digest(plain, sha256)
    except (OSError, PbufDataError) as exc:
        _discard(plain)  # now, not at the end of the job: it may be what filled the disk
        logging.getLogger("pbuf_data").info("%s: no copy made ahead of publication (%s)", name, exc)


@contextlib.contextmanager
def copy_ahead(folder: str | Path, name: str):
    """A job's block in which a copy may be made ahead of publication (:func:`prepare_copy`): at its end, however
    it ends (published, refused, unchanged, an error, a bug, an interruption), a copy publish did not take is
    removed."""
    try:
        yield
    finally:
        _discard(_plain(Path(folder), name))


def _changed(name: str, staged: Path, how: str) -> PbufDataError:
    return PbufDataError(f"staged archive {how} while it was published: not published", dataset=name,
                         file=str(staged), check="unchanged while read")


def _write_copy(plain: Path, name: str, fill, mode: str = "wb") -> None:
    """A temporary copy (``mode`` "xb": a new file), written by ``fill(file)`` and fsynced."""
    try:
        with open(plain, mode) as copy:
            fill(copy)
            copy.flush()
            os.fsync(copy.fileno())
    except OSError as exc:
        raise PbufDataError(f"cannot write {plain}: {exc.strerror or exc} (the published version is unchanged)",
                            dataset=name, file=str(plain), check="write") from None


def _hashed_copy(src, versioned, copy, sha256: str, name: str, npz_path: Path) -> None:
    """The staged archive copied to both files, its bytes hashed on the way: refused unless they have ``sha256``."""
    hashing = HashingWriter(versioned)
    try:
        while chunk := src.read(8 << 20):
            hashing.write(chunk)
            copy.write(chunk)
    finally:
        hashing.close()
    digest = hashing.hexdigest()
    if digest != sha256:
        raise PbufDataError(f"staged archive has sha256 {digest}, its document records {sha256}: not published",
                            dataset=name, file=str(npz_path), check="sha256")


def _copy_in_kernel(src, out) -> None:
    """All of the open file ``src`` written to ``out`` by the kernel (``os.copy_file_range``: no pass through this
    process), or through this process where the filesystems refuse it or stop short (some return 0 before the
    end); ``out`` must then hold as many bytes as ``src``."""
    size, done = os.fstat(src.fileno()).st_size, 0
    out.flush()
    try:
        while done < size:
            copied = os.copy_file_range(src.fileno(), out.fileno(), size - done, done)
            if not copied:
                break
            done += copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
            raise
    if done < size:
        src.seek(done)
        shutil.copyfileobj(src, out, 8 << 20)
        out.flush()
    if os.fstat(out.fileno()).st_size != size:
        raise OSError(errno.EIO, f"copied {os.fstat(out.fileno()).st_size} of {size} bytes")


# os.link's errors that mean "no hard link here" (another filesystem, none supported, too many): copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def _link_or_copy(src, staged: Path, target: Path, sha256: str, name: str) -> None:
    """The versioned file: a hard link to the staged archive (``src``, open, its digest trusted) renamed into place
    (its bytes are not copied), or, where the filesystem refuses links, an in-kernel copy, fsynced. The link is
    refused unless it names the very file ``src`` is (not one renamed over the staged path since), the copy
    unless that file is unchanged while copied."""
    import secrets

    target.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a name no leftover of an interrupted publication holds
        tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(staged, tmp)
            linked = True
            break
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            linked = False
            break
    try:
        if linked:
            mine, theirs = os.stat(tmp), os.fstat(src.fileno())
            if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
                raise _changed(name, staged, "replaced")
        else:
            _write_copy(tmp, name, lambda out: _copy_in_kernel(src, out), mode="xb")
            if known_sha256(src.fileno()) != sha256:
                raise _changed(name, staged, "changed")
        os.replace(tmp, target)
    finally:
        _discard(tmp)
    remember_digest(target, sha256)  # a link changes the time of the file's status, not its bytes


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
