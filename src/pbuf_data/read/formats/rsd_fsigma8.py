"""Growth rate f*sigma8 compilation with sub-survey block covariances: reader, checks, mock, figure, prediction.

Layout of Sagredo, Nesseris & Sapone 2018 (PRD 98, 083543) as distributed in
snesseris/RSD-growth: a ``z fs8 sigma`` table, covariance blocks for
consecutive rows (WiggleZ, SDSS eBOSS quasars) and a LaTeX table holding the
fiducial Omega_m of each survey (needed for Alcock-Paczynski corrections) and
its references. Compilations that carry Omega_m (and a survey or reference
name) as columns of the table itself declare them with ``omega_m_ref_column``
(and ``reference_column``) instead of a LaTeX file. Points outside the blocks
are independent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...core.errors import PbufDataError
from ._common import Result, conversion, predict_by_type
from ._mock import as_written, correlated_noise, lines, matrix_text
from ._table import table_lines

KIND = "rsd"
FIGURE = "panels"  # f sigma8(z) with the fiducial, without the Alcock-Paczynski factor
AXIS_LABELS = {"fsigma8": r"$f\sigma_8(z)$"}

_ROW = re.compile(r"^\s*([^&]+)&([^&]+)&([^&]+)&([^&]+)&(.*?)\\\\\s*(\\hline)?\s*$")
_CITE = re.compile(r"\\cite\{([^}]*)\}")


def _reference_table(raw):
    """Data rows of the LaTeX tabular: (line, z, fs8, sigma, omega_m_ref, cite keys)."""
    rows = []
    for number, line in raw.numbered_lines():
        match = _ROW.match(line)
        if not match or "$" in match.group(1):
            continue  # header or non-data line
        cells = [c.strip() for c in match.groups()[:4]]
        values = [raw.number(c, number, i + 1) for i, c in enumerate(cells)]
        keys = ",".join(k.strip() for group in _CITE.findall(match.group(5)) for k in group.split(","))
        rows.append((number, *values, keys))
    if not rows:
        raise raw.error("no data rows 'z & fs8 & sigma & Om_ref & \\cite{...} \\\\' found", check="latex table")
    return rows


def check_entry(name: str, entry: dict) -> None:
    for block in entry["options"]["blocks"]:
        if block["file"] not in entry["files"]:
            raise PbufDataError(f"block file '{block['file']}' is not among files", dataset=name, check="registry")
        if block["last_row"] < block["first_row"]:
            raise PbufDataError("block last_row < first_row", dataset=name, check="registry")


def _rows(table, reading: dict, ncols: int, ref_col: int | None):
    """(line numbers, rows) of the main table laid out as ``options.table`` says (whitespace, TAB or CSV; header
    line, '#' header or none), the columns by position: numbers, and text in the reference column."""
    lines, _, width = table_lines(table, reading)
    if width != ncols:
        raise table.error(f"expected {ncols} columns, found {width}", line=lines[0].number or None, check="column count")
    numbers, rows = [], []
    for ln in lines[1:]:
        if len(ln.fields) != ncols:
            raise table.error(f"expected {ncols} columns, found {len(ln.fields)}", line=ln.number, check="column count")
        rows.append([tok if i == (ref_col or 0) - 1 else table.number(tok, ln.number, i + 1)
                     for i, tok in enumerate(ln.fields)])
        numbers.append(ln.number)
    if not rows:
        raise table.error("the table has no data rows", check="non-empty")
    return numbers, rows


def derive(options, files) -> Result:
    table = files["table"]
    om_col, ref_col = options.get("omega_m_ref_column"), options.get("reference_column")
    ncols = max(3, om_col or 0, ref_col or 0)
    numbers, rows = _rows(table, options["table"], ncols, ref_col)
    data = np.array([r[:3] for r in rows], dtype=np.float64)
    z, fs8, sigma = data.T
    for i in np.flatnonzero(sigma <= 0)[:1]:
        raise table.error(f"uncertainty {sigma[i]} is not positive", line=numbers[i], column=3, check="positive uncertainty")

    if om_col:
        if "reference_table" in files:
            raise files["reference_table"].error("give Omega_m either as omega_m_ref_column or in a reference_table, "
                                                 "not both", check="registry")
        omega_m_ref = np.array([r[om_col - 1] for r in rows], dtype=np.float64)
        for i in np.flatnonzero((omega_m_ref <= 0) | (omega_m_ref >= 1))[:1]:
            raise table.error(f"Omega_m,ref {omega_m_ref[i]} is not in (0, 1)", line=numbers[i], column=om_col,
                              check="omega_m_ref")
        references = np.array([r[ref_col - 1] if ref_col else "" for r in rows], dtype=np.str_)
        source = f"column {om_col} of {table.name}"
    elif "reference_table" in files:
        ref = files["reference_table"]
        ref_rows = _reference_table(ref)
        if len(ref_rows) != len(rows):
            raise ref.error(f"{len(ref_rows)} data rows, the main table has {len(rows)}", check="row count")
        for i, (line, rz, rf, rs, _, _) in enumerate(ref_rows):
            if (rz, rf, rs) != (z[i], fs8[i], sigma[i]):
                raise ref.error(
                    f"row ({rz}, {rf}, {rs}) differs from line {numbers[i]} of {table.name} ({z[i]}, {fs8[i]}, {sigma[i]})",
                    line=line,
                    check="matches main table",
                )
        omega_m_ref = np.array([r[4] for r in ref_rows])
        references = np.array([r[5] for r in ref_rows], dtype=np.str_)
        source = ref.name
    else:
        raise table.error("the fiducial Omega_m of each point is needed: options.omega_m_ref_column or a "
                          "reference_table file", check="registry")

    covariance = np.diag(sigma**2)
    covered = np.zeros(z.size, dtype=bool)
    blocks = []
    for block in options["blocks"]:
        raw = files[block["file"]]
        first, last = block["first_row"] - 1, block["last_row"]
        if last > z.size:
            raise raw.error(f"block rows {first + 1}..{last} exceed the {z.size} rows of {table.name}", check="block rows")
        if covered[first:last].any():
            raise raw.error(f"block rows {first + 1}..{last} overlap another block", check="block rows")
        block_cov = raw.matrix(last - first)
        covariance[first:last, first:last] = block_cov
        covered[first:last] = True
        blocks.append({"file": raw.name, "rows": [first + 1, last]})
    return Result(
        z=z,
        observable=fs8,
        uncertainty=sigma,
        covariance=covariance,
        observable_type=np.full(z.size, "fsigma8"),
        units={"fsigma8": "dimensionless"},
        metadata={
            "covariance": {"source": "diagonal sigma^2 with published sub-survey blocks", "blocks": blocks},
            "omega_m_ref": "per point in column 'omega_m_ref' (fiducial Omega_m of each survey, for AP corrections)",
            "omega_m_ref_source": source,
        },
        conversions=[
            conversion(
                "block_covariance",
                "covariance assembled from sigma^2 on the diagonal and the published blocks for consecutive rows",
                "Sagredo, Nesseris & Sapone 2018, PRD 98, 083543 (arXiv:1806.10822)",
                blocks=blocks,
            )
        ],
        columns={"omega_m_ref": omega_m_ref, "reference": references},
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    """f sigma8(z) of the fiducial, without the Alcock-Paczynski factor of each point's Omega_m,ref."""
    return predict_by_type(dataset, fiducial)


