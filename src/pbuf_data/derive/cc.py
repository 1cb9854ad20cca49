"""Cosmic chronometers: H(z) table with the Moresco et al. systematic covariance.

C_ij = delta_ij sigma_i^2 + sum_k (H_i x_k(z_i) / 100) (H_j x_k(z_j) / 100)

for the systematic components k chosen in the registry (columns of the
percent table, linearly interpolated in z and held constant beyond its ends,
as numpy.interp does). Recipe: Moresco et al. 2020, ApJ 898, 82
(arXiv:2003.07362); the default {IMF, mod_ooo} follows the CCcovariance
example notebook.
"""

from __future__ import annotations

import numpy as np

from . import Result, conversion


def _systematics_table(raw):
    """Header ``# z IMF stlib mod mod_ooo`` (a comment line) then rows of numbers."""
    header = None
    for number, line in raw.numbered_lines():
        stripped = line.strip()
        if stripped.startswith("#"):
            fields = stripped.lstrip("#").split()
            if fields and fields[0] == "z":
                header = fields
                break
        elif stripped:
            break
    if header is None:
        raise raw.error("no '# z ...' header line naming the columns", line=1, check="columns")
    numbers, rows = raw.table(len(header))
    table = np.array(rows)
    if (np.diff(table[:, 0]) <= 0).any():
        i = int(np.flatnonzero(np.diff(table[:, 0]) <= 0)[0]) + 1
        raise raw.error("redshifts must increase", line=numbers[i], column=1, check="sorted z")
    return {name: table[:, i] for i, name in enumerate(header)}


def moresco_covariance(z, hz, sigma, systematics: dict, components) -> np.ndarray:
    """diag(sigma^2) + sum_k (H_i x_k(z_i)/100)(H_j x_k(z_j)/100), x_k = np.interp on the percent table.

    ``systematics`` maps column names of the table (``z``, ``IMF``, ...) to arrays.
    """
    covariance = np.diag(np.asarray(sigma, dtype=float) ** 2)
    for k in components:
        part = hz * np.interp(z, systematics["z"], systematics[k]) / 100.0
        covariance += np.outer(part, part)
    return covariance


def derive_hz_table(options, files) -> Result:
    table = files["table"]
    numbers, rows = table.table(3)
    data = np.array(rows)
    z, hz, sigma = data.T
    for i in np.flatnonzero(sigma <= 0)[:1]:
        raise table.error(f"uncertainty {sigma[i]} is not positive", line=numbers[i], column=3, check="positive uncertainty")
    for i in np.flatnonzero(hz <= 0)[:1]:
        raise table.error(f"H(z) = {hz[i]} is not positive", line=numbers[i], column=2, check="positive H")
    covariance = np.diag(sigma**2)
    steps = []
    metadata = {"systematics": list(options["systematics"])}
    if options["systematics"]:
        syst_file = files["systematics"]
        syst = _systematics_table(syst_file)
        missing = [k for k in options["systematics"] if k not in syst]
        if missing:
            raise syst_file.error(f"columns {missing} not in the header {sorted(syst)}", line=1, check="columns")
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
