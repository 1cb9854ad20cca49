"""CMB distance priors (R, l_A, omega_b h^2) with their covariance.

Layouts of Chen, Huang & Wang 2019 (JCAP 02, 028, arXiv:1808.05724):
``inverse_covariance``: a ``name mean`` file and the published inverse
covariance of that vector (CosmoMC ``Distance_invcov.txt``), inverted here;
``correlation``: a ``name mean sigma`` file (Table 1) and the correlation
matrix, giving C_ij = rho_ij sigma_i sigma_j.

R and l_A are defined at the decoupling redshift z* of the Hu & Sugiyama
(1996) fitting formula *for each cosmology evaluated*, not at a fixed
redshift. The dataset says so as data: ``z`` is NaN for every prior (no fixed
redshift), the per-point column ``z_definition`` names the definition of the
redshift each prior is evaluated at, and ``metadata.z_star`` gives the formula
and its reference (README, "Observable types").
"""

from __future__ import annotations

import numpy as np

from . import Result, conversion

CITATION = "Chen, Huang & Wang 2019, JCAP 02 (2019) 028 (arXiv:1808.05724)"
Z_STAR = {
    "definition": "z* of the Hu & Sugiyama 1996 fitting formula, computed for each cosmology evaluated "
    "(not a fixed redshift; neither Planck's 1089.92 nor a Boltzmann code's z*)",
    "formula": "z* = 1048 (1 + 0.00124 w_b^-0.738) (1 + g1 w_m^g2), g1 = 0.0783 w_b^-0.238 / (1 + 39.5 w_b^0.763), "
    "g2 = 0.560 / (1 + 21.1 w_b^1.81), with w_b = Omega_b h^2 and w_m = Omega_m h^2",
    "reference": "Hu & Sugiyama 1996, ApJ 471, 542, eqs. E1-E3, as used by " + CITATION,
}
# per-point column z_definition: the redshift each prior is evaluated at
Z_DEFINITION = {"R": "z_star_hu_sugiyama_1996", "l_A": "z_star_hu_sugiyama_1996", "omega_b_h2": "none", "n_s": "none"}


def _names(raw, rows, numbers):
    names = [r[0] for r in rows]
    for name, line in zip(names, numbers):
        if names.count(name) > 1:
            raise raw.error(f"parameter '{name}' listed twice", line=line, check="unique names")
    return names


def _select(raw, names, wanted):
    missing = [p for p in wanted if p not in names]
    if missing:
        raise raw.error(f"parameters {missing} not in the file (it has {names})", check="parameters")
    return [names.index(p) for p in wanted]


def derive_distance_priors(options, files) -> Result:
    wanted = options["parameters"]
    if options["covariance_from"] == "inverse_covariance":
        mean_file, inv_file = files["mean"], files["inverse_covariance"]
        numbers, rows = mean_file.table(2, numeric=[1])
        names = _names(mean_file, rows, numbers)
        inverse = inv_file.matrix(len(names))
        try:
            np.linalg.cholesky(0.5 * (inverse + inverse.T))
        except np.linalg.LinAlgError:
            raise inv_file.error("inverse covariance is not positive definite", check="positive definite") from None
        full = np.linalg.inv(inverse)
        full = 0.5 * (full + full.T)
        means = np.array([r[1] for r in rows])
        steps = [
            conversion(
                "inverse_covariance_to_covariance",
                "covariance = inverse of the published inverse covariance, symmetrized as (C + C^T)/2",
                CITATION + ", appendix (Distance_invcov.txt)",
                asymmetry_of_input=float(np.max(np.abs(inverse - inverse.T))),
            )
        ]
        source = f"inverse of {inv_file.name}"
    else:
        mean_file, corr_file = files["mean_sigma"], files["correlation"]
        numbers, rows = mean_file.table(3, numeric=[1, 2])
        names = _names(mean_file, rows, numbers)
        for row, line in zip(rows, numbers):
            if row[2] <= 0:
                raise mean_file.error(f"sigma {row[2]} is not positive", line=line, column=3, check="positive uncertainty")
        corr = corr_file.matrix(len(names))
        if not np.allclose(np.diag(corr), 1.0):
            raise corr_file.error("correlation matrix diagonal is not 1", check="correlation diagonal")
        sigma = np.array([r[2] for r in rows])
        full = corr * np.outer(sigma, sigma)
        means = np.array([r[1] for r in rows])
        steps = [
            conversion(
                "correlation_to_covariance",
                "C_ij = rho_ij sigma_i sigma_j from the published correlation matrix and 1-sigma errors",
                CITATION + ", Table 1",
            )
        ]
        source = f"{corr_file.name} with sigmas of {mean_file.name}"
    index = _select(mean_file, names, wanted)
    covariance = full[np.ix_(index, index)]
    if len(index) < len(names):
        steps.append(
            conversion(
                "marginalize_parameters",
                f"kept {wanted} of {names}: the sub-block of the covariance is the marginal covariance",
                CITATION,
            )
        )
    return Result(
        z=np.full(len(index), np.nan),
        observable=means[index],
        uncertainty=np.sqrt(np.diag(covariance)),
        covariance=covariance,
        observable_type=np.array(wanted),
        units={p: "dimensionless" for p in wanted},
        metadata={
            "covariance": {"source": source},
            "z": "NaN: no prior is a measurement at a fixed redshift; column z_definition names the redshift "
            "each is evaluated at (z_star_hu_sugiyama_1996: see z_star; none: no redshift)",
            "z_star": Z_STAR,
            "definitions": {
                "R": "sqrt(Omega_m H0^2) D_M(z*) / c",
                "l_A": "pi D_M(z*) / r_s(z*)",
                "omega_b_h2": "Omega_b h^2",
                "n_s": "scalar spectral index",
            },
        },
        conversions=steps,
        columns={"z_definition": np.array([Z_DEFINITION[p] for p in wanted], dtype=np.str_)},
    )
