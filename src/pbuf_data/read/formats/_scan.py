"""What the tabulated-likelihood layouts share: ln L from the published values, the Gaussian summary of a table or
grid, and the dilation parameters of a BAO scan mapped to distances over r_d.

A scan in dilation parameters publishes chi2 (or a probability) against alpha = X / X_fid, X a BAO distance over
the sound horizon and X_fid its value in the analysis' fiducial cosmology. The published axis is turned into the
observable type X itself, X = alpha X_fid: a linear map, so a linear interpolation in X is the release reader's
linear interpolation in alpha. X_fid is given (``options ... fiducial``) as

``{value: X_fid}``
    the fiducial D/r_d itself (MontePython's ``transverse_fid`` and ``parallel_fid``);
``{D_M_Mpc | D_A_Mpc | D_V_Mpc: D, rs_fid_Mpc: r}``
    a fiducial distance in Mpc and the fiducial sound horizon: X_fid = D / r, times (1 + z) for a D_A given for a
    ``DM_over_rd`` axis, divided by (1 + z) for a D_M given for a ``DA_over_rd`` one (D_M = (1 + z) D_A);
``{H_km_s_Mpc: H, rs_fid_Mpc: r}``
    for a ``DH_over_rd`` axis: X_fid = c / (H r) (alpha_parallel = (H r_s)_fid / (H r_d)).

Any of these numbers may instead be a name, read from the entry's ``fiducial`` file: ``name value`` or
``name = value`` lines (MontePython's ``.data`` files write ``likelihood.name = value``; the part after the last dot
is the name), ``#`` comments.
"""

from __future__ import annotations

import re

import numpy as np

from ...model.cosmology import C_KM_S
from ._common import conversion

# the BAO types a dilation parameter scales, and which fiducial quantities may give their fiducial value
FIDUCIAL_KEYS = {
    "DM_over_rd": ("D_M_Mpc", "D_A_Mpc"),
    "DA_over_rd": ("D_A_Mpc", "D_M_Mpc"),
    "DV_over_rd": ("D_V_Mpc",),
    "DH_over_rd": ("H_km_s_Mpc",),
}
TO_LNL = {
    "chi2": ("ln L = -value / 2", lambda v: -0.5 * v),
    "delta_chi2": ("ln L = -value / 2", lambda v: -0.5 * v),
    "lnL": ("ln L = value", lambda v: v),
    "likelihood": ("ln L = ln(value)", np.log),
    "probability": ("ln L = ln(value)", np.log),
    "minus_lnL": ("ln L = -value", lambda v: -v),
}
SPLINE_DEGREE = {"linear": 1, "cubic": 3}
# the field's readers that interpolate that way (spline degree, interpolated quantity)
READERS = {
    (1, "lnL"): "MontePython's BOSS/eBOSS Lya scan likelihoods (scan_util: RectBivariateSpline kx=ky=1 of Delta chi2 "
    "in alpha) and CosmoSIS des-y3-bao (numpy.interp of chi2 in alpha)",
    (3, "lnL"): "Cobaya's bao.generic (prob_dist and grid_file: cubic splines of ln L)",
    (3, "likelihood"): "MontePython's bao_boss_aniso (RectBivariateSpline kx=ky=3 of the probability over its maximum, "
    "then ln)",
    (1, "likelihood"): "a linear interpolation of the probability, then ln",
}


def fiducial_problem(observable: str, spec: dict) -> str | None:
    """Why a fiducial spec cannot give the fiducial value of ``observable`` (None when it can)."""
    given = sorted(k for k in spec if k != "rs_fid_Mpc")
    if given == ["value"]:
        return None if "rs_fid_Mpc" not in spec else "a fiducial 'value' is D/r_d itself: rs_fid_Mpc has no use"
    if len(given) != 1 or given[0] not in FIDUCIAL_KEYS[observable]:
        return (f"the fiducial of a {observable} axis is {{value}} or one of {list(FIDUCIAL_KEYS[observable])} with "
                f"rs_fid_Mpc; found {given}")
    if "rs_fid_Mpc" not in spec:
        return f"fiducial {given[0]} needs rs_fid_Mpc (the fiducial sound horizon it is scaled by)"
    return None


