"""Validation of a derived dataset: every check with its value, threshold and verdict.

A check's verdict is ``pass``, ``warn`` (recorded, the dataset is still
published) or ``error`` (the dataset is not published). Thresholds come from
the workflow configuration (``validation`` block); no check depends on the
dataset's name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from .dataset import Dataset

# Physically sensible ranges per observable type (inclusive).
PHYSICAL_RANGES = {
    "mu": (20.0, 55.0),
    "m_b_corr": (0.0, 40.0),
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
}

DEFAULT_THRESHOLDS = {
    "z_min": 0.0,
    "z_max": 1200.0,
    "symmetry_rtol": 1.0e-10,
    "condition_warn": 1.0e10,
    "condition_error": 1.0e14,
    "diag_vs_uncertainty_rtol": 0.01,
}


@dataclass
class Check:
    name: str
    verdict: str  # pass | warn | error
    value: object
    threshold: object
    message: str


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def validate_dataset(dataset: Dataset, *, expected_points: int | None = None, thresholds: dict | None = None) -> dict:
    """Run every check; return the report (a JSON-ready dict)."""
    t = dict(DEFAULT_THRESHOLDS, **(thresholds or {}))
    checks: list[Check] = []

    def add(name, ok, value, threshold, message, severity="error"):
        checks.append(Check(name, "pass" if ok else severity, _jsonable(value), _jsonable(threshold), message))

    n = len(dataset)
    add("non_empty", n > 0, n, "> 0", "dataset has points")
    for key in ("z", "observable", "uncertainty", "covariance"):
        bad = int(np.size(getattr(dataset, key)) - np.isfinite(getattr(dataset, key)).sum())
        add(f"finite_{key}", bad == 0, bad, 0, f"non-finite entries in {key}")
    lengths = {k: len(getattr(dataset, k)) for k in ("z", "observable", "uncertainty", "observable_type")}
    add("matching_lengths", len(set(lengths.values())) == 1, lengths, "all equal", "per-point arrays have one length")
    if expected_points is not None:
        add("expected_points", n == expected_points, n, expected_points, "point count the registry expects")
    z = dataset.z
    zr = [float(np.min(z)), float(np.max(z))] if n else [None, None]
    add("redshift_range", n and t["z_min"] <= zr[0] and zr[1] <= t["z_max"], zr, [t["z_min"], t["z_max"]], "redshifts in range")
    add("positive_uncertainty", n and bool((dataset.uncertainty > 0).all()), float(np.min(dataset.uncertainty)) if n else None, "> 0",
        "every uncertainty is positive")

    variances = dataset.covariance_diagonal
    if variances is None:
        variances = np.diagonal(dataset.covariance) if dataset.covariance.shape == (n, n) else np.zeros(n)
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
        # an error bar wider than the whole physical range is not a measurement (e.g. sigma = 1e150)
        widest = float(np.max(np.maximum(dataset.uncertainty[sel], np.sqrt(np.abs(variances[sel])))))
        add(f"uncertainty_range[{otype}]", bool(widest <= bounds[1] - bounds[0]), widest, bounds[1] - bounds[0],
            f"{otype} uncertainties (sigma and sqrt of the covariance diagonal) at most the width of the physical range")

    cov = dataset.covariance
    square = cov.ndim == 2 and cov.shape == (n, n)
    add("covariance_square", square, list(cov.shape), [n, n], "covariance is N x N")
    if square and n and np.isfinite(cov).all():
        scale = float(np.max(np.abs(cov))) or 1.0
        asym = float(np.max(np.abs(cov - cov.T))) / scale
        add("covariance_symmetric", asym <= t["symmetry_rtol"], asym, t["symmetry_rtol"], "max |C - C^T| / max |C|")
        try:
            np.linalg.cholesky(cov)
            pd = True
        except np.linalg.LinAlgError:
            pd = False
        add("covariance_positive_definite", pd, pd, True, "Cholesky factorization succeeds")
        if pd:
            eig = np.linalg.eigvalsh(cov)
            cond = float(eig[-1] / eig[0])
            verdict_ok = cond <= t["condition_warn"]
            severity = "error" if cond > t["condition_error"] else "warn"
            add("covariance_condition_number", verdict_ok, cond, [t["condition_warn"], t["condition_error"]],
                "largest / smallest eigenvalue (warn, error)", severity)
        diag = np.diag(cov)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(np.sqrt(np.clip(diag, 0, None)) - dataset.uncertainty) / dataset.uncertainty
        worst = float(np.nanmax(rel)) if n else 0.0
        add("diag_covariance_vs_uncertainty", worst <= t["diag_vs_uncertainty_rtol"], worst, t["diag_vs_uncertainty_rtol"],
            "max |sqrt(C_ii) - sigma_i| / sigma_i", "warn")

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


def report_text(report: dict) -> str:
    """Short human-readable form of a report."""
    lines = [f"{report['dataset']}: {report['verdict'].upper()} ({report['n_points']} points, "
             f"{report['n_errors']} errors, {report['n_warnings']} warnings)"]
    for c in report["checks"]:
        mark = {"pass": "ok  ", "warn": "WARN", "error": "FAIL"}[c["verdict"]]
        lines.append(f"  [{mark}] {c['name']}: value={json.dumps(c['value'])} threshold={json.dumps(c['threshold'])}"
                     + ("" if c["verdict"] == "pass" else f" -- {c['message']}"))
    return "\n".join(lines) + "\n"


def summarize(reports: list[dict]) -> dict:
    """Validation summary across datasets."""
    return {
        "n_datasets": len(reports),
        "n_passed": sum(r["verdict"] != "failed" for r in reports),
        "n_failed": sum(r["verdict"] == "failed" for r in reports),
        "n_with_warnings": sum(r["verdict"] == "passed with warnings" for r in reports),
        "datasets": {
            r["dataset"]: {
                "verdict": r["verdict"],
                "n_points": r["n_points"],
                "warnings": [c["name"] for c in r["checks"] if c["verdict"] == "warn"],
                "errors": [c["name"] for c in r["checks"] if c["verdict"] == "error"],
            }
            for r in reports
        },
    }
