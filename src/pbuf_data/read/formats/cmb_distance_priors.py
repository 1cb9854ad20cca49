"""CMB distance priors (R, l_A, omega_b h^2) with their covariance: reader, checks, mock, figure, prediction.

The layouts of Chen, Huang & Wang 2019 (JCAP 02, 028, arXiv:1808.05724), in the generic vocabulary: a table
(:mod:`._table`, ``options.table`` and ``options.columns``; by default no header, columns ``name`` 1, ``value`` 2,
``sigma`` 3) and a matrix (:mod:`._matrix`) chosen by ``covariance_from``:
``inverse_covariance``: the ``name mean`` table and the published inverse covariance of that vector (CosmoMC
``Distance_invcov.txt``), inverted here; ``correlation``: the ``name mean sigma`` table (Table 1) and the
correlation matrix, giving C_ij = rho_ij sigma_i sigma_j. ``parameters`` selects the priors kept (the marginal).

R and l_A are defined at the recombination redshift z* of a Boltzmann code
(CAMB's ``zstar``) *for each cosmology evaluated*, not at a fixed redshift,
with the sound horizon of CosmoMC's approximate sound speed: the convention
that reproduces the priors (:data:`pbuf_data.model.cosmology.CMB_PRIOR_CONVENTION`,
with the figures that show it). The dataset says so as data: ``z`` is NaN for
every prior (no fixed redshift), the per-point column ``z_definition`` names
the redshift each prior is evaluated at, ``metadata.z_star`` its definition and
``metadata.convention`` the whole convention (README, "Observable types").
"""

from __future__ import annotations

import numpy as np

from ...core.errors import PbufDataError
from ...model.cosmology import CMB_PRIOR_CONVENTION
from . import _matrix
from ._common import Result, conversion, predict_by_type
from ._mock import as_written, banner, correlated_noise, lines, matrix_text
from ._table import read_columns

KIND = "cmb"
FIGURE = "table"  # a table of the priors with the fiducial and the pull (pbuf_data.fit.plots)
AXIS_LABELS = {"R": r"$R$", "l_A": r"$\ell_A$", "omega_b_h2": r"$\omega_b$", "n_s": r"$n_s$"}

CITATION = "Chen, Huang & Wang 2019, JCAP 02 (2019) 028 (arXiv:1808.05724)"
Z_STAR = {
    "definition": "z* of recombination computed for each cosmology evaluated by a Boltzmann code (CAMB's zstar, "
    "where the Thomson optical depth reaches 1; Cobaya's derived parameter zstar); not a fixed redshift and not the "
    "Hu & Sugiyama 1996 fit, which moves l_A by +0.37 (4 sigma) at Planck's parameters",
    "reference": "the convention that reproduces " + CITATION + " (metadata.convention)",
}
# per-point column z_definition: the redshift each prior is evaluated at
Z_DEFINITION = {"R": "z_star_recombination", "l_A": "z_star_recombination", "omega_b_h2": "none", "n_s": "none"}


# the files of each covariance_from (registry roles): the table, then the matrix
FILES = {"inverse_covariance": ("mean", "inverse_covariance"), "correlation": ("mean_sigma", "correlation")}


def check_entry(name: str, entry: dict) -> None:
    """The files ``covariance_from`` needs are in the entry."""
    options = entry["options"]
    missing = set(FILES[options["covariance_from"]]) - set(entry["files"])
    if missing:
        raise PbufDataError(
            f"covariance_from '{options['covariance_from']}' needs files {sorted(missing)}", dataset=name, check="registry"
        )


def _read_table(raw, options, with_sigma: bool):
    """Names, means (and sigmas) of the table; a name listed twice is an error naming its line."""
    roles = ("name", "value", "sigma") if with_sigma else ("name", "value")
    columns = {role: options["columns"][role] for role in roles}
    numbers, cols = read_columns(raw, options["table"], columns, text_roles=("name",))
    names = cols["name"].tolist()
    for name, line in zip(names, numbers):
        if names.count(name) > 1:
            raise raw.error(f"parameter '{name}' listed twice", line=line, check="unique names")
    if with_sigma:
        for sigma, line in zip(cols["sigma"], numbers):
            if sigma <= 0:
                raise raw.error(f"sigma {sigma} is not positive", line=line, column=options["columns"]["sigma"],
                                check="positive uncertainty")
    return names, cols["value"], cols.get("sigma")


