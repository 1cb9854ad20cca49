"""A BAO likelihood published as a 2-D grid of Delta chi2 (or a probability) in two dilation parameters.

Rows ``... alpha_1 ... alpha_2 ... value ...`` (e.g. MontePython's BOSS DR12 Lya scans: ``ap at Dchi2``, alpha_parallel
the outer index; or a probability grid in (alpha_perp, alpha_para) as MontePython's ``bao_boss_aniso`` reads, zeros
allowed) in any row order, each grid node exactly once. ``options.axes`` lists the two axes: the column of alpha
(name or 1-based position in the generic table vocabulary, :mod:`._table`), the observable type alpha scales
(``DM_over_rd``, ``DA_over_rd``, ``DH_over_rd``, ``DV_over_rd``) and its fiducial (:mod:`._scan`: a number, a
distance or H with r_s,fid, or names read from the ``fiducial`` file). ``value_column`` holds ``values``
(``delta_chi2``, ``chi2``, ``lnL``, ``probability``, ``likelihood``).

The effective redshift is ``z_eff``, or read from MontePython's scan aux file (file role ``aux``: rows
``corr_type z type1 type2``, ``aux_row`` naming the row), whose type codes (3 D_V/r_s, 5 D_A/r_s, 6 c/(H r_s),
8 D_M/r_s) must be the axes' types; given both, they must agree. ``interpolation`` says how the field's reader
interpolates (MontePython's scans: ``{spline: linear, of: lnL}``, bilinear in Delta chi2; ``bao_boss_aniso``:
``{spline: cubic, of: likelihood}``, bicubic in the probability over its maximum, then ln).

The dataset carries ``aux.grid.<type1>``, ``aux.grid.<type2>`` (alpha times the fiducial) and ``aux.grid.lnL``
(or ``aux.grid.likelihood``, normalized to a maximum of 1) of shape (n1, n2), with ``metadata.likelihood``;
its core arrays are the Gaussian summary (mean and covariance of the normalized likelihood on the grid), flagged.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import PbufDataError
from . import _bao, _mock, _scan
from ._common import Result, conversion, predict_by_type
from ._table import read_columns

KIND = "bao"
FIGURE = "likelihood"
AXIS_LABELS = _bao.AXIS_LABELS
# MontePython's BAO type codes (its likelihoods' comment: D_V/rs=3, DA/rs=5, c/Hrs=6, D_M/rs=8)
MONTEPYTHON_CODES = {3: "DV_over_rd", 5: "DA_over_rd", 6: "DH_over_rd", 8: "DM_over_rd"}


def check_entry(name: str, entry: dict) -> None:
    options, files = entry["options"], entry["files"]
    types = [axis["observable"] for axis in options["axes"]]
    if len(set(types)) != 2:
        raise PbufDataError(f"options.axes: two different observable types are needed, found {types}", dataset=name,
                            check="registry")
    for i, axis in enumerate(options["axes"]):
        problem = _scan.fiducial_problem(axis["observable"], axis["fiducial"])
        if problem:
            raise PbufDataError(f"options.axes[{i}].fiducial: {problem}", dataset=name, check="registry")
        if any(isinstance(v, str) for v in axis["fiducial"].values()) and "fiducial" not in files:
            raise PbufDataError(f"options.axes[{i}].fiducial names values of a fiducial file, but files has no "
                                "'fiducial' role", dataset=name, check="registry")
    if ("aux_row" in options) != ("aux" in files):
        raise PbufDataError("options.aux_row and the file role 'aux' go together (the row of the scan aux file)",
                            dataset=name, check="registry")
    if "z_eff" not in options and "aux_row" not in options:
        raise PbufDataError("the effective redshift is not stated: give options.z_eff or an aux file and aux_row",
                            dataset=name, check="registry")


def _aux_redshift(aux, row: str, types: list[str]) -> float:
    """z of row ``row`` of a MontePython scan aux file, its type codes checked against the axes' types."""
    for line in aux.lines(comment="#"):
        if line.fields[0] != row:
            continue
        if len(line.fields) != 4:
            raise aux.error(f"expected 'corr_type z type1 type2', found {len(line.fields)} fields", line=line.number,
                            check="column count")
        z = aux.number(line.fields[1], line.number, 2)
        codes = [int(aux.number(f, line.number, i + 3)) for i, f in enumerate(line.fields[2:])]
        named = sorted(MONTEPYTHON_CODES.get(c, f"unknown code {c}") for c in codes)
        if named != sorted(types):
            raise aux.error(f"row '{row}' has type codes {codes} ({named}); the entry's axes are {sorted(types)}",
                            line=line.number, column=3, check="axis types")
        return z
    raise aux.error(f"no row '{row}' (options.aux_row)", check="aux row")


