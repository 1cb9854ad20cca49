"""BAO as a type-coded table: one row per measurement, ``name z value sigma code`` (reader, checks, mock, figure).

MontePython's ``bao_2014.txt`` family writes its BAO compilations so: a row's integer code says what the value is
(its header: 3 = D_V/r_s, 4 = D_V in Mpc, 5 = D_A/r_s, 6 = c/(H r_s), 7 = r_s/D_V), errors are 1 sigma and
independent, and rows are chosen by name (MontePython's ``exclude``). Nothing about the codes is assumed: the entry's
``type_codes`` maps every code its rows use to an observable type and conversion (:mod:`._bao`, as a ``labels``
entry), so a compilation with other codes (an angular theta_BAO in degrees, say) is an entry, not code.
``rows: {exclude: [...]}`` or ``rows: {only: [...]}`` select rows by name; a name the file does not hold is an error
(a misspelt exclusion would keep the row silently). The table is read in the generic vocabulary (:mod:`._table`):
``table`` (no header by default; whitespace, TAB for names with spaces, or comma) and ``columns`` name, z, value,
sigma, code (by default the positions 1 to 5).
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


def _label_options(options: dict) -> dict:
    """The entry's options as the shared BAO label vocabulary sees them: the type codes are the labels."""
    return {**options, "labels": {str(code): spec for code, spec in options["type_codes"].items()}}


def check_entry(name: str, entry: dict) -> None:
    options = entry["options"]
    _bao.check_rs_fid(name, _label_options(options))
    rows = options["rows"]
    if rows.get("exclude") and rows.get("only"):
        raise PbufDataError("options.rows: give exclude or only, not both", dataset=name, check="registry")


def derive(options, files) -> Result:
    table = files["table"]
    opts = _label_options(options)
    numbers, cols = read_columns(table, options["table"], options["columns"], text_roles=("name", "code"))
    names, codes = cols["name"], cols["code"]
    rows = options["rows"]
    listed = rows.get("only") or rows.get("exclude") or []
    missing = sorted(set(listed) - set(names.tolist()))
    if missing:
        raise table.error(f"options.rows names {missing}, which no row of the table carries (names: {names.tolist()})",
                          check="row names")
    keep = [i for i, n in enumerate(names.tolist()) if (n in rows["only"] if rows.get("only") else n not in listed)]
    if not keep:
        raise table.error("options.rows leaves no row", check="row names")
    for i in keep:
        if codes[i] not in opts["labels"]:
            raise table.error(f"type code '{codes[i]}' of row '{names[i]}' is not in options.type_codes "
                              f"({sorted(opts['labels'])})", line=numbers[i], column=str(options["columns"]["code"]),
                              check="type code")
        if cols["sigma"][i] <= 0:
            raise table.error(f"uncertainty {cols['sigma'][i]} is not positive", line=numbers[i],
                              column=str(options["columns"]["sigma"]), check="positive uncertainty")
    labels = [str(codes[i]) for i in keep]
    sigma = cols["sigma"][keep]
    types, factors, covariance, conversions = _bao.convert(labels, opts, np.diag(sigma**2))
    if rows.get("only") or rows.get("exclude"):
        conversions.insert(0, conversion(
            "row_selection", f"kept rows {names[keep].tolist()} of {names.tolist()}",
            "the registry entry's options.rows (MontePython bao likelihoods: exclude)"))
    return Result(
        z=cols["z"][keep],
        observable=cols["value"][keep] * factors,
        uncertainty=sigma * factors,
        covariance=covariance,
        observable_type=types,
        units={t: _bao.UNITS[t] for t in sorted(set(types.tolist()))},
        metadata={
            "covariance": {"source": "diagonal: independent published measurements"},
            "sound_horizon": _bao.sound_horizon(table, opts, labels),
            "type_codes": {str(c): dict(s) for c, s in options["type_codes"].items()},
            "rows": {"kept": names[keep].tolist(), "in_file": names.tolist()},
        },
        conversions=conversions,
        columns={"name": names[keep], "type_code": codes[keep]},
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: a MontePython-like compilation, one row per (name, z) below, codes taken in turn from the entry ----------

# name, z, relative 1-sigma error (the bao_2014.txt rows and BOSS DR11 Lyman-alpha)
MOCK_ROWS = (("6DF", 0.106, 0.046), ("LOWZ", 0.32, 0.020), ("CMASS", 0.57, 0.0095), ("MGS", 0.15, 0.036),
             ("LyaQSO", 2.36, 0.035))
DELIMITERS = {"whitespace": "    ", "tab": "\t", "comma": ","}


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    options = entry["options"]
    reading, columns = options["table"], options["columns"]
    if reading["header"] == "comment_line" or reading["header_extra_names"]:
        raise PbufDataError("the type-coded mock writes tables with header none or first_line", check="mock")
    codes = sorted(options["type_codes"], key=str)
    rs_rescale = options.get("rs_rescale", _bao.EH98_TO_CAMB)
    width = max(int(c) if isinstance(c, int) or str(c).isdigit() else 0 for c in columns.values()) or 5
    sep = DELIMITERS[reading["delimiter"]]
    lines = [_mock.banner("MontePython-format type-coded BAO table", fid),
             "# code meanings: " + "; ".join(f"{c} = {options['type_codes'][c]['observable_type']}" for c in codes)]
    if reading["header"] == "first_line":
        lines.append(sep.join(str(columns[r]) for r in ("name", "z", "value", "sigma", "code")))
    for i, (name, z, relative) in enumerate(MOCK_ROWS):
        code = codes[i % len(codes)]
        truth = _bao.file_value(fid, options["type_codes"][code], z, options.get("rs_fid"), rs_rescale)
        sigma = relative * truth
        cells = {"name": name, "z": f"{z}", "value": f"{truth + sigma * rng.standard_normal():.6g}",
                 "sigma": f"{sigma:.4g}", "code": str(code)}
        row = ["0"] * width
        for role, column in columns.items():
            row[int(column) - 1] = cells[role]
        lines.append(sep.join(row) if reading["header"] == "none" else sep.join(cells[r] for r in
                                                                                 ("name", "z", "value", "sigma", "code")))
    return {"table": _mock.lines(lines)}
