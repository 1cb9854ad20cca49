"""Type Ia supernovae: Pantheon+ release layout.

Table: one header line of column names, whitespace separated, one row per
light curve (duplicates of one SN are kept: they are correlated through the
covariance). Covariance (optional): line 1 holds N, then N*N values one per
line, row-major, in the table's row order (Brout et al. 2022, ApJ 938, 110;
release README of PantheonPlusSH0ES/DataRelease).

Observable types (README, "Observable types"): ``mu`` is the distance modulus
with the absolute magnitude fixed by the release's calibration, stated in the
data (per-point column ``M_B`` and ``metadata.absolute_magnitude``) and
checked against the table's ``m_b_corr`` on every row; ``m_b_corr`` is the
standardized apparent magnitude with M_B free. Both redshifts a fitter needs
are per-point columns: ``zHD`` (also the dataset's ``z``) and ``zHEL``.
"""

from __future__ import annotations

import numpy as np

from . import Result, conversion

DEFAULT_COLUMNS = {
    "mu": ("MU_SH0ES", "MU_SH0ES_ERR_DIAG"),
    "m_b_corr": ("m_b_corr", "m_b_corr_err_DIAG"),
}
# largest |m_b_corr - mu - M_B| accepted on a row: the release writes 6 significant digits (1e-4 mag at mu ~ 40)
M_B_TOLERANCE = 5e-4


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
    magnitude = _absolute_magnitude(table, options, observable_type)
    # the m_b_corr column a mu is checked against (when the table has one)
    check_column = DEFAULT_COLUMNS["m_b_corr"][0] if magnitude and DEFAULT_COLUMNS["m_b_corr"][0] in position else None
    wanted = [cols["id"], cols["z"], cols["zhel"], cols["observable"], cols["uncertainty"], cols["calibrator"]]
    wanted += [*options["carry_columns"], *([check_column] if check_column else [])]
    for name in wanted:
        if name not in position:
            raise table.error(f"missing column '{name}' in the header", line=lines[0].number, check="columns")
    if len(set(header)) != len(header):
        raise table.error("duplicated column names in the header", line=lines[0].number, check="columns")

    numeric_names = list(dict.fromkeys(wanted[1:]))
    required = {cols["z"], cols["zhel"], cols["observable"], cols["uncertainty"], cols["calibrator"]}
    required |= {check_column} if check_column else set()
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

    if magnitude:
        magnitude.update(_check_absolute_magnitude(table, lines, values, cols["observable"], check_column, magnitude["M_B"]))

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
        covariance = np.diag(unc[index] ** 2)
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

    columns = {"id": np.asarray(ids, dtype=np.str_)[index], "zHD": z[index], "zHEL": values[cols["zhel"]][index]}
    for name in options["carry_columns"]:
        columns[name] = values[name][index]
    if magnitude:
        columns["M_B"] = np.full(index.size, magnitude["M_B"])
    else:
        magnitude = {
            "M_B": None,
            "description": "free: m_b_corr = mu + M_B with M_B a nuisance parameter of the fit, as in the "
            "collaboration's cosmology fit (Brout et al. 2022)",
        }
    return Result(
        z=z[index],
        observable=values[cols["observable"]][index],
        uncertainty=unc[index],
        covariance=covariance,
        observable_type=np.full(index.size, observable_type),
        units={observable_type: "mag"},
        metadata={
            "redshifts": {
                "z": f"column zHD: Hubble-diagram redshift ({cols['z']} of the release)",
                "zHEL": f"column zHEL: heliocentric redshift ({cols['zhel']} of the release)",
            },
            "absolute_magnitude": magnitude,
            "covariance": covariance_info,
            "selection": dict(sel, n_rows_in=n_rows, n_rows_out=int(index.size)),
            "columns_used": cols,
            "n_unique_objects": int(len(set(columns["id"].tolist()))),
        },
        conversions=conversions,
        columns=columns,
    )


def _absolute_magnitude(table, options, observable_type: str) -> dict | None:
    """What a mu assumes about M_B, from the registry (None for m_b_corr: M_B is free)."""
    if observable_type != "mu":
        return None
    given = options.get("absolute_magnitude")
    if given is None:
        raise table.error(
            "observable_type 'mu' needs options.absolute_magnitude {M_B, reference}: the magnitude mu assumes",
            check="registry",
        )
    return {
        "M_B": float(given["M_B"]),
        "reference": given["reference"],
        "description": "mu = m_b_corr - M_B with M_B fixed: compare mu with 5 log10(D_L / 10 pc) directly",
    }


def _check_absolute_magnitude(table, lines, values, mu_column: str, mb_column: str | None, m_b: float) -> dict:
    """Every row's m_b_corr - mu must equal M_B (to the release's rounding); returns what was checked."""
    if mb_column is None:
        return {"checked": f"not checked: the table has no {DEFAULT_COLUMNS['m_b_corr'][0]} column"}
    deviation = np.abs(values[mb_column] - values[mu_column] - m_b)
    bad = np.flatnonzero(deviation > M_B_TOLERANCE)
    if bad.size:
        i = bad[0]
        raise table.error(
            f"{mb_column} - {mu_column} = {values[mb_column][i] - values[mu_column][i]:.5f} differs from the "
            f"registry's absolute_magnitude.M_B {m_b} by more than {M_B_TOLERANCE}",
            line=lines[1 + i].number,
            check="absolute magnitude",
        )
    return {"checked": f"{mb_column} - {mu_column} = M_B on every row", "max_abs_deviation": float(deviation.max())}
