"""Reading raw survey text files with errors that point at the line and column.

Every reader works on a :class:`RawFile`, which knows the dataset it belongs to
and the name the registry gives it, so each failure is reported as
``dataset 'x' (file 'x/y.txt', line 3, column 2): ...``.

A raw file is opened by :meth:`RawFile.read` without following symbolic links
(in any component below the raw folder) and refused unless it is a regular
file. A file up to ``MAX_TEXT_BYTES`` (64 MiB) is hashed while it is read into
memory and parsed from that same buffer. A larger one (only the Pantheon+
covariance reader takes one) is read once, by its parse, block by block: each
block is hashed as it is read and parsed, so its sha256 is the digest of the
bytes parsed, compared with the registry pin (``pin``) at the end of the read,
before any problem of the parse is reported. The digest is trusted from then on
(the pin check, the job's audit record); a file no layout parses is hashed once
when its digest is first asked for (:meth:`RawFile.digest`). The read ends at
the size the file had when opened, whatever is appended meanwhile.

Memory of a parse, as a multiple of the file size B (measured in
tests/test_hostile_input.py):

* line-by-line readers (:meth:`RawFile.text`, ``lines``, ``table``,
  ``matrix``: every table and small matrix) hold Python strings for every
  field: about 30 B for rows of several values, at most 150 B for one short
  value per line; they accept files up to ``MAX_TEXT_BYTES`` (64 MiB);
* the Pantheon+ covariance reader (:meth:`RawFile.counted_matrix`: line 1 N,
  then one value per line, at least 2 bytes a value) holds the N x N float64
  matrix (at most 4 B; about 0.4 B for release files of about 20 bytes a value),
  the file's bytes too (B) when it is kept in memory (up to 64 MiB), and the
  blocks being parsed (buffers of twice ``BLOCK_BYTES``, one per thread and one
  more, used in turn, and each parser's own buffers: about 20 MiB a thread); the
  derivation selects rows in place. So at most 5 B plus 100 MiB on up to 4
  threads, and 4 B plus 100 MiB above 64 MiB. A file that fails to parse is
  read into memory once more (its digest checked again), to name the offending
  line.

With the default ``max_raw_bytes`` (config/config.yaml: sn 1.8 GB, bao 10 MB)
an SN derivation stays below 8 GB for its covariance plus 2 GB for a table
that matches it (N rows for N*N values), inside a 24 GiB machine.
"""

from __future__ import annotations

import errno
import io
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import PbufDataError
from . import blockparse, rawio

# a number as the releases write it: ASCII digits, optional sign, point and exponent. Python's
# float() also takes Unicode digits, '_' separators and surrounding whitespace; none is a number here.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)
_COUNT = re.compile(r"[0-9]+\Z")
MAX_TEXT_BYTES = 64 << 20  # largest file parsed line by line (up to 150 bytes of memory per file byte)
BLOCK_BYTES = 4 << 20  # bytes read, hashed and parsed at a time by the covariance reader (counted_matrix)
_FIRST_LINE_BYTES = 4096  # the longest first line (the count N) the covariance reader takes


def _quote(token: str, limit: int = 40) -> str:
    """A token for an error message, shortened (a message never echoes a huge value)."""
    return token if len(token) <= limit else f"{token[:limit]}... ({len(token)} characters)"


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based line number in the file
    fields: list[str]


