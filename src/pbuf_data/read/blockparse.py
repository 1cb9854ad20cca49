"""Numbers written one per line, parsed block by block by pandas' C reader, on several threads.

The reader of a large covariance (:meth:`pbuf_data.read.textio.RawFile.counted_matrix`) reads a file once, in blocks
of whole lines that it hashes as it reads them, and hands them here: each block is parsed by pandas' C reader
(which releases the interpreter lock while it tokenizes and converts), on the job's threads, into one
preallocated array. A block that is anything but one number a line gives up (the caller then scans the file
line by line to name the problem).

Each thread keeps one pandas reader and hands it block after block, as pandas' own parallel ``read_csv`` of a file
does (its ``_read_csv_chunks``: ``TextReader.load_buffer`` of a view of the bytes, then ``read``): no copy of the
block, no reader built per block, no reassembly of the reader's internal chunks. That interface is pandas'
internal one (pinned in requirements.lock); where it is missing, each block goes through the public
``pandas.read_csv`` (:func:`parse_column`), which gives the same values, slower.
"""

from __future__ import annotations

import csv
import functools
import io
import threading
from collections import deque

import numpy as np

from ..core.logs import job_threads as parse_threads  # noqa: F401 - the parse runs on the job's threads

_OPTIONS = {"header": None, "dtype": np.float64, "engine": "c", "quoting": csv.QUOTE_NONE}


def chain(first, blocks):
    if len(first):
        yield first
    yield from blocks


def _failed():
    import pandas as pd

    return ValueError, pd.errors.ParserError, UnicodeDecodeError


def parse_column(block) -> np.ndarray | None:
    """The values of a block of lines holding one number each (blank lines skipped), by pandas' C reader; None
    when a line is anything else (the slow scan names it). Quotes are not special, no value is read as NaN
    unless written so (a non-finite value is found afterwards)."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(block), **_OPTIONS)
    except pd.errors.EmptyDataError:  # blank lines only
        return np.empty(0) if not bytes(block).strip() else None
    except _failed():
        return None
    return frame[0].to_numpy() if frame.shape[1] == 1 else None


class _Reused:
    """A pandas C reader of one column, given block after block (its thread's own)."""

    def __init__(self):
        import pandas as pd

        self.frames = pd.read_csv(io.BytesIO(b""), names=[0], iterator=True, low_memory=False, **_OPTIONS)
        self.reader = self.frames._engine._reader
        self.reader.trim_after_read = False  # its buffers serve the next block

    def parse(self, block) -> np.ndarray | None:
        if not len(block):
            return np.empty(0)
        try:
            self.reader.load_buffer(block)
            values = self.reader.read()
        except StopIteration:  # blank lines only
            return np.empty(0)
        except _failed():
            return None
        column = values.get(0)
        return column if len(values) == 1 and isinstance(column, np.ndarray) and column.dtype == np.float64 else None

    def close(self) -> None:
        self.frames.close()


@functools.cache  # the installed pandas's: probed once per process
def reusable() -> bool:
    """Whether this pandas takes block after block in one reader (:class:`_Reused`)."""
    try:
        _Reused().close()
        from pandas._libs.parsers import TextReader
    except Exception:  # an interface that is not there, or not as used here: the public read_csv instead
        return False
    return hasattr(TextReader, "load_buffer")


class _Parsers:
    """Parse blocks with one reader per thread (or :func:`parse_column` without :func:`reusable`)."""

    def __init__(self):
        self.local, self.readers, self.lock = threading.local(), [], threading.Lock()
        self.reuse = reusable()

    def __call__(self, block) -> np.ndarray | None:
        if not self.reuse:
            return parse_column(block)
        reader = getattr(self.local, "reader", None)
        if reader is None:
            reader = self.local.reader = _Reused()
            with self.lock:
                self.readers.append(reader)
        values = reader.parse(block)
        if values is None:  # its state after a failed read is not reused
            self.local.reader = None
        return values

    def close(self) -> None:
        for reader in self.readers:
            reader.close()


def window(threads: int) -> int:
    """How many more blocks :func:`parse_into` on ``threads`` threads may take before one it was given is parsed
    (the ``keep`` of :meth:`pbuf_data.read.rawio.BlockReader.blocks`): when it takes a block, the ``threads`` before
    it may still be parsed or waiting."""
    return threads if threads >= 2 else 0


def parse_into(out: np.ndarray, blocks, threads: int) -> bool:
    """Fill ``out`` with the values of ``blocks`` in order, parsed on ``threads`` threads (pandas' reader releases
    the interpreter lock while it tokenizes and converts); False when a block does not parse or the count is not
    ``out.size``. A block must stay unchanged until :func:`window` more have been taken."""
    pos = 0
    parse = _Parsers()

    def take(values) -> bool:
        nonlocal pos
        if values is None or pos + values.size > out.size:
            return False
        out[pos : pos + values.size] = values
        pos += values.size
        return True

    try:
        if threads < 2:
            return all(take(parse(block)) for block in blocks) and pos == out.size
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="pbuf-parse") as pool:
            pending = deque()
            for block in blocks:
                pending.append(pool.submit(parse, block))
                if len(pending) > threads and not take(pending.popleft().result()):
                    for future in pending:
                        future.cancel()
                    return False
            while pending:
                if not take(pending.popleft().result()):
                    for future in pending:
                        future.cancel()
                    return False
        return pos == out.size
    finally:
        parse.close()
