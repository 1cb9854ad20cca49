"""One lock for every writer of a project: Snakemake runs (also through the CLI and the API), restore, prune, backup.

The lock is ``.snakemake/pbuf-data/writer.lock`` of the project folder, an exclusive ``flock`` taken through
the ``filelock`` library; the kernel releases it when its process ends, so a lock that can be taken is free
(no guess from process names or stale files). ``writer.json`` beside it says who took it last (PID, command,
start time); it is read only while the lock is held, so the PID it names is the holder's.

A run's jobs are processes of the run (or of its cluster jobs): they find the holder's PID in the
environment variable :data:`HELD_ENV`, set by the holder, and write under its lock without taking it again.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..core import layout
from ..core.atomic import write_text
from ..core.errors import PbufDataError

HELD_ENV = "PBUF_DATA_WRITER"  # "<pid>" of the process holding the lock, for its children (the run's jobs)
_held: dict[str, list] = {}  # lock path -> [FileLock, count] held by this process (re-entrant)


def _paths(root: str | Path) -> tuple[Path, Path]:
    folder = Path(root).resolve() / layout.WRITER
    return folder / "writer.lock", folder / "writer.json"


def _command() -> str:
    """This process's command line, its program by name (``python -m snakemake`` as ``snakemake``)."""
    if not sys.argv or not sys.argv[0]:
        return "python"
    program = Path(sys.argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name
    name = "pbuf-data" if name == "pbuf_data" else name
    return " ".join([name, *sys.argv[1:]])


def holder(root: str | Path) -> dict | None:
    """Who writes in this project now: {"pid", "command", "started", "host"}; None when nobody does (proved: the
    lock could be taken)."""
    lock_path, info_path = _paths(root)
    if str(lock_path) in _held:
        return _read_info(info_path) or {"pid": os.getpid(), "command": _command()}
    if not lock_path.exists():
        return None
    probe = FileLock(lock_path, timeout=0, fallback_to_soft=False)
    try:
        probe.acquire()
    except Timeout:
        return _read_info(info_path) or {"pid": None, "command": "unknown (no writer.json)"}
    except OSError as exc:
        raise PbufDataError(f"cannot open the writer lock: {exc.strerror or exc}", file=str(lock_path), check="lock") from None
    probe.release()
    return None


def _read_info(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text())
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def describe(info: dict) -> str:
    return f"pid {info.get('pid')}: {info.get('command')} (since {info.get('started', '?')})"


def refusal(info: dict) -> str:
    return (f"a run is in progress here (pid {info.get('pid')}): {info.get('command')}, since {info.get('started', '?')}; "
            "wait for it to finish, or stop it with `pbuf-data stop`")


def _inside_run(info_path: Path) -> bool:
    """True in a job of the run that holds the lock (its PID in the environment and in writer.json)."""
    pid = os.environ.get(HELD_ENV)
    if not pid:
        return False
    info = _read_info(info_path)
    return bool(info) and str(info.get("pid")) == pid


def acquire(root: str | Path, command: str | None = None, *, wait: float = 0) -> None:
    """Take the project's writer lock (re-entrant in a process), waiting up to ``wait`` seconds; refused, naming
    the holder's PID and command, if another process holds it."""
    lock_path, info_path = _paths(root)
    key = str(lock_path)
    if key in _held:
        _held[key][1] += 1
        return
    if _inside_run(info_path):
        _held[key] = [None, 1]
        return
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path, timeout=wait, fallback_to_soft=False)
        lock.acquire()
    except Timeout:
        info = _read_info(info_path) or {"pid": None, "command": "unknown"}
        raise PbufDataError(refusal(info), file=str(lock_path), check="one writer at a time") from None
    except OSError as exc:
        raise PbufDataError(f"cannot take the writer lock: {exc.strerror or exc}", file=str(lock_path), check="lock") from None
    _held[key] = [lock, 1]
    info = {"pid": os.getpid(), "command": command or _command(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_text(info_path, json.dumps(info) + "\n")
    os.environ[HELD_ENV] = str(os.getpid())


def try_acquire(root: str | Path, command: str | None = None) -> bool:
    """Take the lock if it is free (True); False, changing nothing, if another process holds it."""
    try:
        acquire(root, command)
    except PbufDataError as exc:
        if exc.check == "one writer at a time":
            return False
        raise
    return True


def release(root: str | Path) -> None:
    """Give back one hold of the lock; the last one frees it."""
    lock_path, _ = _paths(root)
    entry = _held.get(str(lock_path))
    if not entry:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _held[str(lock_path)]
        if entry[0] is not None:
            entry[0].release()
            if os.environ.get(HELD_ENV) == str(os.getpid()):
                del os.environ[HELD_ENV]


def holds(root: str | Path) -> int:
    """How many times this process holds the lock (0: not at all)."""
    entry = _held.get(str(_paths(root)[0]))
    return entry[1] if entry else 0


def release_to(root: str | Path, level: int) -> None:
    """Give back the holds taken since ``holds(root)`` was ``level`` (after a run through the API, whose
    Snakemake handlers may not all have run)."""
    while holds(root) > level:
        release(root)


@contextmanager
def writing(root: str | Path, command: str | None = None, *, wait: float = 0):
    """The writer lock held for a block."""
    acquire(root, command, wait=wait)
    try:
        yield
    finally:
        release(root)
