"""Type Ia supernovae: a table of light curves (or SNe) and an optional covariance (reader, checks, mock, figure).

Table layouts (``options.table``): whitespace- or comma-separated; the column names on the first line (Pantheon+,
DES-SN5YR's CSV) or on a leading ``#`` comment line (the CosmoMC/JLA "lcparam" layout of Pantheon 2018, JLA,
Union), whose header may name more columns than the rows hold (``header_extra_names``), or no header at all, the
columns then named by their 1-based position (``header: none``). Columns are taken by name (or position).
One row per light curve (duplicates of one SN are kept: they are correlated through the covariance).
Covariance (optional): line 1 holds N, then N*N values, row-major, in the table's row order (Brout et al. 2022,
ApJ 938, 110; CosmoMC ``mag_covmat_file``). With a covariance, a row's uncertainty may be 0 (all of it in the
covariance, as lcparam files write ``dmb``); it is then the square root of the covariance diagonal.

Observable types (README, "Observable types"): ``mu`` is the distance modulus
with the absolute magnitude fixed by the release's calibration, stated in the
data (per-point column ``M_B`` and ``metadata.absolute_magnitude``) and
checked against the table's ``m_b_corr`` on every row; ``m_b_corr`` is the
standardized apparent magnitude with M_B free; ``mu_offset_free`` a distance
modulus with an arbitrary additive offset (DES-SN5YR), free like M_B. Both
redshifts a fitter needs are per-point columns: ``zHD`` (also the dataset's
``z``) and ``zHEL``. A calibrator flag column is optional.
"""

from __future__ import annotations

import numpy as np

from ...model.dataset import MAX_STRING_CHARS
from ._common import Result, best_offsets, conversion, predict_by_type
from ._matrix import covariance_from_file
from ._sn_mock import mock_files  # noqa: F401  (the layout's mock: the Pantheon+ release layout)
from ._table import table_lines

KIND = "sn"
FIGURE = "hubble"  # Hubble diagram, residuals and pulls (pbuf_data.fit.plots)
# magnitudes with a free constant (M_B or an offset): their fiducial prediction carries its best offset
OFFSET_FREE = {"m_b_corr", "mu_offset_free"}
AXIS_LABELS = {
    "mu": r"$\mu$ [mag]",
    "m_b_corr": r"$m_{B,\rm corr}$ [mag] (fiducial + best offset)",
    "mu_offset_free": r"$\mu$ + offset [mag] (fiducial + best offset)",
}

DEFAULT_COLUMNS = {
    "mu": ("MU_SH0ES", "MU_SH0ES_ERR_DIAG"),
    "m_b_corr": ("m_b_corr", "m_b_corr_err_DIAG"),
    "mu_offset_free": ("MU", "MUERR"),
}
# largest |m_b_corr - mu - M_B| accepted on a row: the release writes 6 significant digits (1e-4 mag at mu ~ 40)
M_B_TOLERANCE = 5e-4


def check_entry(name: str, entry: dict) -> None:
    """A covariance file needs ``options.covariance.gives``: which matrix it is is never assumed."""
    from ...core.errors import PbufDataError

    spec = entry["options"].get("covariance")
    if "covariance" in entry["files"] and not spec:  # (the schema requires 'gives' in a spec)
        raise PbufDataError("files.covariance needs options.covariance.gives (covariance, inverse or systematic_only): "
                            "which matrix the file holds is not assumed", dataset=name, check="registry")
    if spec and "covariance" not in entry["files"]:
        raise PbufDataError("options.covariance describes a file the entry does not list (files.covariance)",
                            dataset=name, check="registry")


