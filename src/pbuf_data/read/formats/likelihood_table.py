"""Likelihoods published as tables or grids instead of Gaussians (reader, checks, mock, figure, prediction).

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
:mod:`pbuf_data.model.likelihood` interpolates (cubic spline of ln L / bicubic spline); its core arrays are a moment
summary (mean and covariance of the normalized likelihood on the grid), named so in the metadata: a fit should
use ``loglike``. Beside it the metadata records the measurement as a release quotes it: the maximum of the
interpolated ln L and, per axis, the 68 % interval where the (profile) ln L is 1/2 below its maximum.
"""

from __future__ import annotations

import numpy as np

from . import _bao, _mock
from ._common import Result, conversion, predict_by_type
from ._scan import TO_LNL, check_values
from ._scan import moments as _moments
from ._table import read_columns

KIND = "bao"
FIGURE = "likelihood"  # the published likelihood itself: Delta chi2 (1-D) or contours (2-D), with the summary
AXIS_LABELS = _bao.AXIS_LABELS

def check_entry(name: str, entry: dict) -> None:
    """Nothing beyond the schema (a 2-D grid with options.grid is refused by the reader, naming the file)."""


def derive(options, files) -> Result:
    table = files["table"]
    types = options["observables"]
    ndim = len(types)
    declared_grid = options.get("grid")
    ncols = ndim + (0 if declared_grid else 1) if ndim == 1 else 3
    if ndim == 2 and declared_grid:
        raise table.error("a 2-D grid lists its axes in the file (x y value rows); remove options.grid", check="registry")
    if "columns" in options:  # a table with a header or CSV, its columns by name or position (e.g. a CSV whose value column is one of several)
        roles = ["x", "value"] if ndim == 1 and not declared_grid else ["value"] if ndim == 1 else ["x", "y", "value"]
        missing = [r for r in roles if r not in options["columns"]]
        if missing:
            raise table.error(f"options.columns needs {roles} (missing {missing})", check="registry")
        numbers, cols = read_columns(table, options["table"], {r: options["columns"][r] for r in roles})
        data = np.column_stack([cols[r] for r in roles])
        ncols = str(options["columns"]["value"])
    else:
        numbers, rows = table.table(ncols)
        data = np.array(rows, dtype=np.float64)
    values = data[:, -1]
    kind = options["values"]
    lnl = check_values(table, values, kind, numbers, ncols)
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
        if x.size * y.size != len(data) or x.size < 4 or y.size < 4:
            raise table.error(f"{len(data)} rows are not a rectangular grid of at least 4 x 4 ({x.size} distinct x, "
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
    best, intervals = maximum_likelihood(axes, lnl_grid)
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
                "summary": "moments",
                "gaussian_summary": "observable/covariance are the moment summary: the mean and covariance of the "
                "normalized likelihood on the grid, not the measurement the release quotes (that is "
                "maximum_likelihood with interval_68); a summary only, fit with loglike (the table)",
                "maximum_likelihood": {t: b for t, b in zip(types, best)},
                "interval_68": {t: i for t, i in zip(types, intervals)},
                "interval_definition": "where ln L (2-D: its profile, maximized over the other axis) is 1/2 below "
                "its maximum (Delta chi2 = 1), on the interpolated ln L; null where the grid ends first",
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


def maximum_likelihood(axes, lnl):
    """The maximum of the interpolated ln L (the splines of :mod:`pbuf_data.model.likelihood`) and, per axis, the 68 %
    interval [lo, hi] where ln L (2-D: the profile max over the other axis) is 1/2 below it (None beyond the grid)."""
    from scipy.interpolate import RectBivariateSpline, UnivariateSpline
    from scipy.optimize import brentq, minimize, minimize_scalar

    def bounded_max(f, lo, hi):
        res = minimize_scalar(lambda v: -f(v), bounds=(lo, hi), method="bounded", options={"xatol": 1e-10 * (hi - lo)})
        return (res.x, -res.fun) if -res.fun >= max(f(lo), f(hi)) else ((lo, f(lo)) if f(lo) > f(hi) else (hi, f(hi)))

    def fine(axis):
        return np.linspace(axis[0], axis[-1], 16 * (axis.size - 1) + 1)

    if len(axes) == 1:
        (x,) = axes
        spline = UnivariateSpline(x, lnl, s=0, k=3)
        profiles = [lambda v: float(spline(v))]
        grid = fine(x)
        i = int(np.argmax(spline(grid)))
        best = [bounded_max(profiles[0], grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)])[0]]
    else:
        x, y = axes
        spline = RectBivariateSpline(x, y, lnl, kx=3, ky=3)
        gx, gy = fine(x), fine(y)
        values = spline(gx, gy)
        i, j = np.unravel_index(int(np.argmax(values)), values.shape)
        res = minimize(lambda p: -spline(p[0], p[1])[0, 0], [gx[i], gy[j]], method="Nelder-Mead",
                       bounds=[(x[0], x[-1]), (y[0], y[-1])], options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
        best = list(res.x)

        def profile(grid_other, along):
            def f(v):
                row = spline(v, grid_other)[0] if along == 0 else spline(grid_other, v)[:, 0]
                k = int(np.argmax(row))
                lo, hi = grid_other[max(k - 1, 0)], grid_other[min(k + 1, grid_other.size - 1)]
                g = (lambda u: float(spline(v, u)[0, 0])) if along == 0 else (lambda u: float(spline(u, v)[0, 0]))
                return bounded_max(g, lo, hi)[1]
            return f

        profiles = [profile(gy, 0), profile(gx, 1)]
    peak = max(p(b) for p, b in zip(profiles, best))
    intervals = []
    for f, b, axis in zip(profiles, best, axes):
        def g(v, f=f):
            return f(v) - (peak - 0.5)

        ends = []
        for side in (axis[axis < b][::-1], axis[axis > b]):
            below = next((v for v in side if g(v) < 0), None)
            ends.append(None if below is None else float(brentq(g, min(below, b), max(below, b), xtol=1e-12 * abs(b))))
        intervals.append(ends)
    return [float(b) for b in best], intervals


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: a Gaussian likelihood around the fiducial (plus the draw's scatter), on grids like the eBOSS DR16
# releases' (ELG: D_V/r_d against a likelihood; Lya: a (D_M/r_d, D_H/r_d) grid of likelihood ratios) ------------

MOCK_DESIGNS = {
    1: {"sigma": (0.9,), "span": 6.0, "points": (241,)},
    2: {"sigma": (0.85, 0.28), "rho": -0.45, "span": 6.0, "points": (81, 61)},
}


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    """A 1-D ``x value`` table (or one ``value`` column on the entry's ``grid``) or a 2-D ``x y value`` grid (x
    slowest), the value as ``options.values`` reads it: L, or L normalized to unit integral (``probability``), or
    chi2 = -2 ln L with its minimum on the grid 0 (``chi2``); 8 significant digits."""
    options = entry["options"]
    types, z = options["observables"], options["z_eff"]
    design = MOCK_DESIGNS[len(types)]
    truth = np.array([float(np.asarray(fid.bao(t, z)).reshape(-1)[0]) for t in types])
    sigma = np.array(design["sigma"])
    cov = np.diag(sigma**2)
    if len(types) == 2:
        cov[0, 1] = cov[1, 0] = design["rho"] * sigma[0] * sigma[1]
    centre = truth + _mock.correlated_noise(cov, rng)
    declared = options.get("grid")
    axes = ([np.linspace(declared["min"], declared["max"], design["points"][0])] if declared else
            [np.linspace(c - design["span"] * s, c + design["span"] * s, n) for c, s, n in zip(truth, sigma, design["points"])])
    grids = np.meshgrid(*axes, indexing="ij")
    d = np.stack([g - c for g, c in zip(grids, centre)], axis=-1)
    chi2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    likelihood = np.exp(-0.5 * chi2).ravel()
    kind = options["values"]
    if kind == "chi2":
        values = chi2.ravel() - chi2.min()
    elif kind == "probability":
        values = likelihood / np.trapezoid(likelihood, axes[0]) if len(axes) == 1 else likelihood / likelihood.sum()
    else:
        values = likelihood
    columns = [] if declared else [g.ravel() for g in grids]
    what = {"chi2": "chi2", "probability": "probability density"}.get(kind, "likelihood")
    header = "# " + " ".join([] if declared else types) + f" {what} (mock: Gaussian around the fiducial plus a draw)"
    if declared:
        header = f"# {what} of {types[0]} on {declared['min']:g} ... {declared['max']:g} (mock: Gaussian around the " \
                 "fiducial plus a draw)"
    rows = [" ".join([*(f"{c[i]:.6f}" for c in columns), f"{values[i]:.8e}"]) for i in range(values.size)]
    return {"table": _mock.lines([_mock.banner(f"{len(types)}-D likelihood table", fid), header, *rows])}
