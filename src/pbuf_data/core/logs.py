"""Aggregate logs, the audit trail and processing summaries under a result tree's ``logs/``.

Every job appends to ``processing.log`` (and ``errors.log`` when it fails) and
one JSON line to ``audit.jsonl``; each derivation writes a processing summary
to ``transformations/``. Appends hold an exclusive lock on a companion
``.lock`` file, so lines from parallel jobs never interleave; the aggregate
logs rotate by size (``.1`` ... ``.N``), the audit log too (more copies kept); restore and prune append
an audit record of their own. The newest :data:`KEEP_SUMMARIES` processing summaries of a dataset are kept.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import getpass
import json
import math
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import PbufDataError

ROTATE_BYTES = 5_000_000
ROTATE_KEEP = 5
AUDIT_KEEP = 20  # audit.jsonl.1 ... .20: about 100 MB of history
KEEP_SUMMARIES = 200  # per dataset, for trends


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _rotate(path: Path, keep: int) -> None:
    for i in range(keep - 1, 0, -1):
        older = Path(f"{path}.{i}")
        if older.exists():
            os.replace(older, f"{path}.{i + 1}")
    os.replace(path, f"{path}.1")


def append_lines(path: str | Path, lines: list[str], *, rotate_bytes: int | None = ROTATE_BYTES, keep: int = ROTATE_KEEP):
    """Append whole lines under a lock; rotate first when the file is over ``rotate_bytes``.

    A log that cannot be written (read-only or full disk, a folder in its place)
    raises a PbufDataError naming it."""
    path = Path(path)
    try:
        with _locked(path):
            if rotate_bytes and path.exists() and path.stat().st_size > rotate_bytes:
                _rotate(path, keep)
            with open(path, "a") as fh:
                fh.write("".join(line.rstrip("\n") + "\n" for line in lines))
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        raise PbufDataError(f"cannot write the log: {exc.strerror or exc}", file=str(path), check="logging") from None


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else (a FIFO, opened non-blocking so
    that it does not hang, a folder, a device, a larger file) raises OSError saying what it is."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, folder or device)")
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(limit + 1)[:limit]
    finally:
        os.close(fd)


def last_error(log: str | Path) -> str | None:
    """The last ERROR message a job wrote to its log (the clear dataset/file/line message), if any."""
    try:
        text = _read_regular(Path(log), 64 << 20).decode(errors="replace")
    except OSError:  # missing, a folder, a FIFO, unreadable: no message to show
        return None
    errors = [line.split(" ERROR ", 1)[1] for line in text.split("\n") if " ERROR " in line]
    return errors[-1] if errors else None


def job_threads() -> int:
    """Threads of this job: a workflow job's (Snakemake sets OMP_NUM_THREADS to them, and so does the helper in
    a job's process it forks), else the CPUs this process may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    given = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cpus, int(given))) if given.isdigit() else cpus