def derive(options, files) -> Result:
    wanted = options["parameters"]
    table_role, matrix_role = FILES[options["covariance_from"]]
    mean_file, matrix_file = files[table_role], files[matrix_role]
    if options["covariance_from"] == "inverse_covariance":
        names, means, _ = _read_table(mean_file, options, with_sigma=False)
        full, asymmetry = _matrix.from_inverse(matrix_file, len(names))
        steps = [
            conversion(
                "inverse_covariance_to_covariance",
                "covariance = inverse of the published inverse covariance, symmetrized as (C + C^T)/2",
                CITATION + ", appendix (Distance_invcov.txt)",
                asymmetry_of_input=asymmetry,
            )
        ]
        source = f"inverse of {matrix_file.name}"
    else:
        names, means, sigma = _read_table(mean_file, options, with_sigma=True)
        full = _matrix.from_correlation(matrix_file, sigma)
        steps = [
            conversion(
                "correlation_to_covariance",
                "C_ij = rho_ij sigma_i sigma_j from the published correlation matrix and 1-sigma errors",
                CITATION + ", Table 1",
            )
        ]
        source = f"{matrix_file.name} with sigmas of {mean_file.name}"
    missing = [p for p in wanted if p not in names]
    if missing:
        raise mean_file.error(f"parameters {missing} not in the file (it has {names})", check="parameters")
    index = [names.index(p) for p in wanted]
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
            "each is evaluated at (z_star_recombination: see z_star; none: no redshift)",
            "z_star": Z_STAR,
            "convention": CMB_PRIOR_CONVENTION,
            "definitions": {
                "R": "sqrt(Omega_m H0^2) D_M(z*) / c",
                "l_A": "pi D_M(z*) / r_s(z*), r_s with c_s = c / sqrt(3 (1 + 3e4 omega_b a)) (metadata.convention)",
                "omega_b_h2": "Omega_b h^2",
                "n_s": "scalar spectral index",
            },
        },
        conversions=steps,
        columns={"z_definition": np.array([Z_DEFINITION[p] for p in wanted], dtype=np.str_)},
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    """The fiducial's distance priors (:meth:`Fiducial.distance_priors`, in :data:`CMB_PRIOR_CONVENTION`)."""
    return predict_by_type(dataset, fiducial)


# -- mock: mean vector and inverse covariance of Chen, Huang & Wang 2019 ------------------------------------------

MOCK_PARAMETERS = ("R", "l_A", "omega_b_h2")
MOCK_SIGMA = (0.0046, 0.090, 0.00015)  # Chen, Huang & Wang 2019, Table 1 (TT,TE,EE+lowE)
MOCK_CORRELATION = ((1.0, 0.46, -0.66), (0.46, 1.0, -0.33), (-0.66, -0.33, 1.0))
MOCK_MEAN_FORMATS = {"R": ".6f", "l_A": ".4f", "omega_b_h2": ".8f"}


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    covariance = np.array(MOCK_CORRELATION) * np.outer(MOCK_SIGMA, MOCK_SIGMA)
    inverse_strings, inverse = as_written(np.linalg.inv(covariance), ".4f")
    truth = fid.distance_priors()
    values = np.array([truth[p] for p in MOCK_PARAMETERS]) + correlated_noise(np.linalg.inv(inverse), rng)
    mean = [
        banner("Planck 2018-format CMB distance priors", fid),
        "# Layout of the means of (R, l_A, omega_b h^2) transcribed from Chen, Huang & Wang 2019",
        "# (arXiv:1808.05724), appendix. R = sqrt(Omega_m) H0 D_M(z*)/c, l_A = pi D_M(z*)/r_s(z*),",
        "# z* of recombination, r_s with c_s = c/sqrt(3(1 + 3e4 omega_b a)).",
        "# columns: name  mean",
        *(f"{p} {v:{MOCK_MEAN_FORMATS[p]}}" for p, v in zip(MOCK_PARAMETERS, values)),
    ]
    inverse_text = [
        banner("Planck 2018-format CMB distance priors", fid),
        "# INVERSE covariance (not covariance!) of (R, l_A, omega_b_h2), built from the sigmas",
        "# (0.0046, 0.090, 0.00015) and correlations (0.46, -0.66, -0.33) of Chen, Huang & Wang 2019,",
        "# Table 1. chi2 = (x-d)^T C^-1 (x-d).",
        *matrix_text(inverse_strings, 3),
    ]
    return {"mean": lines(mean), "inverse_covariance": lines(inverse_text)}
