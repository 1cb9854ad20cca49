"""Validation of a derived dataset: every check with its value, threshold and verdict.

A check's verdict is ``pass``, ``warn`` (recorded, the dataset is still
published) or ``error`` (the dataset is not published). Thresholds come from
the workflow configuration (``validation`` block); no check depends on the
dataset's name.

The covariance checks cost O(N^2) memory passes plus one Cholesky factorization
(which proves positive definiteness), on the job's threads for large covariances
(:func:`cholesky_factor`); the condition number is LAPACK's estimate from that
factor (:func:`condition_number`, O(N^2)).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from ..model.dataset import Dataset
from ..model.matrix import cholesky_lower, max_abs_asymmetry, one_blas_thread, scan

# Physically sensible ranges per observable type (inclusive).
# SN magnitudes, whose releases may de-weight points by inflating their errors
DEWEIGHTED_TYPES = frozenset({"mu", "m_b_corr", "mu_offset_free"})
PHYSICAL_RANGES = {
    "mu": (20.0, 55.0),
    "m_b_corr": (0.0, 40.0),
    "mu_offset_free": (10.0, 65.0),  # a distance modulus plus an arbitrary offset of a few magnitudes at most
    "DM_over_rd": (0.1, 100.0),
    "DH_over_rd": (0.1, 100.0),
    "DV_over_rd": (0.1, 100.0),
    "DA_over_rd": (0.1, 100.0),
    "rd_over_DV": (0.01, 10.0),
    "H_times_rd": (5.0e3, 1.0e5),
    "R": (1.0, 3.0),
    "l_A": (200.0, 400.0),
    "omega_b_h2": (0.005, 0.05),
    "n_s": (0.8, 1.2),
    "H": (1.0, 1000.0),
    "fsigma8": (0.0, 2.0),
    "rs_EH98_over_DV": (0.01, 10.0),
    "theta_BAO_deg": (0.01, 90.0),  # r_d / D_M in degrees: about 20 at z = 0.1, 2 at z = 1
}
# observable types that are not measurements at a fixed redshift (CMB priors): their z is NaN
NO_FIXED_REDSHIFT = {"R", "l_A", "omega_b_h2", "n_s"}

DEFAULT_THRESHOLDS = {
    "z_min": 0.0,
    "z_max": 1200.0,
    "symmetry_rtol": 1.0e-10,
    "condition_warn": 1.0e10,
    "condition_error": 1.0e14,
    "diag_vs_uncertainty_rtol": 0.01,
    # |data - fiducial| / sigma of the worst point of each observable type: beyond pull_warn a warning, beyond
    # pull_error an error naming the point. The shipped real corpus peaks at 3.8 (one Pantheon+ SN; BAO 3.0, CMB 0.2
    # in the priors' convention), the mocks at 3.4; swapped or mislabelled axes sit at tens to hundreds
    "pull_warn": 4.0,
    "pull_error": 10.0,
    "published_sigma_rtol": 0.01,
}


@dataclass
class Check:
    name: str
    verdict: str  # pass | warn | error
    value: object
    threshold: object
    message: str


# below this size the Cholesky factor is numpy's (cholesky_factor) and the condition number exact (condition_number)
EXACT_CONDITION_BELOW = 500


# From this many rows on, a job given two or more threads factors the covariance by blocks on its threads
# (pbuf_data.model.matrix.cholesky_lower; below, one thread is as fast). A dataset's job is given two when its raw files
# hold PARALLEL_FROM_BYTES or more (threads_for): a covariance of about 2,400 points in the Pantheon+ text layout
# (12 bytes a value), read from disk by its parse in blocks that the job's threads parse side by side
# (pbuf_data.read.textio.RawFile.counted_matrix), the larger part of the job up to about 10,000 points.
BLOCKED_FROM = 4000
PARALLEL_FROM_BYTES = 64 * 2**20


def threads_for(raw_bytes: int) -> int:
    """Threads of a dataset's job whose raw files hold ``raw_bytes``: two where the parse of a large covariance
    (O(N^2), on the job's threads) and the Cholesky of validation (O(N^3)) make most of the job, one otherwise (a
    second core reserved for the whole job would mostly wait)."""
    return 2 if raw_bytes >= PARALLEL_FROM_BYTES else 1


def raw_size(paths) -> int:
    """Bytes in the files of ``paths`` (of :func:`threads_for`); a file not there yet (a mock file, a retrieval)
    counts as empty."""
    size = 0
    for path in paths:
        try:
            size += os.path.getsize(path)
        except OSError:
            pass
    return size


def blas_threads() -> int:
    """Threads the BLAS libraries loaded in this process were given: a job's threads (Snakemake sets
    OPENBLAS_NUM_THREADS and the like to them), the machine's cores elsewhere."""
    from threadpoolctl import threadpool_info

    return max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)


