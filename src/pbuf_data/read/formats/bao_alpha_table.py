"""A BAO likelihood published as a 1-D table of chi2 (or ln L, or a probability) against a dilation parameter alpha.

The table is read in the generic vocabulary (:mod:`._table`): ``options.table`` (delimiter, header) and
``options.columns`` ``{alpha, value}`` by name or 1-based position, so one method column of a file with several is
picked by name (e.g. DES Y3's ``alpha,ACF+APS,ACF,APS,...``). alpha = X / X_fid with X the entry's ``observable``
(``DM_over_rd``, ``DH_over_rd``, ``DV_over_rd`` or ``DA_over_rd``) and X_fid its ``fiducial`` (:mod:`._scan`); the
published axis is X = alpha X_fid. alpha may be printed with accumulated drift (0.9408999999999845): it is used as a
number, never matched as text. ``values`` says what the column holds (``chi2``, ``delta_chi2``, ``lnL``,
``likelihood``, ``probability``) and ``interpolation`` how the field's reader interpolates it (``spline: linear`` of
ln L is CosmoSIS des-y3-bao's numpy.interp of chi2).

The dataset carries ``aux.table.<observable>`` (the grid of X) and ``aux.table.lnL`` (or ``aux.table.likelihood``)
with ``metadata.likelihood`` saying the spline degree, which :mod:`pbuf_data.model.likelihood` interpolates; its core
arrays are a Gaussian summary (mean and variance of the normalized likelihood on the grid), flagged.
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


def check_entry(name: str, entry: dict) -> None:
    options = entry["options"]
    problem = _scan.fiducial_problem(options["observable"], options["fiducial"])
    if problem:
        raise PbufDataError(f"options.fiducial: {problem}", dataset=name, check="registry")
    names = [v for v in options["fiducial"].values() if isinstance(v, str)]
    if names and "fiducial" not in entry["files"]:
        raise PbufDataError(f"options.fiducial names {names} of a fiducial file, but files has no 'fiducial' role",
                            dataset=name, check="registry")


def derive(options, files) -> Result:
    table = files["table"]
    kind = options["values"]
    observable, z = options["observable"], float(options["z_eff"])
    degree, quantity = _scan.interpolation(options, kind, table)
    numbers, columns = read_columns(table, options["table"], options["columns"])
    alpha, values = columns["alpha"], columns["value"]
    value_column = options["columns"]["value"]
    if alpha.size < 4 or (np.diff(alpha) <= 0).any():
        i = int(np.flatnonzero(np.diff(alpha) <= 0)[0]) + 1 if alpha.size >= 4 else 0
        raise table.error("a 1-D alpha table needs at least 4 strictly increasing alpha values", line=numbers[i],
                          column=options["columns"]["alpha"], check="grid")
    _scan.check_alpha(table, alpha, numbers, options["columns"]["alpha"])
    lnl = _scan.check_values(table, values, kind, numbers, value_column)
    _scan.refuse_infinite_lnl(table, lnl, values, numbers, value_column, quantity)
    fid, given = _scan.fiducial_value(observable, options["fiducial"], z, files, "options.fiducial")
    x = alpha * fid
    mean, cov = _scan.moments([x], lnl)
    aux = {f"table.{observable}": x, **_scan.interpolated_aux("table", quantity, lnl, values)}
    return Result(
        z=np.array([z]),
        observable=mean,
        uncertainty=np.sqrt(np.diag(cov)),
        covariance=cov,
        observable_type=np.array([observable]),
        units={observable: "dimensionless"},
        metadata={
            "likelihood": _scan.likelihood_metadata("table_1d", kind, degree, quantity, [x],
                                                    {observable: {"alpha_fiducial": fid, "from": given}}),
            "covariance": {"source": "moments of the tabulated likelihood (Gaussian summary, flagged)"},
            "sound_horizon": _bao.SOUND_HORIZON["camb_rd"],
        },
        conversions=[
            _scan.alpha_conversion(observable, fid, given, z),
            conversion("tabulated_likelihood", f"{_scan.TO_LNL[kind][0]} from column '{value_column}'; the Gaussian "
                       "summary is the likelihood's mean and variance (trapezoidal moments)",
                       "CosmoSIS standard library likelihood/des-y3-bao (chi2(alpha) table, log L = -chi2/2)"),
        ],
        aux=aux,
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: a DES Y3-like CSV of chi2(alpha) for several methods, alpha printed with its accumulated drift --------

MOCK_METHODS = (  # name, sigma(alpha), chi2 at the minimum, offset of the minimum in sigma
    ("ACF+APS", 0.026, 93.75, 0.0),
    ("ACF", 0.030, 95.24, -0.12),
    ("APS", 0.028, 92.26, 0.04),
    ("ACF_NW+APSNW", 0.16, 101.0, None),  # no-wiggle templates: broad, not centred on the measurement
    ("ACFNW", 0.17, 103.0, None),
    ("APSNW", 0.18, 99.0, None),
)


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    """The chi2 columns on alpha = 0.8, 0.8 + 1e-4, ... 1.2 (summed step by step, as the release prints it)."""
    options = entry["options"]
    observable, z = options["observable"], float(options["z_eff"])
    fid_value, _ = _scan.fiducial_value(observable, options["fiducial"], z, {}, "options.fiducial")
    truth = float(np.asarray(fid.bao(observable, z)).reshape(-1)[0]) / fid_value
    alpha, a = [], 0.8
    for _ in range(4001):
        alpha.append(a)
        a += 1e-4
    alpha = np.array(alpha)
    chosen = str(options["columns"]["value"])
    names = [chosen] + [m[0] for m in MOCK_METHODS if m[0] != chosen]
    params = {m[0]: m[1:] for m in MOCK_METHODS}
    columns = []
    for name in names:
        sigma, chi2_min, offset = params.get(name, MOCK_METHODS[0][1:])
        centre = 1.0 if offset is None else truth + sigma * (offset + rng.standard_normal())
        u = (alpha - centre) / sigma
        columns.append(chi2_min + u**2 + 0.02 * u**4 / (1 + 0.05 * u**2))  # a mildly non-Gaussian profile
    header = ",".join([str(options["columns"]["alpha"]), *names])
    rows = [",".join([repr(float(alpha[i]))] + [repr(float(c[i])) for c in columns]) for i in range(alpha.size)]
    # the notice after the header: CosmoSIS reads the file with numpy.loadtxt(skiprows=1), '#' lines skipped
    return {"table": _mock.lines([header, _mock.banner("chi2(alpha) table", fid), *rows])}
