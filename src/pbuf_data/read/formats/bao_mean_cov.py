"""BAO as a mean file of ``z value label`` rows and an N x N covariance in the same order (reader, checks, mock).

BOSS DR12 consensus (Alam et al. 2017) and DESI 2024 (DESI Collaboration 2024, arXiv:2404.03002) write it; the
label of each row drives its observable type and conversion (:mod:`._bao`). Distances, H*r_d and f*sigma8 may
share the vector (BOSS DR12 BAO + full shape): one dataset with one covariance. Rows of ``skip_labels`` are left
out and the covariance sub-selected to the kept rows and columns (the marginal of a Gaussian). ``#`` comments are
allowed in the mean file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import PbufDataError
from . import _bao, _mock
from ._common import Result, conversion, predict_by_type
from ._matrix import covariance_from_file
from ._table import read_columns

KIND = "bao"
FIGURE = "panels"  # one panel pair (values, pulls) per observable type
AXIS_LABELS = _bao.AXIS_LABELS


def check_entry(name: str, entry: dict) -> None:
    _bao.check_rs_fid(name, entry["options"])
    spec = entry["options"].get("covariance")
    if spec and spec["gives"] == "systematic_only":
        raise PbufDataError("options.covariance.gives systematic_only needs a table of errors; a mean file has none",
                            dataset=name, check="registry")


def derive(options, files) -> Result:
    mean, cov_file = files["mean"], files["covariance"]
    numbers, cols = read_columns(mean, options["table"], options["columns"], text_roles=("label",))
    # every label known or deliberately skipped, or an error naming the line
    keep = _bao.label_rows(mean, cols["label"], numbers, options["columns"]["label"], options,
                           skip=set(options["skip_labels"]))
    spec = options.get("covariance")  # absent: the file is the N x N covariance, rows of N values
    matrix_steps = []
    if spec:
        full, asymmetry, how = covariance_from_file(cov_file, spec, np.zeros(len(numbers)))
        matrix_steps.append(conversion(f"covariance_from_{spec['gives']}", how, "the registry entry's "
                                       "options.covariance (layout, gives, scale)", max_abs_asymmetry=asymmetry,
                                       gives=spec["gives"], scale=spec["scale"]))
    else:
        full = cov_file.matrix(len(numbers))  # N x N for the N rows of the mean file
    covariance = full[np.ix_(keep, keep)]
    labels_in_file = sorted(set(cols["label"]))
    z, values = cols["z"][keep], cols["value"][keep]
    labels = [cols["label"][i] for i in keep]
    sound_horizon = _bao.sound_horizon(mean, options, labels)
    types, factors, covariance, conversions = _bao.convert(labels, options, covariance)
    conversions = matrix_steps + conversions
    skipped = len(full) - len(keep)
    if skipped:
        conversions.append(conversion(
            "label_skip", f"{skipped} rows with labels {sorted(set(options['skip_labels']))} left out; the covariance "
            "sub-selected to the kept rows and columns (the marginal of a Gaussian)", "the registry entry's skip_labels"))
    return Result(
        z=z,
        observable=factors * values,
        uncertainty=np.sqrt(np.clip(np.diag(covariance), 0, None)),
        covariance=covariance,
        observable_type=types,
        units={t: _bao.UNITS[t] for t in sorted(set(types))},
        metadata={
            "covariance": {"source": f"release {spec['gives'] if spec else 'covariance'} {cov_file.name}"
                           + (f" times {spec['scale']:g}" if spec and spec["scale"] != 1 else "")},
            "sound_horizon": sound_horizon,
            "labels_in_file": labels_in_file,
            "skipped_labels": sorted(set(options["skip_labels"])) if skipped else [],
        },
        conversions=conversions,
        columns={"label": np.array(labels, dtype=np.str_)},
    )


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: the BOSS DR12 consensus and DESI 2024 layouts ----------------------------------------------------------

@dataclass(frozen=True)
class _BaoDesign:
    """Rows (z, label, relative error), the correlation matrix and the text layout of a release."""

    rows: tuple[tuple[float, str, float], ...]
    correlation: tuple[tuple[float, ...], ...]
    z_format: str
    value_format: str
    label_separator: str
    cov_format: str
    header: tuple[str, ...] = ()


# Alam et al. 2017: correlations of BAO_consensus_covtot_dM_Hz.txt; errors ~1.6 % (D_M), 2.5 % (H)
BOSS_DR12 = _BaoDesign(
    rows=(
        (0.38, "DM_over_rs", 0.0165),
        (0.38, "bao_Hz_rs", 0.025),
        (0.51, "DM_over_rs", 0.0152),
        (0.51, "bao_Hz_rs", 0.025),
        (0.61, "DM_over_rs", 0.0161),
        (0.61, "bao_Hz_rs", 0.025),
    ),
    correlation=(
        (1.0, 0.4009, 0.4325, 0.1434, 0.1698, 0.0572),
        (0.4009, 1.0, 0.1633, 0.4243, 0.0728, 0.1634),
        (0.4325, 0.1633, 1.0, 0.4186, 0.4617, 0.1873),
        (0.1434, 0.4243, 0.4186, 1.0, 0.1869, 0.4897),
        (0.1698, 0.0728, 0.4617, 0.1869, 1.0, 0.4358),
        (0.0572, 0.1634, 0.1873, 0.4897, 0.4358, 1.0),
    ),
    z_format=".2f",
    value_format=".6g",
    label_separator="  ",
    cov_format=".6g",
)


def _pair_correlation(n: int, pairs: dict[tuple[int, int], float]) -> tuple[tuple[float, ...], ...]:
    corr = np.eye(n)
    for (i, j), r in pairs.items():
        corr[i, j] = corr[j, i] = r
    return tuple(map(tuple, corr.tolist()))


# DESI 2024 VI: D_M-D_H pairs correlated as in desi_2024_gaussian_bao_ALL_GCcomb_cov.txt; errors 1.5-2.5 %
DESI_DR1 = _BaoDesign(
    rows=(
        (0.295, "DV_over_rs", 0.019),
        (0.510, "DM_over_rs", 0.0185),
        (0.510, "DH_over_rs", 0.025),
        (0.706, "DM_over_rs", 0.019),
        (0.706, "DH_over_rs", 0.025),
        (0.930, "DM_over_rs", 0.015),
        (0.930, "DH_over_rs", 0.0194),
        (1.317, "DM_over_rs", 0.0248),
        (1.317, "DH_over_rs", 0.025),
        (1.491, "DV_over_rs", 0.025),
        (2.330, "DM_over_rs", 0.0238),
        (2.330, "DH_over_rs", 0.020),
    ),
    correlation=_pair_correlation(
        12, {(1, 2): -0.4454, (3, 4): -0.4205, (5, 6): -0.3891, (7, 8): -0.444, (10, 11): -0.4775}
    ),
    z_format=".3f",
    value_format=".8f",
    label_separator=" ",
    cov_format=".8e",
    header=("# [z] [value at z] [quantity]",),
)
BAO_DESIGNS = {
    frozenset({"DM_over_rs", "bao_Hz_rs"}): BOSS_DR12,
    frozenset({"DV_over_rs", "DM_over_rs", "DH_over_rs"}): DESI_DR1,
}


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    options = entry["options"]
    spec = options.get("covariance")
    if spec and (spec["layout"], spec["gives"], spec["scale"]) != ("square", "covariance", 1):
        raise PbufDataError("the BAO mean + covariance mock writes the covariance itself, N rows of N values "
                            f"(options.covariance {spec})", check="mock")
    design = BAO_DESIGNS.get(frozenset(options["labels"]))
    if design is None:
        raise PbufDataError(
            f"no mock layout for BAO labels {sorted(options['labels'])} (known: {[sorted(k) for k in BAO_DESIGNS]})",
            check="mock",
        )
    z = np.array([row[0] for row in design.rows])
    labels = [row[1] for row in design.rows]
    rs_fid = options.get("rs_fid")
    truth = np.array([_bao.file_value(fid, options["labels"][lab], zi, rs_fid) for zi, lab in zip(z, labels)])
    sigma = truth * np.array([row[2] for row in design.rows])
    cov_strings, covariance = _mock.as_written(np.array(design.correlation) * np.outer(sigma, sigma), design.cov_format)
    values = truth + _mock.correlated_noise(covariance, rng)
    mean = [
        f"{zi:{design.z_format}} {v:{design.value_format}}{design.label_separator}{lab}"
        for zi, v, lab in zip(z, values, labels)
    ]
    return {
        "mean": _mock.lines([*design.header, *mean]),
        "covariance": _mock.lines(_mock.matrix_text(cov_strings, z.size)),
    }
