"""Dense square matrices too large for full-size temporaries (a 20,000-point covariance is 3.2 GB):
operations in place or by blocks of rows, and the Cholesky factor by blocks on threads."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from ..core.logs import job_threads

_BLOCK = 256  # rows per block
SCAN_BYTES = 1 << 19  # bytes of a matrix read at a time by scan (a slice that stays in the cache)


def _on_threads(task, items) -> list:
    """``task(item)`` for each of ``items``, on the job's threads (numpy leaves the interpreter lock while it
    computes): the results in order."""
    threads = min(job_threads(), len(items))
    if threads < 2:
        return [task(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads, thread_name_prefix="pbuf-matrix") as pool:
        return list(pool.map(task, items))


def _blocks(n: int) -> range:
    """The starts of the blocks of _BLOCK rows and columns: block i is the row strip right of the diagonal and the
    column strip below it, disjoint from every other block's."""
    return range(0, n, _BLOCK)


def max_abs_asymmetry(matrix: np.ndarray) -> float:
    """max |C - C^T|: NaN if an entry is NaN (or two infinities face each other), wherever it is."""

    def block(i: int) -> float:
        with np.errstate(invalid="ignore"):  # inf - inf
            return float(np.max(np.abs(matrix[i : i + _BLOCK, i:] - matrix[i:, i : i + _BLOCK].T)))

    values = _on_threads(block, _blocks(matrix.shape[0]))
    return float(np.max(values)) if values else 0.0


def symmetrize(matrix: np.ndarray) -> None:
    """(C + C^T) / 2 in place, block by block."""

    def block(i: int) -> None:
        mean = 0.5 * (matrix[i : i + _BLOCK, i:] + matrix[i:, i : i + _BLOCK].T)
        matrix[i : i + _BLOCK, i:] = mean
        matrix[i:, i : i + _BLOCK] = mean.T

    _on_threads(block, _blocks(matrix.shape[0]))


