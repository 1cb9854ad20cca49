"""Raw file input below the text readers (:mod:`pbuf_data.read.textio`): a file opened confined to its folder (no
link followed, a regular file, never a FIFO's hang), read whole up to a limit and hashed, or read in hashed blocks of
whole lines (:class:`BlockReader`), and gzip decompression bounded in size. Errors are the raw file's, naming the
dataset, the file and the check."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from contextlib import contextmanager
from pathlib import Path

from ..core.integrity import remember_digest

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, skipped at the start of a text file
_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"  # a gzip member starts with these bytes (RFC 1952): such a file is read decompressed
MAX_GZIP_BYTES = 4 << 30  # largest decompressed text of a gzip file (a small file cannot expand without bound)


def open_confined(root: str | Path, relative: str) -> int:
    """File descriptor of ``root/relative``, opened without following any link below ``root``.

    Each folder component is opened relative to the previous one with
    O_NOFOLLOW, so a link swapped in at any level (even after a check) cannot
    lead the read out of the raw folder. The file is opened non-blocking (a FIFO
    does not hang) and must be a regular file. Raises OSError (ELOOP for a link,
    EISDIR/EINVAL for a non-regular file).
    """
    parts = Path(relative).parts
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=fd)
            except NotADirectoryError:  # O_NOFOLLOW | O_DIRECTORY on a link: say it is a link
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP)) from None
                raise
            os.close(fd)
            fd = inner
        inner = os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    mode = os.fstat(inner).st_mode
    if not stat.S_ISREG(mode):
        os.close(inner)
        raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, file_kind(mode))
    os.set_blocking(inner, True)
    return inner


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_limited(fd: int, limit: int | None) -> tuple[bytes, str]:
    """All bytes of an open file and their sha256, refusing more than ``limit`` bytes.

    The file is read with one call into one buffer of its size (no copies: the
    memory is the file size), then hashed; a file that grows after its size was
    looked at is still held to the limit."""
    size = os.fstat(fd).st_size
    want = size if limit is None else min(size, limit)
    parts = [os.read(fd, want + 1)]  # the extra byte shows a file that grew
    total = len(parts[0])
    while parts[-1]:
        if limit is not None and total > limit:
            raise ValueError(total)
        parts.append(os.read(fd, _CHUNK))
        total += len(parts[-1])
    data = parts[0] if len(parts) <= 2 else b"".join(parts)
    digest = hashlib.sha256(data).hexdigest()
    remember_digest(fd, digest, len(data))
    return data, digest


class BlockReader:
    """A raw file's bytes read once from its start, as blocks of whole lines: from memory (hashed when read), or,
    for a file not kept, from the file opened again (confined), each block hashed as it is read, up to the size
    the file had when it was first opened. Once the file is read to that end, its sha256 and size are recorded
    (``RawFile.read_once``; and for :func:`pbuf_data.core.integrity.trusted_sha256`). Closes the file when closed."""

    def __init__(self, raw, stored_limit: int):
        self.raw, self.fd, self.pos = raw, None, 0
        # in memory: the text, decompressed for a gzip file (its sha256 is that of the stored bytes, taken when read)
        self.text = gunzip(raw, MAX_GZIP_BYTES) if raw.compressed else raw.data
        if raw.data is None:
            try:
                self.fd = open_confined(raw.root, raw.name)
            except OSError as exc:
                raise raw.error(f"cannot open the file again to parse it: {exc.strerror}", check="readable") from None
            if os.pread(self.fd, len(GZIP_MAGIC), 0) == GZIP_MAGIC:  # not kept in memory: too large to decompress
                os.close(self.fd)
                raise raw.error(f"gzip files are read up to {stored_limit} bytes as stored; this one is "
                                f"{raw.nbytes}: store it decompressed", check="size limit")
            self.hash = hashlib.sha256()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _read_into(self, view: memoryview) -> int:
        """Fill ``view`` from the file (less at its end: the size it had when opened), hash what was read; bytes
        read. At the end, the digest is recorded (and compared with that of an earlier read)."""
        want = min(len(view), self.raw.size - self.pos)
        got = 0
        while got < want:
            try:
                n = os.readv(self.fd, [view[got:want]])
            except OSError as exc:
                raise self.raw.error(f"cannot read file: {exc.strerror}", check="readable") from None
            if not n:
                break
            got += n
        self.hash.update(view[:got])
        self.pos += got
        if got < len(view):  # the end: the size it had when opened, or less
            digest, self.hash = self.hash.hexdigest(), None
            before = self.raw.read_once.get("sha256", digest)
            if before != digest:
                raise self.raw.error(f"file changed while read: sha256 {before} when first read, {digest} when read "
                                     "again", check="unchanged while read")
            self.raw.read_once.update(sha256=digest, size=self.pos)
            remember_digest(self.fd, digest, self.pos)
        return got

    def blocks(self, size: int, keep: int = 0):
        """Blocks of whole lines of about ``size`` bytes (the last one as the file ends), as memoryviews: of the
        text in memory, or of ``keep + 1`` buffers filled in turn from the file, so that a block stays valid until
        ``keep`` more have been taken (no buffer is allocated per block)."""
        if self.fd is None:
            yield from _cut(self.text or b"", size)
            return
        ring, slot, carry = [None] * (keep + 1), 0, b""
        while True:
            if self.hash is None:  # read to its end
                if carry:
                    yield memoryview(carry)
                return
            want = len(carry) + max(size, len(carry))  # a line longer than a block: read as much again
            if ring[slot] is None or len(ring[slot]) < want:
                ring[slot] = bytearray(max(2 * size, want))  # room for the end of a line
            view = memoryview(ring[slot])[:want]
            view[: len(carry)] = carry
            end = len(carry) + self._read_into(view[len(carry):])
            cut = ring[slot].rfind(b"\n", 0, end) + 1
            if not cut:  # no line ends in it yet: read on, after it
                carry = bytes(view[:end])
                continue
            carry = bytes(view[cut:end])
            yield view[:cut]
            slot = (slot + 1) % len(ring)

    def drain(self) -> None:
        """Read (and hash) what is left of the file."""
        if self.fd is None or self.hash is None:
            return
        with memoryview(bytearray(16 * _CHUNK)) as view:
            while self.hash is not None:
                self._read_into(view)


def _cut(text: bytes, size: int):
    """``text`` as blocks of whole lines of about ``size`` bytes (views of it)."""
    view, start = memoryview(text), 0
    while start < len(text):
        end = start + size
        if end < len(text):
            end = text.rfind(b"\n", start, end) + 1 or text.find(b"\n", end) + 1 or len(text)
        yield view[start:end]
        start = end


def gunzip(raw, limit: int) -> bytes:
    """The decompressed bytes of a gzip file kept in memory, at most ``limit``; a corrupt or truncated stream, or
    more than ``limit`` bytes, is an error naming the file."""
    with gunzip_stream(raw, skip_bom=False) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise raw.error(f"gzip file decompresses to more than {limit} bytes, the limit of a text file read line by line",
                        check="size limit")
    return data


class _LimitedGzip(io.RawIOBase):
    """A gzip stream's decompressed bytes, at most MAX_GZIP_BYTES, its errors as the file's."""

    def __init__(self, raw):
        import gzip

        self._raw, self._inner, self._total = raw, gzip.GzipFile(fileobj=io.BytesIO(raw.data)), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        import gzip
        import zlib

        try:
            n = self._inner.readinto(buffer)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise self._raw.error(f"corrupt gzip data: {exc}", check="gzip") from None
        self._total += n
        if self._total > MAX_GZIP_BYTES:
            raise self._raw.error(f"gzip file decompresses to more than {MAX_GZIP_BYTES} bytes", check="size limit")
        return n


@contextmanager
def gunzip_stream(raw, skip_bom: bool):
    with io.BufferedReader(_LimitedGzip(raw), 16 * _CHUNK) as stream:
        if skip_bom and stream.peek(len(BOM))[: len(BOM)] == BOM:
            stream.read(len(BOM))
        yield stream