def fiducial_file_values(raw) -> dict[str, tuple[float, int]]:
    """``name -> (value, line)`` of a fiducial file (``name value``, ``name = value``, ``a.b.name = value``)."""
    found = {}
    for line in raw.lines(comment="#"):
        text = " ".join(line.fields)
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=\s*|\s+)(\S+)", text)
        if not match:
            raise raw.error(f"expected 'name value' or 'name = value', found '{text[:60]}'", line=line.number,
                            check="fiducial file")
        name = match.group(1).rsplit(".", 1)[-1]
        if name in found:
            raise raw.error(f"fiducial '{name}' given twice (lines {found[name][1]} and {line.number})",
                            line=line.number, check="fiducial file")
        found[name] = (raw.number(match.group(2).strip("'\""), line.number, 2), line.number)
    return found


def fiducial_value(observable: str, spec: dict, z: float, files, where: str) -> tuple[float, dict]:
    """(X_fid, what it was computed from) of one axis; names are looked up in the ``fiducial`` file."""
    numbers, table = {}, None
    for key, value in spec.items():
        if isinstance(value, str):
            if "fiducial" not in files:
                raise _registry_error(files, f"{where}.{key} names '{value}' but the entry has no fiducial file")
            table = table or fiducial_file_values(files["fiducial"])  # read once for all its names
            if value not in table:
                raise files["fiducial"].error(f"{where}.{key}: no fiducial named '{value}' (the file gives "
                                              f"{sorted(table)})", check="fiducial file")
            numbers[key] = table[value][0]
            if not numbers[key] > 0:
                raise files["fiducial"].error(f"fiducial '{value}' = {numbers[key]!r} is not positive",
                                              line=table[value][1], check="fiducial > 0")
        else:
            numbers[key] = float(value)
    if "value" in numbers:
        return numbers["value"], numbers
    rs = numbers["rs_fid_Mpc"]
    if "H_km_s_Mpc" in numbers:
        return C_KM_S / (numbers["H_km_s_Mpc"] * rs), numbers
    (key,) = [k for k in numbers if k != "rs_fid_Mpc"]
    value = numbers[key] / rs
    if observable == "DM_over_rd" and key == "D_A_Mpc":
        value *= 1 + z
    elif observable == "DA_over_rd" and key == "D_M_Mpc":
        value /= 1 + z
    return value, numbers


def refuse_infinite_lnl(raw, lnl: np.ndarray, values: np.ndarray, numbers, column, quantity: str) -> None:
    """A ln L of -inf (a zero likelihood or probability) cannot be interpolated as ln L: the entry must interpolate
    the likelihood itself."""
    if quantity == "lnL" and not np.isfinite(lnl).all():
        i = int(np.flatnonzero(~np.isfinite(lnl))[0])
        raise raw.error(f"ln L is -inf at value {float(values[i])!r}: interpolate the likelihood "
                        "(options.interpolation.of: likelihood) to allow zeros", line=numbers[i], column=column,
                        check="finite ln L")


def interpolated_aux(prefix: str, quantity: str, lnl: np.ndarray, values: np.ndarray) -> dict:
    """The tabulated quantity the likelihood interpolates: ln L, or the likelihood over its maximum."""
    return {f"{prefix}.lnL": lnl} if quantity == "lnL" else {f"{prefix}.likelihood": values / values.max()}


def _registry_error(files, message):
    raw = next(iter(files.values()))
    return raw.error(message, check="registry")


def alpha_conversion(observable: str, fid: float, numbers: dict, z: float) -> dict:
    """The provenance record of alpha -> observable = alpha X_fid."""
    return conversion(
        "alpha_to_distance",
        f"dilation parameter alpha = {observable} / ({observable})_fid multiplied by the fiducial value "
        f"({observable})_fid = {fid!r} (from {numbers}, z = {z!r}) gives {observable}",
        "the release's definition of alpha (its fiducial cosmology); README, 'BAO scans in dilation parameters'",
        observable_type=observable, factor=fid, **{k: v for k, v in numbers.items()},
    )