def cholesky_factor(covariance: np.ndarray, workers: int | None = None, *, overwrite: bool = False) -> np.ndarray:
    """The lower Cholesky factor L of C = L L^T from C's lower triangle; ``numpy.linalg.LinAlgError`` when C
    is not positive definite. From :data:`EXACT_CONDITION_BELOW` rows on, one new N x N array, or none with
    ``overwrite`` (C's own buffer then holds L, a C-ordered float64 C: its values are gone, failed or not):
    - from :data:`BLOCKED_FROM` rows on, with ``workers`` (default :func:`blas_threads`) of two or more, by
      blocks on that many threads (:func:`pbuf_data.model.matrix.cholesky_lower`);
    - otherwise LAPACK's ``potrf`` (scipy) on one thread, reading C's own buffer as its transpose, a
      Fortran-order array (``numpy.linalg.cholesky`` copies the input to Fortran order first: 3 matrices).
      OpenBLAS's own threaded ``potrf`` is not used: it crashes on large matrices
      (:func:`pbuf_data.model.matrix.cholesky_lower`)."""
    n = covariance.shape[0]
    if n < EXACT_CONDITION_BELOW:
        return np.linalg.cholesky(covariance)
    if n >= BLOCKED_FROM:
        workers = blas_threads() if workers is None else workers
        if workers >= 2:
            return cholesky_lower(covariance, workers, overwrite=overwrite)
    from scipy.linalg import cholesky

    # U with C^T = U^T U from the upper triangle of C^T, which is the lower triangle of C; L = U^T
    in_place = overwrite and covariance.dtype == np.float64 and covariance.flags.c_contiguous and covariance.flags.writeable
    with one_blas_thread():
        return cholesky(covariance.T, lower=False, check_finite=False, overwrite_a=in_place).T


def one_norm(matrix: np.ndarray) -> float:
    """max_j sum_i |A_ij| (:func:`scan`)."""
    return scan(matrix)[2]


