"""Cosmic chronometers: an H(z) table and the Moresco et al. systematic covariance (reader, checks, mock, figure).

The table is read in the generic vocabulary (:mod:`._table`): ``options.table`` (by default no header) and
``options.columns`` ``z``, ``value`` (H in km/s/Mpc) and ``sigma`` by name or 1-based position (by default 1, 2, 3,
the layout of HzTable_MM_BC32.txt). The kind's option is the covariance recipe of Moresco et al. 2020, ApJ 898, 82
(arXiv:2003.07362):

C_ij = delta_ij sigma_i^2 + sum_k (H_i x_k(z_i) / 100) (H_j x_k(z_j) / 100)

for the systematic components k of ``options.systematics`` (columns of the percent table ``files.systematics``,
read as a table whose ``#`` header line names the columns, ``z`` first; linearly interpolated in z and held
constant beyond its ends, as numpy.interp does). The default {IMF, mod_ooo} follows the CCcovariance example
notebook; ``systematics: []`` keeps the diagonal statistical covariance.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import PbufDataError
from ._common import Result, conversion, predict_by_type
from ._mock import as_written, correlated_noise, lines
from ._table import read_columns, table_lines

KIND = "cc"
FIGURE = "panels"
AXIS_LABELS = {"H": r"$H(z)$ [km/s/Mpc]"}
# how the Moresco percent table is laid out: its '#' header line names the columns
SYSTEMATICS_READING = {"delimiter": "whitespace", "header": "comment_line", "header_extra_names": 0}


def check_entry(name: str, entry: dict) -> None:
    if entry["options"]["systematics"] and "systematics" not in entry["files"]:
        raise PbufDataError("options.systematics needs files.systematics", dataset=name, check="registry")


def _systematics_table(raw, components) -> dict:
    """Columns ``z`` and ``components`` of the percent table, z increasing."""
    lines_, header, _ = table_lines(raw, SYSTEMATICS_READING)
    if not header or header[0] != "z":
        raise raw.error("no '# z ...' header line naming the columns", line=lines_[0].number or 1, check="columns")
    missing = [k for k in components if k not in header]
    if missing:
        raise raw.error(f"columns {missing} not in the header {sorted(header)}", line=1, check="columns")
    numbers, table = read_columns(raw, SYSTEMATICS_READING, {name: name for name in ["z", *components]},
                                  key="options.systematics")
    bad = np.flatnonzero(np.diff(table["z"]) <= 0)
    if bad.size:
        raise raw.error("redshifts must increase", line=numbers[int(bad[0]) + 1], column=1, check="sorted z")
    return table


def moresco_covariance(z, hz, sigma, systematics: dict, components) -> np.ndarray:
    """diag(sigma^2) + sum_k (H_i x_k(z_i)/100)(H_j x_k(z_j)/100), x_k = np.interp on the percent table.

    ``systematics`` maps column names of the table (``z``, ``IMF``, ...) to arrays.
    """
    covariance = np.diag(np.asarray(sigma, dtype=float) ** 2)
    for k in components:
        part = hz * np.interp(z, systematics["z"], systematics[k]) / 100.0
        covariance += np.outer(part, part)
    return covariance


def derive(options, files) -> Result:
    table = files["table"]
    numbers, cols = read_columns(table, options["table"], options["columns"])
    z, hz, sigma = cols["z"], cols["value"], cols["sigma"]
    for i in np.flatnonzero(sigma <= 0)[:1]:
        raise table.error(f"uncertainty {sigma[i]} is not positive", line=numbers[i], column=options["columns"]["sigma"],
                          check="positive uncertainty")
    for i in np.flatnonzero(hz <= 0)[:1]:
        raise table.error(f"H(z) = {hz[i]} is not positive", line=numbers[i], column=options["columns"]["value"],
                          check="positive H")
    covariance = np.diag(sigma**2)
    steps = []
    metadata = {"systematics": list(options["systematics"])}
    if options["systematics"]:
        syst_file = files["systematics"]
        syst = _systematics_table(syst_file, options["systematics"])
        covariance = moresco_covariance(z, hz, sigma, syst, options["systematics"])
        outside = (z < syst["z"][0]) | (z > syst["z"][-1])
        metadata["systematics_table_range"] = [float(syst["z"][0]), float(syst["z"][-1])]
        metadata["points_outside_table_range"] = int(outside.sum())
        steps.append(
            conversion(
                "moresco_systematic_covariance",
                "C = diag(sigma^2) + sum_k (H_i x_k(z_i)/100)(H_j x_k(z_j)/100) with x_k the percent systematics "
                f"{options['systematics']} interpolated linearly in z (constant beyond the table's ends)",
                "Moresco et al. 2020, ApJ 898, 82 (arXiv:2003.07362); mmoresco/CCcovariance",
                components=list(options["systematics"]),
            )
        )
        source = f"diag(sigma^2) + {' + '.join(options['systematics'])} from {syst_file.name}"
    else:
        source = "diagonal (statistical errors only)"
    metadata["covariance"] = {"source": source}
    metadata["uncertainty"] = "sqrt(diag(covariance)), statistical + systematic; the published sigma is column 'sigma_published'"
    return Result(
        z=z,
        observable=hz,
        uncertainty=np.sqrt(np.diag(covariance)),
        covariance=covariance,
        observable_type=np.full(z.size, "H"),
        units={"H": "km/s/Mpc"},
        metadata=metadata,
        conversions=steps,
        columns={"sigma_published": sigma},
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: H(z) at the real redshifts and the Moresco systematics table --------------------------------------------

# HzTable_MM_BC32.txt: (z as written, H, sigma_H) -- the mock keeps z and the relative errors sigma_H / H
MOCK_POINTS = (
    ("0.07", 69.0, 19.6), ("0.09", 69.0, 12.0), ("0.12", 68.6, 26.2), ("0.17", 83.0, 8.0),
    ("0.179", 75.0, 4.0), ("0.199", 75.0, 5.0), ("0.20", 72.9, 29.6), ("0.27", 77.0, 14.0),
    ("0.28", 88.8, 36.6), ("0.352", 83.0, 14.0), ("0.38", 83.0, 13.5), ("0.4", 95.0, 17.0),
    ("0.4004", 77.0, 10.2), ("0.425", 87.1, 11.2), ("0.445", 92.8, 12.9), ("0.47", 89.0, 49.6),
    ("0.4783", 80.9, 9.0), ("0.48", 97.0, 62.0), ("0.593", 104.0, 13.0), ("0.68", 92.0, 8.0),
    ("0.75", 98.8, 33.6), ("0.781", 105.0, 12.0), ("0.875", 125.0, 17.0), ("0.88", 90.0, 40.0),
    ("0.9", 117.0, 23.0), ("1.037", 154.0, 20.0), ("1.3", 168.0, 17.0), ("1.363", 160.0, 33.6),
    ("1.43", 177.0, 18.0), ("1.53", 140.0, 14.0), ("1.75", 202.0, 40.0), ("1.965", 186.5, 50.4),
)  # fmt: skip
# data_MM20.dat (Moresco et al. 2020): percent systematics of H(z); used as the mock's systematic model
MOCK_SYSTEMATICS_HEADER = "# z   IMF  stlib  mod  mod_ooo"
MOCK_SYSTEMATICS = (
    (0.075, 0.47, 7.40, 15.86, 9.91), (0.125, 0.47, 7.40, 14.23, 6.98), (0.175, 0.47, 7.40, 13.34, 5.40),
    (0.225, 0.47, 7.40, 13.21, 5.40), (0.275, 0.47, 7.40, 13.29, 5.40), (0.325, 0.47, 7.40, 12.20, 5.40),
    (0.375, 0.47, 7.40, 12.99, 5.40), (0.425, 0.47, 7.40, 10.29, 6.20), (0.475, 0.46, 7.39, 8.91, 5.86),
    (0.525, 0.23, 7.40, 9.99, 6.51), (0.575, 0.28, 6.87, 10.09, 6.12), (0.625, 0.47, 6.65, 11.17, 6.21),
    (0.675, 0.47, 6.57, 11.12, 5.71), (0.725, 0.47, 5.90, 10.81, 5.16), (0.775, 0.45, 6.03, 10.75, 5.05),
    (0.825, 0.47, 6.10, 10.75, 5.05), (0.875, 0.47, 5.89, 9.08, 2.79), (0.925, 0.44, 5.80, 8.62, 3.70),
    (0.975, 0.40, 5.94, 7.32, 3.65), (1.025, 0.27, 6.07, 5.84, 3.37), (1.075, 0.20, 6.08, 6.02, 3.49),
    (1.125, 0.20, 6.07, 4.72, 2.33), (1.175, 0.19, 6.09, 4.31, 2.33), (1.225, 0.19, 6.09, 3.90, 2.33),
    (1.275, 0.19, 6.09, 3.90, 2.33), (1.325, 0.20, 6.09, 3.91, 2.34), (1.375, 0.19, 6.09, 3.90, 2.34),
    (1.425, 0.19, 6.09, 3.90, 2.33), (1.475, 0.20, 6.09, 3.91, 2.34),
)  # fmt: skip


def _positive_draw(truth: np.ndarray, covariance: np.ndarray, rng) -> np.ndarray:
    """truth + N(0, C) conditioned on every value being positive as written with one decimal.

    With errors up to 64 % of H, 1 seed in 8 would otherwise give an H(z) <= 0,
    which the derivation rejects; redrawing truncates the Gaussian's far tail only.
    """
    while True:
        values = truth + correlated_noise(covariance, rng)
        if (values >= 0.05).all():
            return values


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    """H(z) at the real redshifts with the real relative errors; noise from the full covariance at the
    fiducial H (the derivation rebuilds it from the noisy H, as done for the real data)."""
    z = np.array([float(p[0]) for p in MOCK_POINTS])
    truth = fid.H(z)
    sigma_strings, sigma = as_written(truth * np.array([p[2] / p[1] for p in MOCK_POINTS]), ".1f")
    table = np.array(MOCK_SYSTEMATICS)
    columns = dict(zip(MOCK_SYSTEMATICS_HEADER.lstrip("# ").split(), table.T))
    covariance = moresco_covariance(z, truth, sigma, columns, entry["options"]["systematics"])
    hz = _positive_draw(truth, covariance, rng)
    rows = [f"{p[0]} {h:.1f} {s}" for p, h, s in zip(MOCK_POINTS, hz, sigma_strings)]
    systematics = [MOCK_SYSTEMATICS_HEADER]
    systematics += [f"{r[0]:.3f} " + " ".join(f"{v:.2f}" for v in r[1:]) for r in MOCK_SYSTEMATICS]
    return {"table": lines(rows), "systematics": lines(systematics)}
