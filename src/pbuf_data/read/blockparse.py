"""Numbers written one per line, parsed block by block by pandas' C reader, on several threads.

The reader of a large covariance (:meth:`pbuf_data.read.textio.RawFile.counted_matrix`) reads a file once, in blocks
of whole lines that it hashes as it reads them, and hands them here: each block is parsed by pandas' C reader
(which releases the interpreter lock while it tokenizes and converts), on the job's threads, into one
preallocated array. A block that is anything but one number a line gives up (the caller then scans the file
line by line to name the problem).
"""

from __future__ import annotations

import csv
import io
from collections import deque

import numpy as np

from ..core.logs import job_threads as parse_threads  # noqa: F401 - the parse runs on the job's threads


def chain(first: bytes, blocks):
    if first:
        yield first
    yield from blocks


def parse_column(block: bytes) -> np.ndarray | None:
    """The values of a block of lines holding one number each (blank lines skipped), by pandas' C reader; None
    when a line is anything else (the slow scan names it). Quotes are not special, no value is read as NaN
    unless written so (a non-finite value is found afterwards)."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(block), header=None, dtype=np.float64, engine="c", quoting=csv.QUOTE_NONE)
    except pd.errors.EmptyDataError:  # blank lines only
        return np.empty(0) if not block.strip() else None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    return frame[0].to_numpy() if frame.shape[1] == 1 else None


def parse_into(out: np.ndarray, blocks, threads: int) -> bool:
    """Fill ``out`` with the values of ``blocks`` in order, parsed on ``threads`` threads (pandas' reader releases
    the interpreter lock while it tokenizes and converts); False when a block does not parse or the count is not
    ``out.size``. At most ``threads + 1`` blocks are parsed or waiting at a time."""
    pos = 0

    def take(values) -> bool:
        nonlocal pos
        if values is None or pos + values.size > out.size:
            return False
        out[pos : pos + values.size] = values
        pos += values.size
        return True

    if threads < 2:
        return all(take(parse_column(block)) for block in blocks) and pos == out.size
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads, thread_name_prefix="pbuf-parse") as pool:
        pending = deque()
        for block in blocks:
            pending.append(pool.submit(parse_column, block))
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