def condition_number(covariance: np.ndarray, factor: np.ndarray, anorm: float | None = None) -> float:
    """The 1-norm condition number ||C||_1 ||C^-1||_1 of a symmetric positive definite matrix, as LAPACK
    estimates it from its Cholesky factor (``dpocon``): ||C||_1 exactly (O(N^2)), ||C^-1||_1 by Higham's
    estimator (a few pairs of triangular solves with the factor, O(N^2) each; a lower bound, almost always
    within a factor of 3 of it and usually equal). ``factor`` is the lower factor L (C = L L^T), read in place
    (as the upper factor L^T of a Fortran-order array when L is C-ordered: no copy). An infinite value: the
    estimate of 1 / condition is 0 (singular to working precision). Below :data:`EXACT_CONDITION_BELOW` rows,
    the exact value from the inverse (numpy; a small dataset's job does not import scipy for it). ``anorm``:
    ||C||_1 if known (C's buffer may since hold the factor, from :data:`EXACT_CONDITION_BELOW` rows on)."""
    anorm = one_norm(covariance) if anorm is None else anorm
    if covariance.shape[0] < EXACT_CONDITION_BELOW:
        with np.errstate(all="ignore"):
            inverse = np.linalg.inv(covariance)
        return float(anorm * one_norm(inverse)) if np.isfinite(inverse).all() else float("inf")
    from scipy.linalg.lapack import dpocon

    if factor.T.flags.f_contiguous:
        rcond, info = dpocon(factor.T, anorm, uplo="U")
    else:
        rcond, info = dpocon(np.asfortranarray(factor), anorm, uplo="L")
    if info != 0:
        raise ValueError(f"dpocon: argument {-info} is invalid")
    return float(1.0 / rcond) if rcond > 0 else float("inf")


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def fiducial_pulls(dataset: Dataset, fiducial) -> np.ndarray:
    """(observable - fiducial) / uncertainty per point; a free magnitude offset (SN m_b_corr, offset-free mu) at its
    best inverse-variance weighted value, per member of a combination. ``fiducial`` is a
    :class:`~pbuf_data.model.cosmology.Fiducial` or the configuration's ``fiducial_cosmology`` block."""
    from ..model.cosmology import Fiducial
    from ..model.likelihood import OFFSET_FREE_TYPES
    from ..read.formats._common import best_offsets, predict_by_type

    if isinstance(fiducial, dict):
        fiducial = Fiducial.from_config(fiducial)
    model = best_offsets(dataset, np.asarray(predict_by_type(dataset, fiducial), dtype=np.float64), OFFSET_FREE_TYPES)
    return (dataset.observable - model) / dataset.uncertainty


def _pull_checks(dataset: Dataset, fiducial, t: dict, add) -> None:
    """One check per observable type: the worst point's pull against the fiducial (warn, error thresholds)."""
    try:
        pulls = fiducial_pulls(dataset, fiducial)
    except ValueError as exc:  # a type with no fiducial prediction
        add("fiducial_pull", False, str(exc), "a fiducial prediction for every type", str(exc), "warn")
        return
    limits = [t["pull_warn"], t["pull_error"]]
    for otype in sorted(set(dataset.observable_type.tolist())):
        index = np.flatnonzero(dataset.observable_type == otype)
        i = int(index[np.argmax(np.abs(pulls[index]))])
        worst = float(pulls[i])
        where = "" if not np.isfinite(dataset.z[i]) else f" at z = {dataset.z[i]:g}"
        point = (f"point {i} ({otype}{where}: {dataset.observable[i]:.6g} +/- {dataset.uncertainty[i]:.3g}, "
                 f"fiducial {dataset.observable[i] - worst * dataset.uncertainty[i]:.6g})")
        severity = "error" if abs(worst) > t["pull_error"] else "warn"
        add(f"fiducial_pull[{otype}]", abs(worst) <= t["pull_warn"], {"point": i, "pull": worst}, limits,
            f"{point} is {worst:+.1f} sigma from the configured fiducial cosmology (warn, error beyond "
            f"{limits}): a swapped axis, a unit or a label that does not match the values?", severity)