def scan(matrix: np.ndarray) -> tuple[float, float, float]:
    """min A, max A (NaN if any entry is: NaN propagates) and the 1-norm max_j sum_i |A_ij|, in one pass over
    slices of about SCAN_BYTES (each read once, while in the cache; no N x N temporary), the rows shared among the
    job's threads."""
    rows, cols = matrix.shape
    if not matrix.size:
        return float("inf"), float("-inf"), 0.0
    step = max(1, SCAN_BYTES // max(1, cols * matrix.itemsize))

    def part(span: range) -> tuple[float, float, np.ndarray]:
        low, high, sums = np.inf, -np.inf, np.zeros(cols)
        scratch = np.empty((step, cols))
        for start in span[::step]:
            piece = matrix[start : min(start + step, span.stop)]
            low, high = np.minimum(low, piece.min()), np.maximum(high, piece.max())  # NaN propagates
            sums += np.abs(piece, out=scratch[: len(piece)]).sum(axis=0)
        return low, high, sums

    count = max(1, min(job_threads(), rows // step))  # parts of at least a slice each
    spans = [range(rows * k // count, rows * (k + 1) // count) for k in range(count)]
    lows, highs, sums = zip(*_on_threads(part, spans))
    return float(np.min(lows)), float(np.max(highs)), float(np.sum(sums, axis=0).max())


def take_square(matrix: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``matrix[np.ix_(index, index)]`` for an ascending ``index``, written into the front of ``matrix``'s own
    buffer (the result is a view of it): no second N x N array.

    Row j of the result goes to flat positions [j m, (j + 1) m); the rows still to be read start at
    index[j + 1] N >= (j + 1) m, so no write reaches them.
    """
    n, m = matrix.shape[0], index.size
    if m == n:
        return matrix
    flat = matrix.reshape(-1)
    for j, i in enumerate(index.tolist()):
        flat[j * m : (j + 1) * m] = matrix[i, index]
    return flat[: m * m].reshape(m, m)


# Blocked Cholesky (cholesky_lower): columns per block, rows per task
BLOCK_COLUMNS, TASK_ROWS = 512, 256
_BLAS_LIMIT = threading.Lock()


@contextmanager
def one_blas_thread():
    """Every BLAS call of the process on one thread while in the block. threadpoolctl's limit is process-wide,
    and each limit restores on exit what it found on entry: two limits that overlapped in time would leave the
    process at the wrong count, so they are taken one at a time."""
    from threadpoolctl import threadpool_limits

    with _BLAS_LIMIT, threadpool_limits(1, user_api="blas"):
        yield


def cholesky_lower(matrix: np.ndarray, workers: int, *, overwrite: bool = False) -> np.ndarray:
    """The lower Cholesky factor L (C = L L^T) of a symmetric positive definite C, read from its lower triangle,
    computed on ``workers`` threads; ``numpy.linalg.LinAlgError`` when C is not square or a leading minor is not
    positive (as LAPACK's ``potrf``, a NaN is not found: the caller checks that C is finite). One new N x N
    array (C is not changed), or, with ``overwrite`` and a C-ordered writable float64 C, none: L is built in
    C's own buffer, which is returned (C's values are gone, also when it fails).

    The left-looking blocked algorithm (Golub & Van Loan, Matrix Computations, 4th ed., sec. 4.2), its level-3
    work spread over threads here instead of inside the BLAS. For each block of BLOCK_COLUMNS columns j: its rows
    from the diagonal down are updated by all the factor's columns to its left, ``A[j:, j] -= L[j:, :j] L[j, :j]^T``
    (``gemm``); LAPACK's ``potrf`` factors the diagonal block, and ``trsm`` gives the rows below it,
    ``L[i, j] = A[i, j] L[j, j]^-T``. The rows are cut into tasks of TASK_ROWS rows that the threads take in turn.
    Every BLAS call runs on one thread (:func:`one_blas_thread`): OpenBLAS 0.3.30-0.3.31, the library of the
    pinned numpy and scipy, dies with SIGSEGV in its own threaded ``potrf`` on an 18,741-row covariance (in the
    threaded ``syrk`` of ``dpotrf_parallel``).
    """
    from concurrent.futures import ThreadPoolExecutor
    from itertools import repeat

    from scipy.linalg import lapack, solve_triangular

    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise np.linalg.LinAlgError(f"a Cholesky factor needs a square matrix, not one of shape {matrix.shape}")
    n = matrix.shape[0]
    in_place = overwrite and matrix.dtype == np.float64 and matrix.flags.c_contiguous and matrix.flags.writeable
    a = matrix if in_place else np.array(matrix, dtype=np.float64, order="C")  # the factor is built in its lower triangle

    def update(rows: slice, block: slice) -> None:  # A[rows, block] -= L[rows, :block] L[block, :block]^T
        if block.start:
            a[rows, block] -= a[rows, : block.start] @ a[block, : block.start].T

    def solve(rows: slice, block: slice, diagonal: np.ndarray) -> None:  # L[rows, block] = A[rows, block] L11^-T
        update(rows, block)
        a[rows, block] = solve_triangular(diagonal, a[rows, block].T, lower=True, check_finite=False).T

    def tasks(first: int, last: int) -> list[slice]:
        return [slice(row, min(row + TASK_ROWS, last)) for row in range(first, last, TASK_ROWS)]

    with one_blas_thread(), ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, n, BLOCK_COLUMNS):
            block = slice(start, min(start + BLOCK_COLUMNS, n))
            list(pool.map(update, tasks(block.start, block.stop), repeat(block)))
            diagonal, info = lapack.dpotrf(a[block, block], lower=1, clean=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"leading minor of order {start + info} is not positive definite")
            a[block, block] = diagonal
            list(pool.map(solve, tasks(block.stop, n), repeat(block), repeat(diagonal)))
    for start in range(0, n, BLOCK_COLUMNS):  # the upper triangle, untouched by the algorithm, is the factor's zeros
        stop = start + BLOCK_COLUMNS
        a[start:stop, stop:] = 0.0
        a[start:stop, start:stop] = np.tril(a[start:stop, start:stop])
    return a