def _grid(table, numbers, a1, a2, values, names):
    """The axes (sorted unique alphas) and the values on the grid, each node given exactly once; ``names`` are the
    two alpha columns as the entry names them (for the messages)."""

    def node(u, v):
        return f"({names[0]} = {float(u)!r}, {names[1]} = {float(v)!r})"

    x, ix = np.unique(a1, return_inverse=True)
    y, iy = np.unique(a2, return_inverse=True)
    if x.size < 4 or y.size < 4:
        raise table.error(f"a 2-D grid needs at least 4 x 4 nodes ({x.size} distinct alpha_1, {y.size} distinct "
                          "alpha_2)", check="rectangular grid")
    cell = ix * y.size + iy
    seen = np.full(x.size * y.size, -1)
    for row, c in enumerate(cell):
        if seen[c] >= 0:
            raise table.error(f"node {node(a1[row], a2[row])} given twice (lines {numbers[seen[c]]} and "
                              f"{numbers[row]})", line=numbers[row], check="rectangular grid")
        seen[c] = row
    if (seen < 0).any():
        c = int(np.flatnonzero(seen < 0)[0])
        raise table.error(f"{len(a1)} rows are not a full {x.size} x {y.size} grid: node "
                          f"{node(x[c // y.size], y[c % y.size])} is missing", check="rectangular grid")
    return x, y, values[seen].reshape(x.size, y.size)


def derive(options, files) -> Result:
    table = files["grid"]
    kind = options["values"]
    axes = options["axes"]
    types = [axis["observable"] for axis in axes]
    degree, quantity = _scan.interpolation(options, kind, table)
    columns = {"alpha_1": axes[0]["column"], "alpha_2": axes[1]["column"], "value": options["value_column"]}
    numbers, read = read_columns(table, options["table"], columns, key="options.axes/value_column")
    lnl_rows = _scan.check_values(table, read["value"], kind, numbers, options["value_column"])
    _scan.refuse_infinite_lnl(table, lnl_rows, read["value"], numbers, options["value_column"], quantity)
    for i, name in enumerate(("alpha_1", "alpha_2")):
        _scan.check_alpha(table, read[name], numbers, axes[i]["column"])
    a1, a2, values = _grid(table, numbers, read["alpha_1"], read["alpha_2"], read["value"],
                           [f"column {axes[0]['column']}", f"column {axes[1]['column']}"])
    z = _redshift(options, files, types)
    conversions, alphas, grids = [], {}, []
    for i, (axis, alpha) in enumerate(zip(axes, (a1, a2))):
        fid, given = _scan.fiducial_value(axis["observable"], axis["fiducial"], z, files, f"options.axes[{i}].fiducial")
        grids.append(alpha * fid)
        alphas[axis["observable"]] = {"alpha_fiducial": fid, "from": given, "column": axis["column"]}
        conversions.append(_scan.alpha_conversion(axis["observable"], fid, given, z))
    with np.errstate(divide="ignore"):
        lnl = _scan.TO_LNL[kind][1](values)
    mean, cov = _scan.moments(grids, lnl)
    aux = {f"grid.{types[0]}": grids[0], f"grid.{types[1]}": grids[1],
           **_scan.interpolated_aux("grid", quantity, lnl, values)}
    conversions.append(conversion(
        "tabulated_likelihood", f"{_scan.TO_LNL[kind][0]} from column '{options['value_column']}' on the "
        f"{a1.size} x {a2.size} grid; the Gaussian summary is the likelihood's mean and covariance (trapezoidal "
        "moments)", "MontePython scan likelihoods (Cuceu, Farr, Lemos & Font-Ribera 2019, arXiv:1906.11628)"))
    return Result(
        z=np.full(2, z),
        observable=mean,
        uncertainty=np.sqrt(np.diag(cov)),
        covariance=cov,
        observable_type=np.array(types),
        units={t: "dimensionless" for t in types},
        metadata={
            "likelihood": _scan.likelihood_metadata("grid_2d", kind, degree, quantity, grids, alphas),
            "covariance": {"source": "moments of the tabulated likelihood (Gaussian summary, flagged)"},
            "sound_horizon": _bao.SOUND_HORIZON["camb_rd"],
        },
        conversions=conversions,
        aux=aux,
    )


def _redshift(options, files, types) -> float:
    if "aux_row" not in options:
        return float(options["z_eff"])
    z = _aux_redshift(files["aux"], options["aux_row"], types)
    if "z_eff" in options and not np.isclose(z, options["z_eff"], rtol=0, atol=1e-9):
        raise files["aux"].error(f"row '{options['aux_row']}' gives z = {z!r}, options.z_eff = {options['z_eff']!r}",
                                 check="redshift")
    return z


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: a BOSS DR12 Lya-like Delta chi2 scan (aux file and MontePython .data fiducials when the entry has them) --

MOCK_ALPHAS = {"DH_over_rd": (0.8, 1.3, 21), "DM_over_rd": (0.7, 1.5, 21), "DA_over_rd": (0.7, 1.5, 21),
               "DV_over_rd": (0.8, 1.2, 21)}
