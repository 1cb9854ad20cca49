"""The generic matrix vocabulary of the layouts: a square text matrix read as a covariance, its inverse, or a
correlation matrix with the 1-sigma errors of a table; a covariance file in any of the layouts below, giving
what its entry says it gives (nothing is assumed), times a stated scale factor.
"""

from __future__ import annotations

import numpy as np

from ...model.matrix import max_abs_asymmetry, symmetrize, take_square


def from_inverse(raw, n: int) -> tuple[np.ndarray, float]:
    """C from a published inverse covariance (n x n): checked positive definite, inverted, symmetrized as (C + C^T)/2.

    Returns C and max |C^-1 - C^-T| of the input."""
    inverse = raw.matrix(n)
    full = _inverted(raw, inverse, 0.5 * (inverse + inverse.T))
    return 0.5 * (full + full.T), float(np.max(np.abs(inverse - inverse.T)))


def _inverted(raw, inverse: np.ndarray, symmetric: np.ndarray) -> np.ndarray:
    """The covariance a published inverse covariance gives: inv(``inverse``), once its symmetric part
    (``symmetric``: ``inverse`` itself when it is symmetric) is proven positive definite."""
    try:
        np.linalg.cholesky(symmetric)
    except np.linalg.LinAlgError:
        raise raw.error("inverse covariance is not positive definite", check="positive definite") from None
    return np.linalg.inv(inverse)


def from_correlation(raw, sigma: np.ndarray) -> np.ndarray:
    """C_ij = rho_ij sigma_i sigma_j from a correlation matrix (unit diagonal) of the size of ``sigma``."""
    corr = raw.matrix(len(sigma))
    if not np.allclose(np.diag(corr), 1.0):
        raise raw.error("correlation matrix diagonal is not 1", check="correlation diagonal")
    return corr * np.outer(sigma, sigma)


# -- a covariance file and what it gives (registry option ``covariance`` of the layouts that read one, its values
# restricted by the schema's $defs/matrix_file) ------------------------------------------------------------------
# layouts of a square matrix file: ``counted``, line 1 N then N*N values one per line (Pantheon+, DES-SN5YR);
# ``square``, N rows of N values without a leading N (MontePython's Union2); ``packed_upper_npz``, the upper
# triangle, row-major, in one key of a NumPy .npz archive. What the matrix gives: the ``covariance`` itself; its
# ``inverse`` (precision) matrix; the ``systematic_only`` part, to which the table's own sigma^2 are added on the
# diagonal (Cobaya sn.desy5: pre_vars = MUERR^2)


def read_square(raw, spec: dict, n: int) -> np.ndarray:
    """The n x n matrix of ``raw`` in the layout ``spec['layout']``, times ``spec['scale']``."""
    layout = spec["layout"]
    if layout == "counted":
        matrix = raw.counted_matrix(n)
    elif layout == "square":
        matrix = raw.matrix(n)
    else:  # packed_upper_npz
        matrix = _packed_upper(raw, spec["npz_key"], n)
    if spec["scale"] != 1:
        with np.errstate(over="ignore"):  # a value taken beyond float64 is refused by covariance_from_file
            matrix *= spec["scale"]
    return matrix