@dataclass(frozen=True)
class RawFile:
    """A raw input file as read: where it was, what the registry calls it, whose it is, its bytes."""

    path: Path
    name: str
    dataset: str
    data: bytes | None = field(repr=False, compare=False)  # None: above MAX_TEXT_BYTES, read by its parse
    sha256: str = ""  # of the bytes in memory ("" for a file not kept: see digest)
    size: int = -1  # bytes of a file not kept in memory, when it was opened
    root: Path | None = None  # the raw folder it is read from by its parse (see stream)
    pin: str | None = None  # the sha256 the registry pins it to, if any (see check_pin)
    # of a file not kept: the sha256 and size of the bytes its parse read, once read to the end
    read_once: dict = field(default_factory=dict, repr=False, compare=False)
    links: int = 1  # hard links to its content (an unpinned file with several may be any file's content)

    @property
    def nbytes(self) -> int:
        """Bytes as stored (for a gzip file, its compressed size)."""
        return len(self.data) if self.data is not None else self.read_once.get("size", self.size)

    def digest(self) -> str:
        """The sha256 of the file's bytes as read: those kept in memory, or those its parse read once; a file not
        kept that nothing parsed is read and hashed now (once)."""
        if self.data is not None:
            return self.sha256
        if "sha256" not in self.read_once:
            with rawio.BlockReader(self, MAX_TEXT_BYTES) as reader:
                reader.drain()
        return self.read_once["sha256"]

    def check_pin(self) -> None:
        """Refuse the file (check 'sha256 pin') when the sha256 of its bytes as read differs from its pin."""
        if self.pin and self.digest() != self.pin:
            raise self.error(f"sha256 {self.digest()} differs from the registry pin {self.pin}", check="sha256 pin")

    @property
    def compressed(self) -> bool:
        """A gzip file (detected by its magic bytes, whatever its name): every reader sees its decompressed text;
        its pin is the sha256 of the bytes as stored."""
        return self.data is not None and self.data[:2] == rawio.GZIP_MAGIC

    @classmethod
    def read(cls, root: str | Path, relative: str, dataset: str, *, max_bytes: int | None = None,
             pin: str | None = None) -> "RawFile":
        """Open ``root/relative`` (see :func:`open_confined`), hash it while reading it into memory; above
        ``MAX_TEXT_BYTES``, only check its size: its parse reads and hashes it (see :class:`pbuf_data.read.rawio.BlockReader`).
        ``pin``: the sha256 the registry expects (:meth:`check_pin`)."""

        def fail(message, check):
            return PbufDataError(message, dataset=dataset, file=relative, check=check)

        try:
            fd = rawio.open_confined(root, relative)
        except FileNotFoundError:
            raise fail("raw file is missing (see the README: raw_dir and retrieval)", "exists") from None
        except NotADirectoryError:
            raise fail("a folder on the raw path is not a folder", "exists") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise fail("raw path has a symbolic link below the raw folder; links are not followed", "path confinement") from None
            if exc.errno in (errno.EISDIR, errno.EINVAL):
                raise fail(f"raw file is {exc.strerror}, not a regular file", "regular file") from None
            raise fail(f"cannot open file: {exc.strerror}", "readable") from None
        try:
            info = os.fstat(fd)
            size, links = info.st_size, info.st_nlink
            if max_bytes is not None and size > max_bytes:
                raise fail(f"file is {size} bytes, above the limit of {max_bytes} for this kind", "size limit")
            try:
                if size > MAX_TEXT_BYTES:
                    return cls(Path(root) / relative, relative, dataset, None, size=size, root=Path(root), pin=pin, links=links)
                data, sha256 = rawio.read_limited(fd, max_bytes)
            except ValueError:
                raise fail(f"file grew above the limit of {max_bytes} bytes for this kind while read", "size limit") from None
            except OSError as exc:
                raise fail(f"cannot read file: {exc.strerror}", "readable") from None
        finally:
            os.close(fd)
        return cls(Path(root) / relative, relative, dataset, data, sha256, pin=pin, links=links)

    def error(self, message: str, **where) -> PbufDataError:
        return PbufDataError(message, dataset=self.dataset, file=self.name, **where)

    @contextmanager
    def stream(self):
        """The bytes of a file kept in memory (:meth:`kept`; a gzip file's decompressed), as a binary stream, after
        any UTF-8 byte-order mark."""
        if self.compressed:
            with rawio.gunzip_stream(self, skip_bom=True) as stream:
                yield stream
        else:
            stream = io.BytesIO(self.data)
            stream.seek(len(rawio.BOM) if self.data.startswith(rawio.BOM) else 0)
            yield stream

    def kept(self) -> "RawFile":
        """This file with its bytes in memory, for a line-by-line scan: a file not kept is read again through
        :class:`pbuf_data.read.rawio.BlockReader` (confined, to the size it had when opened, refused if its bytes changed)."""
        if self.data is not None:
            return self
        data = bytearray()
        with rawio.BlockReader(self, MAX_TEXT_BYTES) as reader:
            for block in reader.blocks(BLOCK_BYTES):
                data += block
        return RawFile(self.path, self.name, self.dataset, bytes(data), self.digest(), pin=self.pin)

    # -- whole-file access -------------------------------------------------
    def text(self) -> str:
        """The file's text (UTF-8; a leading byte-order mark is not part of it)."""
        if self.data is None or self.nbytes > MAX_TEXT_BYTES:  # not kept: it was above the limit when opened
            raise self.error(
                f"file is {self.nbytes} bytes; files read line by line are limited to {MAX_TEXT_BYTES} "
                "(their parse takes up to 150 times the file size in memory)",
                check="size limit",
            )
        data = rawio.gunzip(self, MAX_TEXT_BYTES) if self.compressed else self.data
        data = data[len(rawio.BOM):] if data.startswith(rawio.BOM) else data
        if not data.strip():
            raise self.error("file is empty", check="non-empty")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise self.error(
                f"bytes that are not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})",
                line=line,
                check="utf-8",
            ) from None

    def numbered_lines(self) -> list[tuple[int, str]]:
        """``(line number, text)`` of every line. Only ``\\n`` ends a line (a ``\\r`` before it is
        dropped), so a form feed or U+2028 inside a line does not shift the numbers."""
        return [(number, raw.removesuffix("\r")) for number, raw in enumerate(self.text().split("\n"), start=1)]

    def lines(self, comment: str | None = "#", split: str | None = None) -> list[Line]:
        """Non-blank, non-comment lines split into fields (CRLF and tabs accepted)."""
        out = []
        for number, raw in self.numbered_lines():
            stripped = raw.strip()
            if not stripped or (comment and stripped.startswith(comment)):
                continue
            if "\x00" in stripped:
                raise self.error("binary data (NUL byte) in a text file", line=number, check="text")
            out.append(Line(number, stripped.split(split) if split else stripped.split()))
        if not out:
            raise self.error("file has no data lines", check="non-empty")
        return out

    # -- typed access ------------------------------------------------------
    def number(self, token: str, line: int, column: int | str, *, finite: bool = True) -> float:
        """A number written in ASCII (``1``, ``-0.5``, ``1e-3``); ``nan``/``inf`` only when not ``finite``."""
        if _NUMBER.match(token):
            return float(token)
        if _NON_FINITE.match(token):
            if finite:
                raise self.error(f"non-finite value '{token}'", line=line, column=column, check="finite")
            return float(token)
        raise self.error(f"'{_quote(token)}' is not a number", line=line, column=column) from None

    def table(self, ncols: int, numeric: range | list[int] | None = None, comment: str | None = "#"):
        """Rows of exactly ``ncols`` fields; columns in ``numeric`` (0-based) parsed as floats.

        Returns ``(line_numbers, rows)`` where each row is a list holding floats
        for numeric columns and strings otherwise.
        """
        numeric = set(range(ncols) if numeric is None else numeric)
        numbers, rows = [], []
        for ln in self.lines(comment=comment):
            if len(ln.fields) != ncols:
                raise self.error(
                    f"expected {ncols} columns, found {len(ln.fields)}", line=ln.number, check="column count"
                )
            rows.append(
                [self.number(tok, ln.number, i + 1) if i in numeric else tok for i, tok in enumerate(ln.fields)]
            )
            numbers.append(ln.number)
        return numbers, rows

    def matrix(self, n: int | None = None) -> np.ndarray:
        """A square N x N matrix written row by row (whitespace or tab separated).

        N is ``n`` when given (the size the other files imply), else the number
        of values on the first row.
        """
        lines = self.lines()
        size = len(lines[0].fields) if n is None else n
        if len(lines) != size:
            raise self.error(f"expected a {size}x{size} matrix, found {len(lines)} rows", check="matrix shape")
        values = np.empty((size, size))
        for i, ln in enumerate(lines):
            if len(ln.fields) != size:
                raise self.error(
                    f"row {i + 1} of a {size}x{size} matrix has {len(ln.fields)} values",
                    line=ln.number,
                    check="matrix shape",
                )
            for j, tok in enumerate(ln.fields):
                values[i, j] = self.number(tok, ln.number, j + 1)
        return values

    def counted_matrix(self, n_expected: int) -> np.ndarray:
        """The Pantheon+ covariance layout: line 1 holds N, then N*N values, row-major.

        The file is read once, block by block (:class:`pbuf_data.read.rawio.BlockReader`), each block hashed and parsed by pandas'
        C reader on the job's threads (:mod:`pbuf_data.read.blockparse`); its pin is checked at the end of the read,
        before any problem of the parse is reported. If a block does not parse, the file is scanned line by line
        to name the first offending line (or to read a layout pandas' reader does not take).
        """
        threads = blockparse.parse_threads()
        with rawio.BlockReader(self, MAX_TEXT_BYTES) as reader:
            try:
                n, values = self._counted_values(reader.blocks(BLOCK_BYTES, blockparse.window(threads)), n_expected,
                                                 threads)
            except PbufDataError:
                reader.drain()
                self.check_pin()  # a problem of the pinned bytes, not of another file
                raise
            reader.drain()
        self.check_pin()
        if values is None or not np.isfinite(values).all():
            values = self.kept()._scan_values(n)
        return values.reshape(n, n)

    def _counted_values(self, blocks, n_expected: int, threads: int) -> tuple[int, np.ndarray | None]:
        """N from line 1 of the first of ``blocks`` (views of whole lines), checked, and the N*N values after it,
        parsed on ``threads`` threads (None: the slow scan names the problem)."""
        head = next(blocks, memoryview(b""))
        skip = len(rawio.BOM) if head[: len(rawio.BOM)] == rawio.BOM else 0
        first = bytes(head[skip : skip + _FIRST_LINE_BYTES])
        end = first.find(b"\n")
        if end < 0 and len(head) > skip + len(first):
            raise self.error(f"first line must be the matrix size N, found a line of more than {_FIRST_LINE_BYTES} "
                             "bytes", line=1)
        first, head = (first, head[len(head):]) if end < 0 else (first[:end], head[skip + end + 1 :])
        first = first.strip()
        if not _COUNT.match(first.decode("latin-1")):
            raise self.error(f"first line must be the matrix size N, found {first[:40]!r}", line=1)
        n = int(first)
        if n != n_expected:
            raise self.error(
                f"matrix size N={n} on line 1 does not match the {n_expected} rows of the table",
                line=1,
                check="covariance size",
            )
        if 2 * n * n > self.nbytes and not self.compressed:  # every value takes a digit and a newline at least
            raise self.error(
                f"found at most {self.nbytes // 2} values after line 1, expected N*N = {n * n} (N={n})",
                check="covariance size",
            )
        out = np.empty(n * n)
        return n, out if blockparse.parse_into(out, blockparse.chain(head, blocks), threads) else None

    def _scan_values(self, n: int) -> np.ndarray:
        """The N*N values after line 1, scanned line by line (of a file kept in memory): the first line that is
        not one finite value, or a count that is not N*N, names the problem; without one, the values."""
        expected = n * n
        values = np.empty(expected)
        count = 0
        with self.stream() as fh:
            fh.readline()
            for number, raw in enumerate(fh, start=2):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.error("bytes that are not UTF-8 text", line=number, check="utf-8") from None
                fields = text.split()
                if len(fields) > 1:
                    raise self.error(
                        f"expected one value per line, found {len(fields)}", line=number, check="column count"
                    )
                for tok in fields:
                    value = self.number(tok, number, 1)
                    if count == expected:
                        raise self.error(
                            f"more than N*N = {expected} values (N={n} on line 1)", line=number, check="covariance size"
                        )
                    if not math.isfinite(value):
                        raise self.error(f"'{_quote(tok)}' is beyond the range of float64", line=number, column=1,
                                         check="finite")
                    values[count] = value
                    count += 1
        if count != expected:
            raise self.error(
                f"found {count} values after line 1, expected N*N = {expected} (N={n})", check="covariance size"
            )
        return values
