"""Dense square matrices too large for full-size temporaries (a 20,000-point covariance is 3.2 GB):
operations in place or by blocks of rows."""

from __future__ import annotations

import numpy as np

_BLOCK = 256  # rows per block


def max_abs_asymmetry(matrix: np.ndarray) -> float:
    """max |C - C^T|."""
    worst = 0.0
    for i in range(0, matrix.shape[0], _BLOCK):
        worst = max(worst, float(np.max(np.abs(matrix[i : i + _BLOCK, i:] - matrix[i:, i : i + _BLOCK].T))))
    return worst


def symmetrize(matrix: np.ndarray) -> None:
    """(C + C^T) / 2 in place, block by block."""
    for i in range(0, matrix.shape[0], _BLOCK):
        mean = 0.5 * (matrix[i : i + _BLOCK, i:] + matrix[i:, i : i + _BLOCK].T)
        matrix[i : i + _BLOCK, i:] = mean
        matrix[i:, i : i + _BLOCK] = mean.T


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
