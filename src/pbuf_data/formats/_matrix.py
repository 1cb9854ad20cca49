"""The generic matrix vocabulary of the layouts: a square text matrix read as a covariance, its inverse, or a
correlation matrix with the 1-sigma errors of a table.
"""

from __future__ import annotations

import numpy as np


def from_inverse(raw, n: int) -> tuple[np.ndarray, float]:
    """C from a published inverse covariance (n x n): checked positive definite, inverted, symmetrized as (C + C^T)/2.

    Returns C and max |C^-1 - C^-T| of the input."""
    inverse = raw.matrix(n)
    try:
        np.linalg.cholesky(0.5 * (inverse + inverse.T))
    except np.linalg.LinAlgError:
        raise raw.error("inverse covariance is not positive definite", check="positive definite") from None
    full = np.linalg.inv(inverse)
    return 0.5 * (full + full.T), float(np.max(np.abs(inverse - inverse.T)))


def from_correlation(raw, sigma: np.ndarray) -> np.ndarray:
    """C_ij = rho_ij sigma_i sigma_j from a correlation matrix (unit diagonal) of the size of ``sigma``."""
    corr = raw.matrix(len(sigma))
    if not np.allclose(np.diag(corr), 1.0):
        raise raw.error("correlation matrix diagonal is not 1", check="correlation diagonal")
    return corr * np.outer(sigma, sigma)