# -- mock: Gold-2018 table, block covariances and the LaTeX reference table ----------------------------------------

# (z, sigma as written, Omega_m,ref, references) of data_growth_2018_main.txt / Table_with_the_data.txt
MOCK_POINTS = (
    ("0.02", "0.0465", "0.3", r"\cite{Huterer:2016uyq}"),
    ("0.02", "0.065", "0.3", r"\cite{Turnbull:2011ty},\cite{Hudson:2012gt}"),
    ("0.02", "0.048", "0.266", r"\cite{Davis:2010sw},\cite{Hudson:2012gt}"),
    ("0.10", "0.130", "0.3", r"\cite{Feix:2015dla}"),
    ("0.15", "0.145", "0.31", r"\cite{Howlett:2014opa}"),
    ("0.17", "0.060", "0.3", r"\cite{Song:2008qt}"),
    ("0.18", "0.090", "0.27", r"\cite{Blake:2013nif}"),
    ("0.38", "0.060", "0.27", r"\cite{Blake:2013nif}"),
    ("0.25", "0.0583", "0.25", r"\cite{Samushia:2011cs}"),
    ("0.37", "0.0378", "0.25", r"\cite{Samushia:2011cs}"),
    ("0.32", "0.095", "0.274", r"\cite{Sanchez:2013tga}"),
    ("0.59", "0.060", "0.307115", r"\cite{Chuang:2013wga}"),
    ("0.44", "0.080", "0.27", r"\cite{Blake:2012pj}"),
    ("0.60", "0.063", "0.27", r"\cite{Blake:2012pj}"),
    ("0.73", "0.072", "0.27", r"\cite{Blake:2012pj}"),
    ("0.60", "0.120", "0.3", r"\cite{Pezzotta:2016gbo}"),
    ("0.86", "0.110", "0.3", r"\cite{Pezzotta:2016gbo}"),
    ("1.40", "0.116", "0.27", r"\cite{Okumura:2015lvp}"),
    ("0.978", "0.176", "0.31", r"\cite{Zhao:2018jxv}"),
    ("1.230", "0.099", "0.31", r"\cite{Zhao:2018jxv}"),
    ("1.526", "0.070", "0.31", r"\cite{Zhao:2018jxv}"),
    ("1.944", "0.106", "0.31", r"\cite{Zhao:2018jxv}"),
)


