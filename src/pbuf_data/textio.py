"""Reading raw survey text files with errors that point at the line and column.

Every reader works on a :class:`RawFile`, which knows the dataset it belongs to
and the name the registry gives it, so each failure is reported as
``dataset 'x' (file 'x/y.txt', line 3, column 2): ...``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import PbufDataError


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the file
    fields: list[str]


@dataclass(frozen=True)
class RawFile:
    """A raw input file: where it is, what the registry calls it, whose it is."""

    path: Path
    name: str
    dataset: str

    def error(self, message: str, **where) -> PbufDataError:
        return PbufDataError(message, dataset=self.dataset, file=self.name, **where)

    # -- whole-file access -------------------------------------------------
    def text(self) -> str:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise self.error("file is missing", check="exists") from None
        except OSError as exc:
            raise self.error(f"cannot read file: {exc.strerror}", check="readable") from None
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

    def lines(self, comment: str | None = "#", split: str | None = None) -> list[Line]:
        """Non-blank, non-comment lines split into fields (CRLF and tabs accepted)."""
        out = []
        for number, raw in enumerate(self.text().splitlines(), start=1):
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
        try:
            value = float(token)
        except ValueError:
            raise self.error(f"'{token}' is not a number", line=line, column=column) from None
        if finite and not math.isfinite(value):
            raise self.error(f"non-finite value '{token}'", line=line, column=column, check="finite")
        return value

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

        The fast path parses with pandas' C reader; if that fails the file is
        scanned line by line to name the first offending line.
        """
        with open(self.path, "rb") as fh:
            first = fh.readline()
        try:
            n = int(first.strip())
        except ValueError:
            raise self.error(f"first line must be the matrix size N, found {first.strip()[:40]!r}", line=1) from None
        if n != n_expected:
            raise self.error(
                f"matrix size N={n} on line 1 does not match the {n_expected} rows of the table",
                line=1,
                check="covariance size",
            )
        values = self._fast_column(skip=1, count=n * n)
        if values is None or values.size != n * n or not np.isfinite(values).all():
            self._locate_problem(n)
        return values.reshape(n, n)

    def _fast_column(self, skip: int, count: int) -> np.ndarray | None:
        """One value per line, parsed by pandas' C reader chunk by chunk into one preallocated
        array (peak memory about one matrix); None when anything is off (then the slow scan names it)."""
        import pandas as pd

        out = np.empty(count)
        pos = 0
        try:
            with pd.read_csv(
                self.path, header=None, skiprows=skip, sep=r"\s+", dtype=np.float64, engine="c", chunksize=1 << 22
            ) as reader:
                for chunk in reader:
                    if chunk.shape[1] != 1 or pos + len(chunk) > count:
                        return None
                    out[pos : pos + len(chunk)] = chunk[0].to_numpy()
                    pos += len(chunk)
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            return None
        return out if pos == count else None

    def _locate_problem(self, n: int):
        expected = n * n
        count = 0
        with open(self.path, "rb") as fh:
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
                    self.number(tok, number, 1)
                    count += 1
                if count > expected:
                    raise self.error(
                        f"more than N*N = {expected} values (N={n} on line 1)", line=number, check="covariance size"
                    )
        if count != expected:
            raise self.error(
                f"found {count} values after line 1, expected N*N = {expected} (N={n})", check="covariance size"
            )
        raise self.error("could not parse the covariance file", check="covariance parse")