def validate_dataset(dataset: Dataset, *, expected_points: int | None = None, thresholds: dict | None = None,
                     fiducial=None, factor_in_place: bool = False, before_overwrite=None) -> dict:
    """Run every check; return the report (a JSON-ready dict). With ``fiducial`` (a Fiducial or the
    configuration's ``fiducial_cosmology`` block) each observable type's worst pull against it is a check.
    With ``factor_in_place`` the covariance's own buffer takes its Cholesky factor (no second N x N array):
    for a dataset not used after its validation (a job's, once its staged archive is written), whose covariance
    is garbage afterwards; ``before_overwrite()`` is called first (every check reading the covariance's values is
    done before it but the comparison of its diagonal, kept aside)."""
    t = dict(DEFAULT_THRESHOLDS, **(thresholds or {}))
    checks: list[Check] = []

    def add(name, ok, value, threshold, message, severity="error"):
        checks.append(Check(name, "pass" if ok else severity, _jsonable(value), _jsonable(threshold), message))

    n = len(dataset)
    add("non_empty", n > 0, n, "> 0", "dataset has points")
    at_z = ~np.isin(dataset.observable_type, sorted(NO_FIXED_REDSHIFT))
    cov = dataset.covariance
    square = cov.ndim == 2 and cov.shape == (n, n)
    # the covariance's extremes and 1-norm in one pass: both extremes finite exactly when every entry is
    low, high, anorm = scan(cov) if square and n else (0.0, 0.0, 0.0)
    for key in ("z", "observable", "uncertainty", "covariance"):
        values = dataset.z[at_z] if key == "z" else getattr(dataset, key)
        # finite extremes (NaN propagates) mean every entry is: counted only otherwise (no N x N temporary)
        if key == "covariance" and square and n:
            finite = bool(np.isfinite([low, high]).all())
        else:
            finite = np.size(values) == 0 or bool(np.isfinite(np.min(values)) and np.isfinite(np.max(values)))
        bad = 0 if finite else int(np.size(values) - np.isfinite(values).sum())
        add(f"finite_{key}", bad == 0, bad, 0, f"non-finite entries in {key}")
    fixed = int(np.isfinite(dataset.z[~at_z]).sum())
    add("no_fixed_redshift", fixed == 0, fixed, 0,
        f"z is NaN for {sorted(NO_FIXED_REDSHIFT)} (evaluated at a redshift that depends on the cosmology)")
    lengths = {k: len(getattr(dataset, k)) for k in ("z", "observable", "uncertainty", "observable_type")}
    add("matching_lengths", len(set(lengths.values())) == 1, lengths, "all equal", "per-point arrays have one length")
    if expected_points is not None:
        add("expected_points", n == expected_points, n, expected_points, "point count the registry expects")
    z = dataset.z[at_z & np.isfinite(dataset.z)]
    zr = [float(np.min(z)), float(np.max(z))] if z.size else [None, None]
    add("redshift_range", not z.size or (t["z_min"] <= zr[0] and zr[1] <= t["z_max"]), zr, [t["z_min"], t["z_max"]],
        "redshifts in range")
    add("positive_uncertainty", n and bool((dataset.uncertainty > 0).all()), float(np.min(dataset.uncertainty)) if n else None, "> 0",
        "every uncertainty is positive")

    variances = dataset.covariance_diagonal
    if variances is None:
        variances = np.diag(dataset.covariance).copy() if dataset.covariance.shape == (n, n) else np.zeros(n)
    for otype in sorted(set(dataset.observable_type.tolist())):
        sel = dataset.observable_type == otype
        values = dataset.observable[sel]
        bounds = PHYSICAL_RANGES.get(otype)
        if bounds is None:
            add(f"physical_range[{otype}]", False, otype, sorted(PHYSICAL_RANGES), "unknown observable type")
            continue
        inside = bool(((values >= bounds[0]) & (values <= bounds[1])).all())
        add(f"physical_range[{otype}]", inside, [float(values.min()), float(values.max())], list(bounds),
            f"{otype} values within physical bounds")
        # an error bar wider than the whole physical range is not a measurement (e.g. sigma = 1e150): an error;
        # SN compilations de-weight unlikely SNe Ia by inflating their errors (DES-SN5YR: up to 450 mag), so for
        # SN magnitudes only beyond ten times the range is an error, and beyond the range a warning
        widest = float(np.max(np.maximum(dataset.uncertainty[sel], np.sqrt(np.abs(variances[sel])))))
        width = bounds[1] - bounds[0]
        if otype in DEWEIGHTED_TYPES:
            add(f"uncertainty_range[{otype}]", bool(widest <= width), widest, [width, 10 * width],
                f"{otype} uncertainties at most the width of the physical range (warn: de-weighted points), "
                "at most ten times it (error)", "error" if widest > 10 * width else "warn")
        else:
            add(f"uncertainty_range[{otype}]", bool(widest <= width), widest, width,
                f"{otype} uncertainties (sigma and sqrt of the covariance diagonal) at most the width of the "
                "physical range")

    if fiducial is not None and n and np.isfinite(dataset.observable).all() and (dataset.uncertainty > 0).all():
        _pull_checks(dataset, fiducial, t, add)

    add("covariance_square", square, list(cov.shape), [n, n], "covariance is N x N")
    if square and n and np.isfinite(low) and np.isfinite(high):
        scale = max(high, -low) or 1.0
        asym = max_abs_asymmetry(cov) / scale
        add("covariance_symmetric", asym <= t["symmetry_rtol"], asym, t["symmetry_rtol"], "max |C - C^T| / max |C|")
        diag = np.diag(cov).copy()
        if factor_in_place and before_overwrite is not None:
            before_overwrite()
        try:
            factor = cholesky_factor(cov, overwrite=factor_in_place)
            pd = True
        except np.linalg.LinAlgError:
            pd = False
        add("covariance_positive_definite", pd, pd, True, "Cholesky factorization succeeds")
        if pd:
            cond = condition_number(cov, factor, anorm)
            del factor
            verdict_ok = cond <= t["condition_warn"]
            severity = "error" if cond > t["condition_error"] else "warn"
            add("covariance_condition_number", verdict_ok, cond, [t["condition_warn"], t["condition_error"]],
                "1-norm condition number ||C||_1 ||C^-1||_1, LAPACK's estimate from the Cholesky factor (warn, error)",
                severity)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(np.sqrt(np.clip(diag, 0, None)) - dataset.uncertainty) / dataset.uncertainty
        worst = float(np.nanmax(rel)) if n else 0.0
        add("diag_covariance_vs_uncertainty", worst <= t["diag_vs_uncertainty_rtol"], worst, t["diag_vs_uncertainty_rtol"],
            "max |sqrt(C_ii) - sigma_i| / sigma_i", "warn")

    checks.extend(published_sigma_checks(dataset, variances, t["published_sigma_rtol"]))
    cov_info = dataset.metadata.get("covariance", {})
    if cov_info.get("warning"):
        add("covariance_complete", False, cov_info.get("source"), "full covariance", cov_info["warning"], "warn")
    unpinned = dataset.metadata.get("unpinned_raw_files")
    if unpinned:
        add("raw_files_pinned", False, unpinned, "every raw file pinned by sha256",
            "derived from unpinned raw files (allow_unpinned in the registry)", "warn")
    if dataset.metadata.get("likelihood"):
        add("gaussian_likelihood", False, dataset.metadata["likelihood"], "Gaussian", dataset.metadata["likelihood"], "warn")

    verdicts = [c.verdict for c in checks]
    verdict = "failed" if "error" in verdicts else ("passed with warnings" if "warn" in verdicts else "passed")
    return {
        "dataset": dataset.name,
        "kind": dataset.metadata.get("kind"),
        "verdict": verdict,
        "n_points": n,
        "n_errors": verdicts.count("error"),
        "n_warnings": verdicts.count("warn"),
        "checks": [asdict(c) for c in checks],
    }


