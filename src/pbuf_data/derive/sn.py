"""Type Ia supernovae: Pantheon+ release layout.

Table: one header line of column names, whitespace separated, one row per
light curve (duplicates of one SN are kept: they are correlated through the
covariance). Covariance (optional): line 1 holds N, then N*N values one per
line, row-major, in the table's row order (Brout et al. 2022, ApJ 938, 110;
release README of PantheonPlusSH0ES/DataRelease).
"""

from __future__ import annotations

import numpy as np

from . import Result, conversion

DEFAULT_COLUMNS = {
    "mu": ("MU_SH0ES", "MU_SH0ES_ERR_DIAG"),
    "m_b_corr": ("m_b_corr", "m_b_corr_err_DIAG"),
}


_BLOCK = 256  # rows per block when comparing or symmetrizing a large matrix (no full-size temporaries)


def _max_asymmetry(matrix: np.ndarray) -> float:
    worst = 0.0
    for i in range(0, matrix.shape[0], _BLOCK):
        worst = max(worst, float(np.max(np.abs(matrix[i : i + _BLOCK, i:] - matrix[i:, i : i + _BLOCK].T))))
    return worst


def _symmetrize(matrix: np.ndarray) -> None:
    """(C + C^T) / 2 in place, block by block."""
    for i in range(0, matrix.shape[0], _BLOCK):
        mean = 0.5 * (matrix[i : i + _BLOCK, i:] + matrix[i:, i : i + _BLOCK].T)
        matrix[i : i + _BLOCK, i:] = mean
        matrix[i:, i : i + _BLOCK] = mean.T


def derive_pantheon_plus(options, files) -> Result:
    table = files["table"]
    observable_type = options["observable_type"]
    cols = dict(options["columns"])
    cols.setdefault("observable", DEFAULT_COLUMNS[observable_type][0])
    cols.setdefault("uncertainty", DEFAULT_COLUMNS[observable_type][1])
    sentinels = set(options["missing_values"])

    lines = table.lines(comment="#")
    header = lines[0].fields
    position = {name: i for i, name in enumerate(header)}
    wanted = [cols["id"], cols["z"], cols["observable"], cols["uncertainty"], cols["calibrator"], *options["carry_columns"]]
    for name in wanted:
        if name not in position:
            raise table.error(f"missing column '{name}' in the header", line=lines[0].number, check="columns")
    if len(set(header)) != len(header):
        raise table.error("duplicated column names in the header", line=lines[0].number, check="columns")

    numeric_names = [cols["z"], cols["observable"], cols["uncertainty"], cols["calibrator"], *options["carry_columns"]]
    numeric_names = list(dict.fromkeys(numeric_names))
    required = {cols["z"], cols["observable"], cols["uncertainty"], cols["calibrator"]}
    values = {name: np.empty(len(lines) - 1) for name in numeric_names}
    ids = []
    ncols = len(header)
    for row, ln in enumerate(lines[1:]):
        if len(ln.fields) != ncols:
            raise table.error(f"expected {ncols} columns, found {len(ln.fields)}", line=ln.number, check="column count")
        ids.append(ln.fields[position[cols["id"]]])
        for name in numeric_names:
            col = position[name]
            value = table.number(ln.fields[col], ln.number, f"{col + 1} ({name})")
            if value in sentinels:
                if name in required:
                    raise table.error(
                        f"missing-value sentinel {ln.fields[col]} in a column the derivation needs",
                        line=ln.number,
                        column=f"{col + 1} ({name})",
                        check="sentinel",
                    )
                value = np.nan
            values[name][row] = value
    n_rows = len(ids)
    z = values[cols["z"]]
    unc = values[cols["uncertainty"]]
    calib = values[cols["calibrator"]]
    bad = np.flatnonzero(unc <= 0)
    if bad.size:
        i = bad[0]
        raise table.error(
            f"uncertainty {unc[i]} is not positive", line=lines[1 + i].number, column=cols["uncertainty"], check="positive uncertainty"
        )
    bad = np.flatnonzero(~np.isin(calib, (0.0, 1.0)))
    if bad.size:
        raise table.error(
            f"calibrator flag {calib[bad[0]]} is not 0 or 1", line=lines[1 + bad[0]].number, column=cols["calibrator"], check="flag"
        )

    sel = options["selection"]
    keep = z > sel["z_min"]
    if sel["z_max"] is not None:
        keep &= z <= sel["z_max"]
    if sel["calibrators"] == "include":
        keep |= calib == 1
    elif sel["calibrators"] == "exclude":
        keep &= calib == 0
    index = np.flatnonzero(keep)

    conversions = [
        conversion(
            "row_selection",
            f"kept {index.size} of {n_rows} light curves: {cols['z']} > {sel['z_min']}"
            + (f" and <= {sel['z_max']}" if sel["z_max"] is not None else "")
            + f", calibrators {sel['calibrators']}; duplicate light curves of one SN kept",
            "Brout et al. 2022, ApJ 938, 110 (arXiv:2202.04077), Sec. 2",
        )
    ]
    if "covariance" in files:
        full = files["covariance"].counted_matrix(n_rows)
        asymmetry = _max_asymmetry(full)
        covariance = full[np.ix_(index, index)]  # (C + C^T)[idx, idx] = C[idx, idx] + C[idx, idx]^T exactly
        del full
        _symmetrize(covariance)
        covariance_info = {
            "source": "release STAT+SYS covariance",
            "file": files["covariance"].name,
            "max_abs_asymmetry_before_symmetrization": asymmetry,
        }
        conversions.append(
            conversion(
                "covariance_subselection",
                "rows and columns of the N x N release covariance taken for the kept light curves, "
                "then symmetrized as (C + C^T)/2 to remove rounding asymmetry",
                "Brout et al. 2022, ApJ 938, 110; PantheonPlusSH0ES/DataRelease README",
                max_abs_asymmetry=asymmetry,
            )
        )
    else:
        covariance = unc[index] ** 2  # the variances: a diagonal covariance is kept without its N x N zeros
        covariance_info = {
            "source": "diagonal",
            "warning": (
                f"no STAT+SYS covariance in the registry entry: diagonal built from {cols['uncertainty']}, "
                "which the release provides for plotting only; systematic correlations are missing"
            ),
        }
        conversions.append(
            conversion(
                "diagonal_covariance",
                f"covariance = diag({cols['uncertainty']}^2) because no covariance file is registered",
                "PantheonPlusSH0ES/DataRelease README (ERR_DIAG columns)",
            )
        )

    columns = {"id": np.asarray(ids, dtype=np.str_)[index]}
    for name in options["carry_columns"]:
        columns[name] = values[name][index]
    unit = "mag"
    return Result(
        z=z[index],
        observable=values[cols["observable"]][index],
        uncertainty=unc[index],
        covariance=covariance,
        observable_type=np.full(index.size, observable_type),
        units={observable_type: unit, "z": cols["z"]},
        metadata={
            "covariance": covariance_info,
            "selection": dict(sel, n_rows_in=n_rows, n_rows_out=int(index.size)),
            "columns_used": cols,
            "n_unique_objects": int(len(set(columns["id"].tolist()))),
        },
        conversions=conversions,
        columns=columns,
    )