def _packed_upper(raw, key: str, n: int) -> np.ndarray:
    """An upper triangle packed row-major (M_00, M_01, ..., M_0n-1, M_11, ...) in key ``key`` of an .npz archive
    (float32 or float64; no pickles), mirrored to the full symmetric n x n matrix in float64."""
    import io
    import zipfile

    if raw.data is None:
        raise raw.error("an .npz matrix is read up to 64 MiB", check="size limit")
    try:
        with np.load(io.BytesIO(raw.data), allow_pickle=False) as archive:
            if key not in archive.files:
                raise raw.error(f"no key '{key}' in the .npz archive (keys: {archive.files})", check="npz key")
            packed = archive[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise raw.error(f"not a readable .npz archive: {exc}", check="npz") from None
    if packed.dtype not in (np.float32, np.float64) or packed.ndim != 1:
        raise raw.error(f"key '{key}' holds {packed.dtype} of shape {packed.shape}; expected a 1-D float32 or float64 "
                        "upper triangle", check="npz dtype")
    if packed.size != n * (n + 1) // 2:
        raise raw.error(f"key '{key}' holds {packed.size} values; the upper triangle of {n} x {n} has {n * (n + 1) // 2}",
                        check="matrix shape")
    return _from_upper(packed.astype(np.float64), n)


def _from_upper(values: np.ndarray, n: int) -> np.ndarray:
    """The symmetric N x N matrix of its upper triangle, row by row."""
    matrix = np.zeros((n, n))
    matrix[np.triu_indices(n)] = values
    lower = np.tril_indices(n, -1)
    matrix[lower] = matrix.T[lower]
    return matrix


def covariance_from_file(raw, spec: dict, sigma: np.ndarray, index: np.ndarray | None = None):
    """The covariance a matrix file gives, as ``spec['gives']`` says, for the rows ``index`` (ascending; None: all):
    (C, the max |M - M^T| of the file's matrix, a sentence saying how C was made). ``sigma`` is the table's own
    error column for every row of the file (``systematic_only``: C = M + diag(sigma^2)). Sub-selection and
    symmetrization happen in place: one N x N array (two for an inverse)."""
    n = len(sigma)
    matrix = read_square(raw, spec, n)
    asymmetry = max_abs_asymmetry(matrix)
    if not np.isfinite(asymmetry):  # a NaN or an infinity (a binary file's, or a value the scale took beyond float64)
        raise raw.error(f"the matrix (times its scale {spec['scale']:g}) holds entries that are not finite numbers",
                        check="finite")
    symmetric = asymmetry == 0.0  # (C + C^T) / 2 is then C itself (a 0.0 facing a -0.0 is kept as written)
    gives = spec["gives"]
    scaled = f" times {spec['scale']:g}" if spec["scale"] != 1 else ""
    if gives == "covariance":
        how = f"the {spec['layout']} covariance matrix of {raw.name}{scaled}"
    elif gives == "inverse":
        if not symmetric:
            symmetrize(matrix)
        matrix = _inverted(raw, matrix, matrix)
        symmetric = False  # an inverse computed is symmetric only to rounding
        how = f"the inverse of the {spec['layout']} precision matrix of {raw.name}{scaled}"
    else:  # systematic_only
        how = (f"the {spec['layout']} systematic-only matrix of {raw.name}{scaled} plus diag(sigma^2) of the "
               "table's error column")
    if index is not None:
        matrix = take_square(matrix, np.asarray(index))
    if not symmetric:
        symmetrize(matrix)
    if gives == "systematic_only":
        kept = sigma if index is None else sigma[index]
        matrix[np.diag_indices(len(kept))] += kept**2
    return matrix, asymmetry, how + ", rows and columns of the kept points, symmetrized as (C + C^T)/2"


def mock_matrix_file(written: np.ndarray, text: str, spec: dict | None, sigma: np.ndarray, path: str):
    """A mock covariance file in the form ``spec`` says (None: counted, the covariance itself), from the covariance
    ``written`` of the default file ``text`` (counted, 6 digits): (the file's content, str or bytes; the covariance
    a reader derives from it; the error column the table must carry). ``sigma`` is the statistical error a
    ``systematic_only`` table keeps (the matrix then holds the rest); a path ending in ``.gz`` is gzip-compressed."""
    import gzip
    import io

    from ._mock import as_written, lines, matrix_text

    spec = spec or {"layout": "counted", "gives": "covariance", "scale": 1}
    if (spec["layout"], spec["gives"], spec.get("scale", 1)) == ("counted", "covariance", 1) and not path.endswith(".gz"):
        return text, written, np.sqrt(np.diag(written))
    n = written.shape[0]
    _, error = as_written(sigma, ".6g") if spec["gives"] == "systematic_only" else (None, None)
    matrix = written - np.diag(error**2) if spec["gives"] == "systematic_only" else written
    if spec["gives"] == "inverse":
        matrix = np.linalg.inv(written)
        matrix = 0.5 * (matrix + matrix.T)
    matrix = matrix / spec.get("scale", 1)
    if spec["layout"] == "packed_upper_npz":
        values = matrix[np.triu_indices(n)]
        buffer = io.BytesIO()
        np.savez(buffer, **{spec["npz_key"]: values})
        content, stored = buffer.getvalue(), _from_upper(values, n)
    else:
        strings, stored = as_written(matrix, ".10g")
        content = lines([str(n), *strings] if spec["layout"] == "counted" else matrix_text(strings, n))
    stored = 0.5 * (stored + stored.T) * spec.get("scale", 1)
    if spec["gives"] == "inverse":
        effective = np.linalg.inv(stored)
    elif spec["gives"] == "systematic_only":
        effective = stored + np.diag(error**2)
    else:
        effective = stored
    effective = 0.5 * (effective + effective.T)
    if path.endswith(".gz"):
        content = gzip.compress(content if isinstance(content, bytes) else content.encode(), mtime=0)
    return content, effective, (error if spec["gives"] == "systematic_only" else np.sqrt(np.diag(effective)))