def published_sigma_checks(dataset: Dataset, variances: np.ndarray, rtol: float) -> list[Check]:
    """The release's own error column (``column.sigma_published``, where the layout keeps it) against the
    covariance: every sqrt(C_ii) at least sigma_i (1 - rtol). A covariance that holds less than the file's own
    errors is not the total covariance (a systematic-only matrix taken as total, a wrong scale factor): an error.
    A sigma of 0 (all of the uncertainty in the covariance, as lcparam files write it) is not compared.
    ``variances``: the covariance's diagonal, as :func:`validate_dataset` reads it."""
    sigma = dataset.columns.get("sigma_published")
    if sigma is None or not len(dataset):
        return []
    sigma = np.asarray(sigma, dtype=float)
    compared = sigma > 0
    with np.errstate(invalid="ignore"):
        shortfall = np.where(compared, 1.0 - np.sqrt(np.clip(variances, 0, None)) / np.where(compared, sigma, 1.0), 0.0)
    worst = int(np.argmax(shortfall))
    ok = bool(shortfall[worst] <= rtol)
    message = ("sqrt(C_ii) >= sigma_i (1 - rtol) for the file's own error column on every point; "
               + ("it holds" if ok else f"point {worst} (z = {dataset.z[worst]:g}) fails: sqrt(C_ii) = "
                  f"{np.sqrt(max(variances[worst], 0.0)):.6g} < sigma = {sigma[worst]:.6g} (a systematic-only "
                  "matrix taken as the total covariance?)"))
    return [Check("covariance_vs_published_sigma", "pass" if ok else "error", float(shortfall[worst]), rtol, message)]