def check_alpha(raw, alpha: np.ndarray, numbers, column) -> None:
    """A dilation parameter is positive (a ratio of distances)."""
    if (alpha <= 0).any():
        i = int(np.flatnonzero(alpha <= 0)[0])
        raise raw.error(f"alpha {float(alpha[i])!r} is not positive (a ratio of distances)", line=numbers[i],
                        column=column, check="alpha > 0")


def check_values(raw, values: np.ndarray, kind: str, numbers, column) -> np.ndarray:
    """The published values checked for their kind, turned into ln L (-inf where a probability is 0)."""
    if (values < 0).any() and kind in ("chi2", "delta_chi2", "likelihood", "probability"):
        i = int(np.flatnonzero(values < 0)[0])
        raise raw.error(f"negative {kind} {values[i]}", line=numbers[i], column=column, check=f"{kind} >= 0")
    if kind in ("likelihood", "probability") and not (values > 0).any():
        raise raw.error(f"the {kind} is zero on every row", column=column, check=f"{kind} > 0 somewhere")
    with np.errstate(divide="ignore"):
        return TO_LNL[kind][1](values)


def interpolation(options: dict, kind: str, raw) -> tuple[int, str]:
    """(spline degree, interpolated quantity) of ``options.interpolation``; a probability with zeros interpolates
    the probability (its ln is -inf there)."""
    spec = options["interpolation"]
    quantity = spec["of"]
    if quantity == "likelihood" and kind not in ("likelihood", "probability"):
        raise raw.error(f"interpolation.of 'likelihood' needs values 'likelihood' or 'probability', not '{kind}'",
                        check="registry")
    return SPLINE_DEGREE[spec["spline"]], quantity


def moments(axes, lnl):
    """Mean and covariance of exp(lnL) on the grid (trapezoidal weights; -inf gives weight 0)."""
    weights = np.exp(lnl - lnl[np.isfinite(lnl)].max())
    if len(axes) == 1:
        (x,) = axes
        norm = np.trapezoid(weights, x)
        mean = np.trapezoid(weights * x, x) / norm
        var = np.trapezoid(weights * (x - mean) ** 2, x) / norm
        return np.array([mean]), np.array([[var]])
    x, y = axes
    xx, yy = np.meshgrid(x, y, indexing="ij")

    def integrate(f):
        return np.trapezoid(np.trapezoid(f, y, axis=1), x)

    norm = integrate(weights)
    mx, my = integrate(weights * xx) / norm, integrate(weights * yy) / norm
    cxx = integrate(weights * (xx - mx) ** 2) / norm
    cyy = integrate(weights * (yy - my) ** 2) / norm
    cxy = integrate(weights * (xx - mx) * (yy - my)) / norm
    return np.array([mx, my]), np.array([[cxx, cxy], [cxy, cyy]])


def likelihood_metadata(form, kind, degree, quantity, axes, alphas: dict) -> dict:
    """The dataset's ``metadata.likelihood``: what :mod:`pbuf_data.model.likelihood` reads (form, spline_degree,
    interpolated) and what a reader is told (the interpolation, the grid, the fiducials of alpha)."""
    spline = {1: "linear", 3: "cubic"}[degree]
    what = "ln L" if quantity == "lnL" else "the likelihood (ln taken after; -inf where it is <= 0)"
    scipy = "UnivariateSpline s=0" if form == "table_1d" else "RectBivariateSpline"
    return {
        "form": form,
        "values": kind,
        "spline_degree": degree,
        "interpolated": quantity,
        "interpolation": f"{spline} spline of {what} (scipy {scipy}, degree {degree}), as {READERS[degree, quantity]}; "
        "a theory outside the grid is refused (the reader clamps to the edge)",
        "grid": [[float(a[0]), float(a[-1]), int(a.size)] for a in axes],
        "alpha_fiducial": alphas,
        "gaussian_summary": "observable/covariance are the mean and covariance of the normalized likelihood on the "
        "grid: a summary only; fit with loglike (the table)",
    }
