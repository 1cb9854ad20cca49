"""BAO as rows of two correlated measurements: ``name z x sigma_x y sigma_y rho [r_s,fid]`` (reader, checks, mock).

MontePython's ``bao_aniso_gauss_approx_2013.txt`` writes the BOSS DR11 CMASS anisotropic result so: one row holding
D_A (r_d,fid/r_d) in Mpc and H (r_d/r_d,fid) in km/s/Mpc, their 1-sigma errors, their correlation coefficient and,
in the row, r_d,fid. Each row is a 2-D Gaussian, C = [[sx^2, rho sx sy], [rho sx sy, sy^2]]; rows are independent
(block-diagonal). ``first`` and ``second`` say what x and y are (observable type and conversion, :mod:`._bao`);
r_s,fid of the ``*_rs_fid`` conversions is the row's own column (``columns.rs_fid``) or ``options.rs_fid``, one of
them, never assumed. MontePython's reader of this file sums x^2 + y^2 - 2 rho x y of the normalized residuals,
without the 1/(1 - rho^2) of the bivariate Gaussian: its chi2 is (1 - rho^2) times the one of this covariance.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import PbufDataError
from . import _bao, _mock
from ._common import Result, conversion, predict_by_type
from ._table import read_columns

KIND = "bao"
FIGURE = "panels"
AXIS_LABELS = _bao.AXIS_LABELS
ROLES = ("first", "second")


def _label_options(options: dict, rs_fid: float | None) -> dict:
    labels = {role: options[role] for role in ROLES}
    return {**options, "labels": labels, **({"rs_fid": rs_fid} if rs_fid is not None else {})}


def check_entry(name: str, entry: dict) -> None:
    options = entry["options"]
    in_row = options["columns"].get("rs_fid") is not None
    if in_row and "rs_fid" in options:
        raise PbufDataError("r_s,fid given twice: options.rs_fid and options.columns.rs_fid", dataset=name,
                            check="registry")
    if not in_row:
        _bao.check_rs_fid(name, _label_options(options, options.get("rs_fid")))


def derive(options, files) -> Result:
    table = files["table"]
    columns = {role: column for role, column in options["columns"].items() if column is not None}
    numbers, cols = read_columns(table, options["table"], columns, text_roles=("name",))
    n = len(numbers)
    for i in range(n):
        for key in ("first_sigma", "second_sigma"):
            if cols[key][i] <= 0:
                raise table.error(f"{key} {cols[key][i]} is not positive", line=numbers[i],
                                  column=str(columns[key]), check="positive uncertainty")
        if not -1 < cols["correlation"][i] < 1:
            raise table.error(f"correlation coefficient {cols['correlation'][i]} is not in (-1, 1)", line=numbers[i],
                              column=str(columns["correlation"]), check="correlation")
    z, values, sigma, types, blocks, conversions = [], [], [], [], [], []
    for i in range(n):
        rs_fid = cols["rs_fid"][i] if "rs_fid" in cols else options.get("rs_fid")
        opts = _label_options(options, rs_fid)
        s = np.array([cols["first_sigma"][i], cols["second_sigma"][i]])
        rho = cols["correlation"][i]
        block = np.array([[s[0] ** 2, rho * s[0] * s[1]], [rho * s[0] * s[1], s[1] ** 2]])
        row_types, factors, block, records = _bao.convert(list(ROLES), opts, block)
        z += [cols["z"][i]] * 2
        values += list(np.array([cols["first"][i], cols["second"][i]]) * factors)
        sigma += list(s * factors)
        types += row_types.tolist()
        blocks.append(block)
        for record in records:
            record["parameters"]["row"] = str(cols["name"][i])
        conversions += records
    covariance = np.zeros((2 * n, 2 * n))
    for i, block in enumerate(blocks):
        covariance[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = block
    conversions.insert(0, conversion(
        "correlation_to_covariance", "each row's 2 x 2 covariance [[sx^2, rho sx sy], [rho sx sy, sy^2]] from its errors "
        "and correlation coefficient; rows independent", "the release's row layout (MontePython "
        "bao_boss_aniso_gauss_approx; Anderson et al. 2014, MNRAS 441, 24)"))
    return Result(
        z=np.array(z),
        observable=np.array(values),
        uncertainty=np.array(sigma),
        covariance=covariance,
        observable_type=np.array(types),
        units={t: _bao.UNITS[t] for t in sorted(set(types))},
        metadata={
            "covariance": {"source": "2 x 2 blocks from each row's sigmas and correlation coefficient"},
            "sound_horizon": _bao.sound_horizon(table, _label_options(options, None), list(ROLES)),
            "rs_fid": ("per row, column " + str(columns["rs_fid"])) if "rs_fid" in cols else options.get("rs_fid"),
        },
        conversions=conversions,
        columns={"name": np.repeat(cols["name"], 2), "correlation": np.repeat(cols["correlation"], 2)},
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: one row like the BOSS DR11 CMASS file, r_d,fid = 149.28 Mpc in the row when the entry reads it there ------

MOCK_Z, MOCK_RS_FID, MOCK_RHO = 0.57, 149.28, 0.539
MOCK_RELATIVE_ERRORS = (20.0 / 1421.0, 3.4 / 96.8)


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    options = entry["options"]
    rs_fid = MOCK_RS_FID if options["columns"].get("rs_fid") is not None else options.get("rs_fid")
    truth = np.array([_bao.file_value(fid, options[role], MOCK_Z, rs_fid) for role in ROLES])
    sigma = truth * np.array(MOCK_RELATIVE_ERRORS)
    block = np.array([[sigma[0] ** 2, MOCK_RHO * sigma[0] * sigma[1]], [MOCK_RHO * sigma[0] * sigma[1], sigma[1] ** 2]])
    value = truth + _mock.correlated_noise(block, rng)
    cells = {"name": "CMASS", "z": f"{MOCK_Z}", "first": f"{value[0]:.5g}", "first_sigma": f"{sigma[0]:.3g}",
             "second": f"{value[1]:.4g}", "second_sigma": f"{sigma[1]:.3g}", "correlation": f"{MOCK_RHO}",
             "rs_fid": f"{MOCK_RS_FID}"}
    columns = {role: c for role, c in options["columns"].items() if c is not None}
    if options["table"]["header"] != "none" or not all(isinstance(c, int) for c in columns.values()):
        raise PbufDataError("the correlated-pair mock writes headerless tables with columns by position", check="mock")
    row = [""] * max(columns.values())
    for role, column in columns.items():
        row[column - 1] = cells[role]
    sep = "\t" if options["table"]["delimiter"] in ("tab", "whitespace") else ","
    lines = ["# id, z, first, sigma, second, sigma, cross corr" + (", rd_fid/Mpc" if "rs_fid" in columns else ""),
             _mock.banner("BOSS DR11 CMASS-format anisotropic BAO row", fid), sep.join(row)]
    return {"table": _mock.lines(lines)}
