"""Checksums, ``sha256sum -c`` compatible manifests and verification of a data tree.

A manifest line is ``<sha256>  <path>`` with the path relative to the project
root, so ``sha256sum -c results/<corpus>/manifests/derived.sha256`` run from the project
root checks the same files as :func:`verify_tree`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .errors import PbufDataError

CHUNK = 1 << 20
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")



# Digests this process computed of the bytes it read or wrote itself (a raw file as it parsed it, an archive as it
# wrote it), by the file's identity (device, inode) and state (size, modification and change times, which any
# write changes): later steps of the same job trust them instead of reading the file again (trusted_sha256).
_KNOWN: dict[tuple[int, int], tuple[tuple[int, int, int], str]] = {}


def remember_digest(where: str | Path | int, digest: str, size: int | None = None) -> None:
    """Record ``digest`` as the sha256 of the file at ``where`` (a path, or an open descriptor) as it is now. With
    ``size`` (the bytes that were hashed), nothing is recorded unless the file holds exactly that many."""
    st = os.fstat(where) if isinstance(where, int) else os.stat(where)
    if size is None or st.st_size == size:
        _KNOWN[(st.st_dev, st.st_ino)] = ((st.st_size, st.st_mtime_ns, st.st_ctime_ns), digest)


def known_sha256(where: str | Path | int) -> str | None:
    """The digest this process recorded for the file at ``where`` (a path, or an open descriptor) if the file is
    unchanged since (:func:`remember_digest`), else None."""
    try:
        st = os.fstat(where) if isinstance(where, int) else os.stat(where)
    except OSError:
        return None
    known = _KNOWN.get((st.st_dev, st.st_ino))
    return known[1] if known and known[0] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns) else None


def trusted_sha256(path: str | Path) -> str:
    """The sha256 of a file: the digest this process recorded (:func:`remember_digest`) while the file is unchanged
    since; otherwise the file is hashed, and the digest recorded if the file did not change while it was read."""
    digest = known_sha256(path)
    if digest is None:
        with open(path, "rb", buffering=0) as fh:
            before = os.fstat(fh.fileno())
            digest = _sha256_stream(fh)
            after = os.fstat(fh.fileno())
            if (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (after.st_size, after.st_mtime_ns,
                                                                              after.st_ctime_ns):
                remember_digest(fh.fileno(), digest)
    return digest


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, read once in 1 MiB blocks (streaming, constant memory)."""
    with open(path, "rb", buffering=0) as fh:
        return _sha256_stream(fh)