def derive(options, files) -> Result:
    table = files["table"]
    observable_type = options["observable_type"]
    cols = {role: None if c is None else str(c) for role, c in options["columns"].items()}  # positions: "1", "2"...
    cols.setdefault("observable", DEFAULT_COLUMNS[observable_type][0])
    cols.setdefault("uncertainty", DEFAULT_COLUMNS[observable_type][1])
    sentinels = set(options["missing_values"])
    carry = [str(c) for c in options["carry_columns"]]

    lines, header, ncols = table_lines(table, options["table"])
    position = {name: i for i, name in enumerate(header)}
    magnitude = _absolute_magnitude(table, options, observable_type)
    # the m_b_corr column a mu is checked against (when the table has one)
    check_column = DEFAULT_COLUMNS["m_b_corr"][0] if magnitude and DEFAULT_COLUMNS["m_b_corr"][0] in position else None
    calibrator = cols["calibrator"]
    if calibrator is None and options["selection"]["calibrators"] != "as_selected":
        raise table.error(f"selection.calibrators '{options['selection']['calibrators']}' needs a calibrator column "
                          "(options.columns.calibrator)", check="registry")
    wanted = [cols["id"], cols["z"], cols["zhel"], cols["observable"], cols["uncertainty"], *([calibrator] if calibrator else [])]
    wanted += [*carry, *([check_column] if check_column else [])]
    for name in wanted:
        if name not in position:
            raise table.error(f"missing column '{name}' in the header (it names {header})", line=lines[0].number,
                              check="columns")
    if len(set(header)) != len(header):
        raise table.error("duplicated column names in the header", line=lines[0].number, check="columns")

    numeric_names = list(dict.fromkeys(wanted[1:]))
    required = {cols["z"], cols["zhel"], cols["observable"], cols["uncertainty"], *([calibrator] if calibrator else [])}
    required |= {check_column} if check_column else set()
    n_rows = len(lines) - 1
    if not n_rows:
        raise table.error("the table has a header but no data rows", line=lines[0].number, check="non-empty")
    values = {name: np.empty(n_rows) for name in numeric_names}
    ids = []
    for row, ln in enumerate(lines[1:]):
        if len(ln.fields) != ncols:
            raise table.error(f"expected {ncols} columns, found {len(ln.fields)}", line=ln.number, check="column count")
        ident = ln.fields[position[cols["id"]]]
        if len(ident) > MAX_STRING_CHARS:  # said here, at its line (the dataset's check knows only a point number)
            raise table.error(f"the id holds a string of {len(ident)} characters ({ident[:20]!r}...); per-point "
                              f"strings are limited to {MAX_STRING_CHARS}", line=ln.number,
                              column=f"{position[cols['id']] + 1} ({cols['id']})", check="string length")
        ids.append(ident)
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
    z = values[cols["z"]]
    unc = values[cols["uncertainty"]]
    calib = values[calibrator] if calibrator else np.zeros(n_rows)
    # with a covariance, 0 means "all of it in the covariance"
    bad = np.flatnonzero(unc < 0 if "covariance" in files else unc <= 0)
    if bad.size:
        i = bad[0]
        raise table.error(
            f"uncertainty {unc[i]} is not positive" + (" (0 is allowed only with a covariance)" if unc[i] == 0 else ""),
            line=lines[1 + i].number, column=cols["uncertainty"], check="positive uncertainty"
        )
    bad = np.flatnonzero(~np.isin(calib, (0.0, 1.0)))
    if bad.size:
        raise table.error(
            f"calibrator flag {calib[bad[0]]} is not 0 or 1", line=lines[1 + bad[0]].number, column=calibrator, check="flag"
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
            + (f", calibrators {sel['calibrators']}" if calibrator else "") + "; duplicate light curves of one SN kept",
            "the registry entry's options.selection (for Pantheon+: Brout et al. 2022, ApJ 938, 110, Sec. 2)",
        )
    ]
    if "covariance" in files:
        spec = options["covariance"]
        covariance, asymmetry, how = covariance_from_file(files["covariance"], spec, unc, index)
        covariance_info = {
            "source": {"covariance": "release covariance", "inverse": "release inverse covariance, inverted",
                       "systematic_only": "release systematic-only covariance + diag(sigma^2) of the table"}[spec["gives"]],
            "file": files["covariance"].name,
            "layout": spec["layout"],
            "gives": spec["gives"],
            "scale": spec["scale"],
            "max_abs_asymmetry_before_symmetrization": asymmetry,
        }
        conversions.append(
            conversion(
                "covariance_subselection" if spec["gives"] == "covariance" else f"covariance_from_{spec['gives']}",
                how,
                "the registry entry's options.covariance (layout, gives, scale); Pantheon+: Brout et al. 2022, "
                "ApJ 938, 110; DES-SN5YR: Vincenzi et al. 2024 and Cobaya sn.desy5 (C + diag(MUERR_FINAL^2))",
                max_abs_asymmetry=asymmetry,
                gives=spec["gives"],
                scale=spec["scale"],
            )
        )
    else:
        covariance = unc[index] ** 2  # the variances: a diagonal covariance is kept without its N x N zeros
        covariance_info = {
            "source": "diagonal",
            "warning": (
                f"no covariance file in the registry entry: diagonal built from {cols['uncertainty']}, "
                "the release's per-point errors; systematic correlations are missing"
            ),
        }
        conversions.append(
            conversion(
                "diagonal_covariance",
                f"covariance = diag({cols['uncertainty']}^2) because no covariance file is registered",
                "the release's per-point uncertainty column (Pantheon+: ERR_DIAG, DataRelease README)",
            )
        )

    columns = {"id": np.asarray(ids, dtype=np.str_)[index], "zHD": z[index], "zHEL": values[cols["zhel"]][index]}
    for name in carry:
        columns[name] = values[name][index]
    columns["sigma_published"] = unc[index]  # the table's own error column (validation compares the covariance)
    if magnitude:
        columns["M_B"] = np.full(index.size, magnitude["M_B"])
    else:
        magnitude = {
            "M_B": None,
            "description": "free: m_b_corr = mu + M_B with M_B a nuisance parameter of the fit, as in the "
            "collaboration's cosmology fit (Brout et al. 2022)",
        }
    uncertainty = unc[index]
    if "covariance" in files:
        uncertainty = np.where(uncertainty > 0, uncertainty, np.sqrt(np.diag(covariance)))
    return Result(
        z=z[index],
        observable=values[cols["observable"]][index],
        uncertainty=uncertainty,
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


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    """The fiducial's mu (or m_b_corr); a free magnitude offset set to its best (inverse-variance weighted) value."""
    return best_offsets(dataset, predict_by_type(dataset, fiducial), OFFSET_FREE)
