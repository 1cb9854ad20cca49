"""Likelihoods published as tables or grids instead of Gaussians (format ``likelihood_table``).

Layouts (the ones Cobaya's ``bao.generic`` reads as ``prob_dist`` and ``grid_file``):

1-D
    one column of values on a grid declared in the entry (``grid: {min, max}``, N equally spaced points, e.g. the
    SDSS MGS chi2(alpha) file), or two columns ``x value`` (e.g. the eBOSS DR16 ELG D_V/r_d likelihood);
2-D
    three columns ``x y value`` on a rectangular grid, x varying slowest (e.g. the eBOSS DR16 Lyman-alpha
    (D_M/r_d, D_H/r_d) likelihood ratios).

``values`` says what the value column holds: ``likelihood`` or ``probability`` (ln L = ln value, as Cobaya takes
it), ``chi2`` (ln L = -chi2/2), ``lnL`` or ``minus_lnL``. The observable types of the axes and the effective
redshift are declared in the entry. The dataset carries the table as aux arrays (``table.<type>`` and
``table.lnL`` in 1-D; ``grid.<type1>``, ``grid.<type2>`` and ``grid.lnL`` in 2-D), which
:mod:`pbuf_data.likelihood` interpolates (cubic spline of ln L / bicubic spline); its core arrays are a Gaussian
summary (mean and covariance of the normalized likelihood on the grid), flagged in the metadata: a fit should
use ``loglike``.
"""

from __future__ import annotations

import numpy as np

from . import Result, conversion

TO_LNL = {
    "likelihood": ("ln L = ln(value)", np.log),
    "probability": ("ln L = ln(value)", np.log),
    "chi2": ("ln L = -value / 2", lambda v: -0.5 * v),
    "lnL": ("ln L = value", lambda v: v),
    "minus_lnL": ("ln L = -value", lambda v: -v),
}


def derive_likelihood_table(options, files) -> Result:
    table = files["table"]
    types = options["observables"]
    ndim = len(types)
    declared_grid = options.get("grid")
    ncols = ndim + (0 if declared_grid else 1) if ndim == 1 else 3
    if ndim == 2 and declared_grid:
        raise table.error("a 2-D grid lists its axes in the file (x y value rows); remove options.grid", check="registry")
    numbers, rows = table.table(ncols)
    data = np.array(rows, dtype=np.float64)
    values = data[:, -1]
    kind = options["values"]
    if kind in ("likelihood", "probability") and (values < 0).any():
        i = int(np.flatnonzero(values < 0)[0])
        raise table.error(f"negative {kind} {values[i]}", line=numbers[i], column=ncols, check="likelihood >= 0")
    if kind == "chi2" and (values < 0).any():
        i = int(np.flatnonzero(values < 0)[0])
        raise table.error(f"negative chi2 {values[i]}", line=numbers[i], column=ncols, check="chi2 >= 0")
    with np.errstate(divide="ignore"):
        lnl = TO_LNL[kind][1](values)
    if ndim == 1:
        if declared_grid:
            x = np.linspace(declared_grid["min"], declared_grid["max"], values.size)
        else:
            x = data[:, 0]
        if x.size < 4 or (np.diff(x) <= 0).any():
            i = int(np.flatnonzero(np.diff(x) <= 0)[0]) + 1 if x.size >= 4 else 0
            raise table.error("a 1-D table needs at least 4 strictly increasing grid values", line=numbers[i],
                              column=1, check="grid")
        axes = [x]
        lnl_grid = lnl
    else:
        x, y = np.unique(data[:, 0]), np.unique(data[:, 1])
        if x.size * y.size != len(rows) or x.size < 4 or y.size < 4:
            raise table.error(f"{len(rows)} rows are not a rectangular grid of at least 4 x 4 ({x.size} distinct x, "
                              f"{y.size} distinct y)", check="rectangular grid")
        expected_x, expected_y = np.repeat(x, y.size), np.tile(y, x.size)
        wrong = np.flatnonzero((data[:, 0] != expected_x) | (data[:, 1] != expected_y))
        if wrong.size:
            i = int(wrong[0])
            raise table.error(f"row ({data[i, 0]:g}, {data[i, 1]:g}) is out of order: expected "
                              f"({expected_x[i]:g}, {expected_y[i]:g}) (x slowest, y fastest)", line=numbers[i],
                              check="rectangular grid")
        axes = [x, y]
        lnl_grid = lnl.reshape(x.size, y.size)
    if not np.isfinite(lnl_grid).all():
        i = int(np.flatnonzero(~np.isfinite(lnl))[0])
        raise table.error(f"ln L is not finite at value {values[i]!r} ({kind})", line=numbers[i], column=ncols,
                          check="finite ln L")
    mean, cov = _moments(axes, lnl_grid)
    z = np.full(ndim, float(options["z_eff"]))
    aux = ({f"table.{types[0]}": axes[0], "table.lnL": lnl_grid} if ndim == 1 else
           {f"grid.{types[0]}": axes[0], f"grid.{types[1]}": axes[1], "grid.lnL": lnl_grid})
    interpolation = ("interpolating cubic spline of ln L (scipy UnivariateSpline s=0, k=3), as Cobaya's prob_dist"
                     if ndim == 1 else "bicubic spline of ln L (scipy RectBivariateSpline kx=ky=3), as Cobaya's grid_file")
    return Result(
        z=z,
        observable=mean,
        uncertainty=np.sqrt(np.diag(cov)),
        covariance=cov,
        observable_type=np.array(types),
        units={t: "km/s" if t == "H_times_rd" else "dimensionless" for t in types},
        metadata={
            "likelihood": {
                "form": "table_1d" if ndim == 1 else "grid_2d",
                "values": kind,
                "interpolation": interpolation,
                "grid": [[float(a[0]), float(a[-1]), int(a.size)] for a in axes],
                "gaussian_summary": "observable/covariance are the mean and covariance of the normalized likelihood "
                "on the grid: a summary only; fit with loglike (the table)",
            },
            "covariance": {"source": "moments of the tabulated likelihood (Gaussian summary, flagged)"},
        },
        conversions=[
            conversion("likelihood_table", f"{TO_LNL[kind][0]} on the published grid; the Gaussian summary is the "
                       "likelihood's mean and covariance (trapezoidal moments)",
                       "the layouts of Cobaya's bao.generic likelihood (prob_dist, grid_file)"),
        ],
        aux=aux,
    )


def _moments(axes, lnl):
    """Mean and covariance of exp(lnL) on the grid (trapezoidal weights)."""
    weights = np.exp(lnl - lnl.max())
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