class HashingWriter:
    """A write-only stream that hashes what passes through it to ``fh``. A piece of ``THREADED_BYTES`` or more is
    hashed in a thread of its own (hashlib releases the interpreter lock) while it is written and the caller
    makes the next one (the zip CRC-32 of an archive's next slice): the data given to :meth:`write` must stay
    unchanged until the next call."""

    THREADED_BYTES = 1 << 20

    def __init__(self, fh):
        self.fh, self.digest = fh, hashlib.sha256()
        self._hashing, self._pool = None, None

    def write(self, data):
        self._wait()
        if memoryview(data).nbytes >= self.THREADED_BYTES:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(1, thread_name_prefix="pbuf-sha256")
            self._hashing = self._pool.submit(self.digest.update, data)
        else:
            self.digest.update(data)
        return self.fh.write(data)

    def _wait(self) -> None:
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            hashing.result()

    def flush(self):
        self.fh.flush()

    def close(self) -> None:
        """End the hashing thread, if any (also after a failed write)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def hexdigest(self) -> str:
        self._wait()
        self.close()
        return self.digest.hexdigest()


def manifest_text(entries: dict[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(entries.items()))


def write_manifest(paths, manifest: str | Path, root: str | Path = ".", recorded: dict | None = None) -> dict[str, str]:
    """Hash ``paths`` (relative to ``root``) and write the manifest atomically.

    ``recorded`` gives the checksums of paths already known (recorded when they were written); they are
    not rehashed, nor is a file this process hashed or wrote and that is unchanged since (:func:`trusted_sha256`)."""
    from .atomic import write_text

    root, recorded = Path(root), recorded or {}
    links = [str(p) for p in paths if (root / p).is_symlink()]
    if links:
        raise PbufDataError(f"symbolic links among published files: {links}", check="regular files only")
    entries = {str(Path(p)): recorded.get(str(p)) or trusted_sha256(root / p) for p in paths}
    write_text(root / manifest, manifest_text(entries))
    return entries


def read_manifest(manifest: str | Path) -> dict[str, str]:
    """The entries of a ``sha256sum`` file: a regular file, opened without following a link (a FIFO does not
    block: it is refused)."""
    manifest = Path(manifest)
    entries = {}

    def unreadable(why):
        return PbufDataError(f"cannot read the manifest: {why}", file=str(manifest), check="manifest format")

    try:
        fd = os.open(manifest, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PbufDataError("manifest is missing", file=str(manifest), check="exists") from None
    except OSError as exc:  # a link (ELOOP), unreadable
        raise unreadable("it is a symbolic link (not followed)" if exc.errno == errno.ELOOP
                         else exc.strerror or exc) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise unreadable("not a regular file (a folder, FIFO or device)")
    try:
        with os.fdopen(fd, "rb") as fh:
            text = fh.read().decode("utf-8")
    except UnicodeDecodeError:
        raise PbufDataError("manifest is not text", file=str(manifest), check="manifest format") from None
    except OSError as exc:
        raise unreadable(exc.strerror or exc) from None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _LINE.match(line)
        if not match:
            raise PbufDataError(
                f"not a '<sha256>  <path>' line: {line[:80]!r}", file=str(manifest), line=number, check="manifest format"
            )
        entries[match.group(2)] = match.group(1)
    return entries


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list = field(default_factory=list)
    corrupted: list = field(default_factory=list)  # (path, expected, actual)
    extra: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # unreadable manifests and the like
    notes: list = field(default_factory=list)  # worth knowing, not a failure (e.g. an interrupted backup)
    unchecked: list = field(default_factory=list)  # files of the tree that no checksum covers (not a failure)
    parts: dict = field(default_factory=dict)  # name -> VerifyReport, when merged from parts

    @classmethod
    def merged(cls, parts: dict[str, "VerifyReport"]) -> "VerifyReport":
        """One report of several parts (published data, backups, raw files), each kept under its name."""
        whole = cls(parts=dict(parts))
        for part in parts.values():
            whole.checked += part.checked
            for name in ("missing", "corrupted", "extra", "problems", "notes", "unchecked"):
                getattr(whole, name).extend(getattr(part, name))
        return whole

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupted or self.extra or self.problems)

    def lines(self) -> list[str]:
        out = [f"MISSING    {p}" for p in self.missing]
        out += [f"CORRUPTED  {p} (expected {e}, found {a})" for p, e, a in self.corrupted]
        out += [f"EXTRA      {p} (in a checked folder but in no manifest)" for p in self.extra]
        out += [f"PROBLEM    {p}" for p in self.problems]
        out += [f"NOTE       {p}" for p in self.notes]
        out += [f"UNCHECKED  {p}" for p in self.unchecked]
        verdict = "OK" if self.ok else "FAILED"
        out.append(
            f"verify {verdict}: {self.checked} files checked, {len(self.missing)} missing, "
            f"{len(self.corrupted)} corrupted, {len(self.extra)} extra, {len(self.problems)} other problems"
        )
        return out

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "missing": self.missing,
            "corrupted": [{"path": p, "expected": e, "actual": a} for p, e, a in self.corrupted],
            "extra": self.extra,
            "problems": self.problems,
            "notes": self.notes,
            "unchecked": self.unchecked,
            "parts": {name: part.as_dict() for name, part in self.parts.items()},
        }


def check_entries(entries: dict[str, str], root: Path, report: VerifyReport, base: str = "") -> None:
    """Hash each listed file. A link below ``base`` (the result tree, which may itself be a link to another
    disk) is never followed: a listed path that is, or passes through, a symbolic link is reported, not
    opened (published files are regular files); nor is a FIFO opened for reading."""
    skip = len(Path(base).parts)
    for rel, expected in sorted(entries.items()):
        path = root / rel
        report.checked += 1
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            report.problems.append(f"manifest path {rel!r} leaves the project folder: not read")
            continue
        link = next((str(Path(*Path(rel).parts[:i])) for i in range(skip + 1, len(Path(rel).parts) + 1)
                     if (root / Path(*Path(rel).parts[:i])).is_symlink()), None)
        if link is not None:
            report.problems.append(f"{rel}: {link} is a symbolic link; published files are regular files "
                                   "(not followed, not read)")
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            report.missing.append(rel)
            continue
        except OSError as exc:
            report.problems.append(f"{rel}: cannot open: {exc.strerror or exc} (not read)")
            continue
        with os.fdopen(fd, "rb", buffering=0) as fh:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                report.problems.append(f"{rel} is not a regular file (not read)")
                continue
            actual = _sha256_stream(fh)
        if actual != expected:
            report.corrupted.append((rel, expected, actual))


def _sha256_stream(fh) -> str:
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := fh.readinto(buf):
        digest.update(view[:n])
    return digest.hexdigest()


def verify_tree(root: str | Path, tree: layout.Tree) -> VerifyReport:
    """Recompute every checksum of a result tree's manifest; report files it does not list."""
    root = Path(root)
    report = VerifyReport()
    manifest = root / tree.derived_manifest
    listed: set[str] = set()
    if not manifest.exists():
        report.missing.append(tree.derived_manifest)
    else:
        try:
            entries = read_manifest(manifest)
        except PbufDataError as exc:
            report.problems.append(str(exc))
            entries = {}
        listed.update(entries)
        check_entries(entries, root, report, tree.base)
    for folder in tree.watched:
        paths = sorted((root / folder).glob("*")) + sorted((root / folder).glob(".*"))
        if folder == tree.derived:  # the versioned archives, each listed by the manifest
            paths += sorted((root / folder / layout.VERSIONS).glob("*"))
        for path in paths:
            rel = str(path.relative_to(root))
            if path.is_symlink():
                report.problems.append(f"{rel} is a symbolic link; published folders hold regular files only")
            elif path.is_dir():
                if not (folder == tree.derived and path.name == layout.VERSIONS):
                    report.problems.append(f"{rel} is a folder; published folders hold regular files only")
            elif not path.is_file():
                report.problems.append(f"{rel} is not a regular file (a FIFO, socket or device)")
            elif rel not in listed and not (path.name.startswith(".") and path.name.endswith(".tmp")):
                report.extra.append(rel)  # (a .tmp dotfile is an atomic write in progress)
    return report
