"""Atomic file writes: everything the project writes goes to a temporary file
beside its target, is flushed to disk, and is renamed over the target only when
complete. A reader never sees a half-written file under its final name, and a
failed write (disk full, interruption) leaves the previous version in place.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import PbufDataError

FILE_MODE = 0o644


def _refuse(path: Path, exc: OSError) -> PbufDataError:
    return PbufDataError(
        f"cannot write {path}: {exc.strerror or exc} (the previous version, if any, is unchanged)",
        file=str(path),
        check="write",
    )


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise _refuse(path, exc) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        raise _refuse(path, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path):
    """Yield a binary file handle; its content replaces ``path`` (fsynced) when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def probe_writable(folder: str | Path, nbytes: int = 1 << 16) -> None:
    """Create ``folder`` if missing, then write, fsync and remove a file of ``nbytes`` in it: a read-only or full
    disk is one PbufDataError before anything else is written there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(bytes(nbytes))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise PbufDataError(f"cannot write {folder}/: {exc.strerror or exc}", file=str(folder), check="write") from None