def report_text(report: dict) -> str:
    """Short human-readable form of a report."""
    lines = [f"{report['dataset']}: {report['verdict'].upper()} ({report['n_points']} points, "
             f"{report['n_errors']} errors, {report['n_warnings']} warnings)"]
    for c in report["checks"]:
        mark = {"pass": "ok  ", "warn": "WARN", "error": "FAIL"}[c["verdict"]]
        lines.append(f"  [{mark}] {c['name']}: value={json.dumps(c['value'])} threshold={json.dumps(c['threshold'])}"
                     + ("" if c["verdict"] == "pass" else f" -- {c['message']}"))
    return "\n".join(lines) + "\n"


STATES = ("published", "failed derive", "failed validation", "failed publication", "not run")


def summarize(datasets: dict[str, dict]) -> dict:
    """Summary across datasets. ``datasets`` maps each name to ``{"state", "reason", "report",
    "published_copy"}``: its state (one of STATES), why (for any state but published), its validation
    report (None if it has none) and whether a published copy exists (for a failure: the one kept)."""
    items = {}
    for name, item in datasets.items():
        report = item.get("report") or {}
        checks = report.get("checks", [])
        items[name] = {
            "state": item["state"],
            "reason": item.get("reason"),
            "verdict": report.get("verdict", "not validated"),
            "n_points": report.get("n_points", 0),
            "warnings": [c["name"] for c in checks if c["verdict"] == "warn"],
            "errors": [c["name"] for c in checks if c["verdict"] == "error"],
            "published_copy": bool(item.get("published_copy")),
        }
    states = [item["state"] for item in items.values()]
    return {
        "n_datasets": len(items),
        "n_published": states.count("published"),
        "n_failed": sum(state.startswith("failed") for state in states),
        "n_not_run": states.count("not run"),
        "n_passed": sum(item["verdict"] in ("passed", "passed with warnings") for item in items.values()),
        "n_with_warnings": sum(item["verdict"] == "passed with warnings" for item in items.values()),
        "datasets": items,
    }


def summary_text(summary: dict) -> str:
    """The summary as a table: one line per dataset with its state, and the reason of every failure."""
    lines = [f"{summary['n_published']}/{summary['n_datasets']} datasets published: {summary['n_failed']} failed, "
             f"{summary['n_not_run']} not run ({summary['n_with_warnings']} with warnings)"]
    for name, item in summary["datasets"].items():
        line = f"  {name:28s} {item['state']:18s} {item['n_points']:6d} points"
        if item["warnings"]:
            line += f" warnings: {', '.join(item['warnings'])}"
        if item["state"] != "published":
            kept = "; the previously published copy is kept" if item["published_copy"] else "; nothing published"
            line += f" -- {item['reason']}{kept}"
        lines.append(line)
    return "\n".join(lines) + "\n"