MOCK_SIGMA = {"DH_over_rd": 0.035, "DM_over_rd": 0.05, "DA_over_rd": 0.05, "DV_over_rd": 0.03}
MOCK_RHO = -0.4


def _value(fid, observable: str, z: float) -> float:
    return float(np.asarray(fid.bao(observable, z)).reshape(-1)[0])


def _fiducial_quantity(fid, key: str, observable: str, z: float) -> float:
    """What the mock's fiducial file writes for ``key``: the fiducial cosmology's own value."""
    dm_rd = _value(fid, "DM_over_rd", z)
    own = {
        "value": dm_rd / (1 + z) if observable == "DA_over_rd" else _value(fid, observable, z),
        "rs_fid_Mpc": fid.r_d, "D_M_Mpc": dm_rd * fid.r_d, "D_A_Mpc": dm_rd * fid.r_d / (1 + z),
        "D_V_Mpc": _value(fid, "DV_over_rd", z) * fid.r_d,
        "H_km_s_Mpc": _scan.C_KM_S / (_value(fid, "DH_over_rd", z) * fid.r_d),
    }
    return own[key]


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    """The grid (``## ...`` header, ``%.18e`` rows, the first column's axis outer), and the aux and fiducial files
    of the entry's roles."""
    options = entry["options"]
    if "z_eff" not in options:
        raise PbufDataError("a mock scan needs options.z_eff (the redshift it is generated at)", check="mock")
    z, axes = float(options["z_eff"]), options["axes"]
    written, truth = [], []
    for axis in axes:
        spec = axis["fiducial"]
        numbers = {}
        for key, value in spec.items():
            numbers[key] = _fiducial_quantity(fid, key, axis["observable"], z) if isinstance(value, str) else value
            if isinstance(value, str):
                written.append(f"mock_scan.{value} = {numbers[key]!r}")
        value, _ = _scan.fiducial_value(axis["observable"], numbers, z, {}, "options.fiducial")
        truth.append(_fiducial_quantity(fid, "value", axis["observable"], z) / value)
    sigma = np.array([MOCK_SIGMA[a["observable"]] for a in axes])
    cov = np.diag(sigma**2)
    cov[0, 1] = cov[1, 0] = MOCK_RHO * sigma[0] * sigma[1]
    centre = np.array(truth) + _mock.correlated_noise(cov, rng)
    grids = [np.linspace(*MOCK_ALPHAS[a["observable"]]) for a in axes]
    g1, g2 = np.meshgrid(*grids, indexing="ij")
    d = np.stack([g1 - centre[0], g2 - centre[1]], axis=-1)
    chi2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    chi2 += 0.01 * (d[..., 0] / sigma[0]) ** 3  # a mildly non-Gaussian scan
    chi2 -= chi2.min()
    kind = options["values"]
    values = {"delta_chi2": chi2, "chi2": chi2 + 1500.0, "lnL": -0.5 * chi2}.get(kind)
    if values is None:  # probability or likelihood: zeros far from the peak, as in the probability grids
        values = np.exp(-0.5 * chi2)
        values[values < 1e-12] = 0.0
    positions = {"value": options["value_column"], 0: axes[0]["column"], 1: axes[1]["column"]}
    if not all(isinstance(p, int) for p in positions.values()) or options["table"]["header"] != "none":
        raise PbufDataError("the mock scan writes columns by position (options.table.header: none)", check="mock")
    outer = 0 if axes[0]["column"] < axes[1]["column"] else 1
    order = (lambda i, j: (i, j)) if outer == 0 else (lambda i, j: (j, i))
    n_outer, n_inner = grids[outer].size, grids[1 - outer].size
    names = {"DH_over_rd": "ap", "DM_over_rd": "at", "DA_over_rd": "at", "DV_over_rd": "alpha"}
    header = {positions[0]: names[axes[0]["observable"]], positions[1]: names[axes[1]["observable"]],
              positions["value"]: "Dchi2" if "chi2" in kind else kind}
    rows = ["## " + " ".join(header[c] for c in sorted(header))]
    for i in range(n_outer):
        for j in range(n_inner):
            a, b = order(i, j)
            cells = {positions[0]: g1[a, b], positions[1]: g2[a, b], positions["value"]: values[a, b]}
            rows.append(" ".join(f"{cells[c]:.18e}" for c in sorted(cells)))
    files = {"grid": _mock.lines([_mock.banner("alpha scan", fid), *rows])}
    if "aux_row" in options:
        codes = {t: c for c, t in MONTEPYTHON_CODES.items()}
        files["aux"] = _mock.lines([_mock.banner("scan aux file", fid), "# corr_type z type1 type2", "",
                                    f"{options['aux_row']} {z!r} {codes[axes[0]['observable']]} "
                                    f"{codes[axes[1]['observable']]}"])
    if written:
        files["fiducial"] = _mock.lines([_mock.banner("fiducial of the alpha scan", fid), *written])
    return {role: text for role, text in files.items() if roles is None or role in roles}