def peak_rss_mib() -> float:
    """The peak resident memory of this process so far, MiB. A process forked by the helper starts at the
    helper's (the pages they share), so what a job added is its peak minus its reading at the start."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def software_versions() -> dict:
    """Versions of the code that made a dataset or ran a job (read from package metadata, nothing imported)."""
    return dict(_software_versions())


@functools.cache  # read once per process: each lookup scans the path for the package's metadata
def _software_versions() -> dict:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    versions = {"pbuf_data": __version__, "python": platform.python_version()}
    for package in ("numpy", "pandas", "scipy", "snakemake"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def record_job(step: str, status: str, seconds: float, *, dataset=None, message="", inputs=(), outputs=(),
               logs_dir, usage: dict | None = None) -> list[str]:
    """Aggregate log line(s) and one audit record for a finished job. The aggregate logs (``processing.log``,
    ``errors.log``) are a convenience: one that cannot be written is returned as a warning, so that a job that
    did its work (e.g. published) is not failed by it; the audit record must be written (PbufDataError). The
    digests of its files are those the job computed when it read or wrote them, while they are unchanged
    (:func:`pbuf_data.core.integrity.trusted_sha256`)."""
    from .integrity import trusted_sha256

    logs_dir = Path(logs_dir)
    stamp = now_utc()
    line = f"{stamp} {status.upper():7s} {step} {dataset or '-'} {seconds:.3f}s {message}".rstrip()
    warnings = []
    for name in ("processing.log", *(("errors.log",) if status != "success" else ())):
        try:
            append_lines(logs_dir / name, [line])
        except PbufDataError as exc:
            warnings.append(f"{exc} (the job's outcome is in its own log and in audit.jsonl)")

    def digests(paths):
        return {str(p): trusted_sha256(p) for p in paths if Path(p).is_file()}

    audit = {
        "time": stamp,
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "dataset": dataset,
        "rule": step,
        "status": status,
        "seconds": round(seconds, 3),
        **(usage or {}),
        "inputs": digests(inputs),
        "outputs": digests(outputs) if status == "success" else {},
        "software": software_versions(),
    }
    if message:
        audit["message"] = message
    append_lines(logs_dir / "audit.jsonl", [json.dumps(audit, sort_keys=True)], keep=AUDIT_KEEP)
    return warnings


def audit_operation(logs_dir, command: str, details: dict) -> None:
    """One audit record of an operation that changes a tree outside a run (restore, prune)."""
    record = {"time": now_utc(), "user": getpass.getuser(), "host": socket.gethostname(), "operation": command,
              "pid": os.getpid(), **details, "software": software_versions()}
    append_lines(Path(logs_dir) / "audit.jsonl", [json.dumps(record, sort_keys=True, default=str)], keep=AUDIT_KEEP)


def write_processing_summary(summary: dict, logs_dir) -> Path:
    """``transformations/<dataset>_processing_summary_<time>.json`` (history kept for trends)."""
    from .atomic import write_text

    folder = Path(logs_dir) / "transformations"
    now = time.time_ns()  # one reading: the name sorts by time (the oldest are the ones removed)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 10**9)) + f"{now // 1000 % 10**6:06d}"
    path = folder / f"{summary['dataset']}_processing_summary_{stamp}.json"
    write_text(path, json.dumps(summary, indent=2) + "\n")
    older = sorted(folder.glob(f"{summary['dataset']}_processing_summary_*.json"))[:-KEEP_SUMMARIES]
    for old in older:  # names start with the dataset and sort by time
        old.unlink(missing_ok=True)
    return path


def _summary_problem(item) -> str | None:
    """Why a parsed processing summary cannot be counted, or None."""
    if not isinstance(item, dict) or not isinstance(item.get("dataset"), str):
        return "not a processing summary (no 'dataset' name)"
    for key in ("processing_duration", "peak_memory_mb"):
        value = item.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"'{key}' is not a finite number"
    return None


def processing_trends(logs_dir, problems: list | None = None) -> dict:
    """Mean and max duration and peak memory per dataset, and failure counts, over all summaries.

    A summary that cannot be read or is malformed is left out; ``problems``, if
    given, receives one ``"<file>: <why>"`` line for each."""
    per: dict[str, dict] = {}
    for path in sorted((Path(logs_dir) / "transformations").glob("*_processing_summary_*.json")):
        try:
            item = json.loads(_read_regular(path, 1 << 20))
            why = _summary_problem(item)
        except OSError as exc:
            why = f"unreadable: {exc.strerror or exc}"
        except ValueError as exc:  # not JSON, not UTF-8
            why = f"not JSON: {str(exc)[:80]}"
        if why:
            if problems is not None:
                problems.append(f"{path}: {why}")
            continue
        stats = per.setdefault(item["dataset"], {"runs": 0, "failures": 0, "durations": [], "memory_mb": []})
        stats["runs"] += 1
        if item.get("status") != "success":
            stats["failures"] += 1
        stats["durations"].append(item.get("processing_duration", 0.0))
        stats["memory_mb"].append(item.get("peak_memory_mb", 0.0))
    out = {}
    for name, s in sorted(per.items()):
        n = len(s["durations"])
        out[name] = {
            "runs": s["runs"],
            "failures": s["failures"],
            "mean_duration_s": sum(s["durations"]) / n,
            "max_duration_s": max(s["durations"]),
            "mean_peak_memory_mb": sum(s["memory_mb"]) / n,
            "max_peak_memory_mb": max(s["memory_mb"]),
        }
    return out
