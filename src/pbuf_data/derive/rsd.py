"""Growth rate f*sigma8 compilation with sub-survey block covariances.

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

import numpy as np

from . import Result, conversion

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


def derive_fsigma8(options, files) -> Result:
    table = files["table"]
    om_col, ref_col = options.get("omega_m_ref_column"), options.get("reference_column")
    ncols = max(3, om_col or 0, ref_col or 0)
    numbers, rows = table.table(ncols, numeric=[i for i in range(ncols) if i != (ref_col or 0) - 1])
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