@dataclass(frozen=True)
class _BlockStyle:
    """Correlation of a covariance block and how its file is written."""

    correlation: tuple[tuple[float, ...], ...]
    value_format: str  # format spec; "" = Python's shortest repr, as in Cij_SDSS.txt
    separator: str
    newline: str


# correlations of Cij_WiggleZ.txt (Blake et al. 2012) and Cij_SDSS.txt (Zhao et al. 2018), by registry role
MOCK_BLOCKS = {
    "wigglez": _BlockStyle(((1.0, 0.5099, 0.0), (0.5099, 1.0, 0.56), (0.0, 0.56, 1.0)), ".6f", " ", "\n"),
    "sdss": _BlockStyle(
        (
            (1.0, 0.5118, 0.2667, -0.0113),
            (0.5118, 1.0, 0.6288, 0.0722),
            (0.2667, 0.6288, 1.0, 0.4721),
            (-0.0113, 0.0722, 0.4721, 1.0),
        ),
        "",
        "\t",
        "\r\n",
    ),
}
MOCK_LATEX_HEAD = (
    r"\begin{table}[!t]",
    r"\caption[]{MOCK compilation of $f\sigma_8(z)$ generated by pbuf_data.read.mock from the fiducial flat LCDM "
    r"(layout, redshifts, errors, reference $\Omega_{m_0}$ and references of Sagredo, Nesseris \& Sapone 2018); "
    r"NOT survey data. \label{tab:fs8tab}}",
    r"\begin{center}",
    r"\begin{tabular}{ccccccccc}",
    r"\hline",
    r"\hline",
    r"$z$     & $f\sigma_8(z)$ & $\sigma_{f\sigma_8}(z)$  & $\Omega_{m,0}^\text{ref}$ & Ref. \\ \hline",
)
MOCK_LATEX_TAIL = (r"\hline", r"\hline", r"\end{tabular}", r"\end{center}", r"\end{table}")


def _mock_block(style: _BlockStyle, sigma: np.ndarray) -> tuple[str, np.ndarray]:
    """Text of a block covariance file (no final newline) and the matrix it holds."""
    strings, written = as_written(np.array(style.correlation) * np.outer(sigma, sigma), style.value_format)
    return lines(matrix_text(strings, sigma.size, style.separator), style.newline, final=False), written


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    z_strings = [p[0] for p in MOCK_POINTS]
    sigma = np.array([float(p[1]) for p in MOCK_POINTS])
    covariance = np.diag(sigma**2)
    texts = {}
    for block in entry["options"]["blocks"]:
        if block["file"] not in MOCK_BLOCKS:
            raise PbufDataError(
                f"no mock covariance block for role '{block['file']}' (known: {sorted(MOCK_BLOCKS)})", check="mock"
            )
        first, last = block["first_row"] - 1, block["last_row"]
        text, written = _mock_block(MOCK_BLOCKS[block["file"]], sigma[first:last])
        texts[block["file"]] = text
        covariance[first:last, first:last] = written
    fs8 = fid.fsigma8(np.array([float(z) for z in z_strings])) + correlated_noise(covariance, rng)
    fs8_strings = [format(v, ".3f") for v in fs8.tolist()]
    table = [f"{z} {f} {p[1]}" for z, f, p in zip(z_strings, fs8_strings, MOCK_POINTS)]
    latex = [f"{z}    & {f} & {p[1]}  & {p[2]} & {p[3]} \\\\" for z, f, p in zip(z_strings, fs8_strings, MOCK_POINTS)]
    texts["table"] = lines(table, "\r\n", final=False)
    texts["reference_table"] = lines([*MOCK_LATEX_HEAD, *latex, *MOCK_LATEX_TAIL], final=False)
    return texts
