"""Baryon acoustic oscillations.

Two layouts:

``bao_mean_cov``
    A mean file of ``z value label`` rows (``#`` comments allowed) and an
    N x N covariance in the same order: BOSS DR12 consensus (Alam et al. 2017)
    and DESI 2024 (DESI Collaboration 2024, arXiv:2404.03002). The label drives
    the observable type.
``bao_table``
    ``z value sigma label`` rows (6dFGS, SDSS MGS summaries), independent
    points, optionally with a chi2(alpha) table carried alongside.

Only linear, documented conversions are applied (see :data:`CONVERSIONS`).
Every observable type means one theory computation (README, "Observable
types"): ``r_d`` is the CAMB drag-epoch sound horizon. A value published with
another sound horizon is either converted by its cited factor or keeps a type
naming its convention (:data:`CONVENTION_TYPES`, e.g. ``rs_EH98_over_DV``).
"""

from __future__ import annotations

import numpy as np

from . import Result, conversion

# r_d appears in the numerator of these observable types, in the denominator of the others
RD_IN_NUMERATOR = {"rd_over_DV", "H_times_rd"}
# observable types of a value in a non-CAMB sound-horizon convention -> that convention
CONVENTION_TYPES = {"rs_EH98_over_DV": "eh98"}
UNITS = {
    "DM_over_rd": "dimensionless",
    "DH_over_rd": "dimensionless",
    "DV_over_rd": "dimensionless",
    "DA_over_rd": "dimensionless",
    "rd_over_DV": "dimensionless",
    "rs_EH98_over_DV": "dimensionless",
    "H_times_rd": "km/s",
    "fsigma8": "dimensionless",  # growth in a mixed BAO + full-shape vector (one covariance with the distances)
}
SOUND_HORIZON = {
    "camb_rd": "r_d, the sound horizon at the baryon drag epoch (CAMB convention)",
    "eh98": "r_s from the Eisenstein & Hu 1998 fitting formula, as published (not the CAMB r_d)",
    "converted": "r_d, the sound horizon at the baryon drag epoch (CAMB convention), converted from the published "
    "r_s of the Eisenstein & Hu 1998 fitting formula (conversion eh98_to_camb_rd)",
}
EH98_TO_CAMB = 1.027369826  # r_s(EH98 fitting formula) / r_d(CAMB) = 153.9 / 149.8; cobaya sixdf_2011_bao rs_rescale

CONVERSIONS = {
    "divide_by_rs_fid": (
        "published value D * (r_s,fid / r_d) in Mpc divided by r_s,fid gives D / r_d",
        "Alam et al. 2017, MNRAS 470, 2617, Sec. 7 (r_s,fid = 147.78 Mpc; CosmoMC/cobaya sdss_dr12_consensus_bao rs_fid)",
    ),
    "multiply_by_rs_fid": (
        "published value H * (r_d / r_s,fid) in km/s/Mpc multiplied by r_s,fid gives H * r_d in km/s "
        "(linear; not turned into D_H = c/H, which would need a non-linear Jacobian)",
        "Alam et al. 2017, MNRAS 470, 2617, Sec. 7",
    ),
    "eh98_to_camb_rd": (
        "sound horizon from the Eisenstein & Hu 1998 fitting formula converted to the CAMB drag-epoch r_d: "
        f"r_d(CAMB) = r_s(EH98) / {EH98_TO_CAMB}, so r_s(EH98)/D_V becomes r_d/D_V = value / {EH98_TO_CAMB} "
        "(sigma scaled by the same factor)",
        "Beutler et al. 2011, MNRAS 416, 3017 (r_s from the EH98 formula); factor 153.9/149.8 of "
        "cobaya bao/sixdf_2011_bao.yaml rs_rescale (EH98 and CAMB sound horizons of one cosmology)",
    ),
}


def _factor(conv: str, observable_type: str, rs_fid: float | None) -> float:
    if conv == "none":
        return 1.0
    if conv == "divide_by_rs_fid":
        return 1.0 / rs_fid
    if conv == "multiply_by_rs_fid":
        return rs_fid
    if conv == "eh98_to_camb_rd":
        return 1.0 / EH98_TO_CAMB if observable_type in RD_IN_NUMERATOR else EH98_TO_CAMB
    raise ValueError(conv)


def _convert(labels_used, options, covariance):
    """Each label's type and conversion factor f (x' = f x), and C' = F C F with F = diag(f) (exact for linear maps)."""
    rs_fid = options.get("rs_fid")
    types, factors, records = [], [], {}
    for label in labels_used:
        spec = options["labels"][label]
        types.append(spec["observable_type"])
        factors.append(_factor(spec["conversion"], spec["observable_type"], rs_fid))
        if spec["conversion"] != "none" and label not in records:
            description, citation = CONVERSIONS[spec["conversion"]]
            params = {"label": label, "observable_type": spec["observable_type"], "factor": factors[-1]}
            if "rs_fid" in spec["conversion"]:
                params["rs_fid_Mpc"] = rs_fid
            records[label] = conversion(spec["conversion"], description, citation, **params)
    f = np.asarray(factors)
    return np.asarray(types), f, covariance * np.outer(f, f), list(records.values())


def _label_rows(raw, rows, numbers, label_column: int, options, skip=()):
    known = options["labels"]
    keep = []
    for i, (row, line) in enumerate(zip(rows, numbers)):
        label = row[label_column]
        if label in known:
            keep.append(i)
        elif label not in skip:
            raise raw.error(
                f"unknown quantity label '{label}' (registry knows {sorted(known)}; skip_labels {sorted(skip)})",
                line=line,
                column=label_column + 1,
                check="label",
            )
    if not keep:
        raise raw.error("no row carries a label listed in the registry", check="label")
    return keep


def _sound_horizon(raw, options, labels) -> str:
    """Check that every label is converted to the CAMB r_d or typed by its convention; describe the result.

    With ``sound_horizon: camb_rd`` the values are used as published. With
    another convention each label either converts (``eh98_to_camb_rd``) to a
    CAMB r_d type or keeps the type naming that convention.
    """
    published = options["sound_horizon"]
    outcome = set()
    for label in labels:
        spec = options["labels"][label]
        otype, converts = spec["observable_type"], spec["conversion"] == "eh98_to_camb_rd"
        convention = CONVENTION_TYPES.get(otype)
        if converts and (published != "eh98" or convention):
            raise raw.error(
                f"label '{label}': conversion eh98_to_camb_rd needs options.sound_horizon 'eh98' and a CAMB r_d "
                f"observable type (not '{otype}')",
                check="sound horizon convention",
            )
        if not converts and convention != (None if published == "camb_rd" else published):
            named = [t for t, c in CONVENTION_TYPES.items() if c == published]
            raise raw.error(
                f"label '{label}' is published with sound horizon '{published}' but typed '{otype}': "
                + (f"convert it (eh98_to_camb_rd) or type it {named}" if named else "use a CAMB r_d observable type"),
                check="sound horizon convention",
            )
        outcome.add("converted" if converts else published)
    return "; ".join(SOUND_HORIZON[c] for c in sorted(outcome))


def derive_bao_mean_cov(options, files) -> Result:
    mean, cov_file = files["mean"], files["covariance"]
    numbers, rows = mean.table(3, numeric=[0, 1])
    # every label known or deliberately skipped, or an error naming the line
    keep = _label_rows(mean, rows, numbers, 2, options, skip=set(options["skip_labels"]))
    full = cov_file.matrix(len(rows))  # N x N for the N rows of the mean file
    covariance = full[np.ix_(keep, keep)]
    labels_in_file = sorted({r[2] for r in rows})
    rows = [rows[i] for i in keep]
    z = np.array([r[0] for r in rows])
    values = np.array([r[1] for r in rows])
    labels = [r[2] for r in rows]
    sound_horizon = _sound_horizon(mean, options, labels)
    types, factors, covariance, conversions = _convert(labels, options, covariance)
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
        units={t: UNITS[t] for t in sorted(set(types))},
        metadata={
            "covariance": {"source": f"release covariance {cov_file.name}"},
            "sound_horizon": sound_horizon,
            "labels_in_file": labels_in_file,
            "skipped_labels": sorted(set(options["skip_labels"])) if skipped else [],
        },
        conversions=conversions,
        columns={"label": np.array(labels, dtype=np.str_)},
    )


def derive_bao_table(options, files) -> Result:
    table = files["table"]
    numbers, rows = table.table(4, numeric=[0, 1, 2])
    keep = _label_rows(table, rows, numbers, 3, options, skip=set(options["skip_labels"]))
    for i in keep:
        if rows[i][2] <= 0:
            raise table.error(f"uncertainty {rows[i][2]} is not positive", line=numbers[i], column=3, check="positive uncertainty")
    z = np.array([rows[i][0] for i in keep])
    values = np.array([rows[i][1] for i in keep])
    sigma = np.array([rows[i][2] for i in keep])
    labels = [rows[i][3] for i in keep]
    metadata = {
        "covariance": {"source": "diagonal: independent published measurements"},
        "skipped_labels": sorted({r[3] for r in rows} & set(options["skip_labels"])),
    }
    metadata["sound_horizon"] = _sound_horizon(table, options, labels)
    conversions = []
    aux = {}
    if "chi2_table" in files:
        aux, summary = _chi2_table(files["chi2_table"], options["chi2_table"])
        metadata["chi2_table"] = summary
        if options["summary"] == "chi2_curve":
            if len(keep) != 1 or options["labels"][labels[0]]["observable_type"] != "DV_over_rd":
                raise table.error("summary 'chi2_curve' needs exactly one DV_over_rd row", check="chi2 summary")
            values = np.array([summary["DV_over_rd_at_minimum"]])
            sigma = np.array([summary["half_width_delta_chi2_1"]])
            conversions.append(
                conversion(
                    "chi2_curve_summary",
                    "value = D_V/r_d at the chi2 minimum, sigma = half the width of the Delta chi2 <= 1 interval "
                    "(linear interpolation between grid points)",
                    "Ross et al. 2015, MNRAS 449, 835 (likelihood file sdss_MGS_prob.txt)",
                    **summary,
                )
            )
    if options["gaussian_approximation"]:
        metadata["likelihood"] = (
            "Gaussian approximation of a non-Gaussian published likelihood"
            + ("; the chi2 table is carried as aux arrays chi2_alpha, chi2_DV_over_rd, chi2" if aux else "")
        )
    types, factors, covariance, more = _convert(labels, options, np.diag(sigma**2))
    return Result(
        z=z,
        observable=factors * values,
        uncertainty=factors * sigma,  # the published sigma scaled exactly (factors are positive)
        covariance=covariance,
        observable_type=types,
        units={t: UNITS[t] for t in sorted(set(types))},
        metadata=metadata,
        conversions=conversions + more,
        columns={"label": np.array(labels, dtype=np.str_)},
        aux=aux,
    )


def _chi2_table(raw, spec):
    """chi2(alpha) on an implicit grid alpha = linspace(alpha_min, alpha_max, N); D_V/r_d = alpha * fid."""
    lines = raw.lines()
    chi2 = np.empty(len(lines))
    for i, ln in enumerate(lines):
        if len(ln.fields) != 1:
            raise raw.error(f"expected 1 column, found {len(ln.fields)}", line=ln.number, check="column count")
        chi2[i] = raw.number(ln.fields[0], ln.number, 1)
    if chi2.size < 3:
        raise raw.error("a chi2 table needs at least 3 values", check="chi2 table")
    if (chi2 < 0).any():
        i = int(np.flatnonzero(chi2 < 0)[0])
        raise raw.error(f"negative chi2 {chi2[i]}", line=lines[i].number, check="chi2 >= 0")
    alpha = np.linspace(spec["alpha_min"], spec["alpha_max"], chi2.size)
    dv = alpha * spec["DV_over_rd_fid"]
    k = int(np.argmin(chi2))
    delta = chi2 - chi2[k]

    def crossing(indices):
        for j in indices:
            if delta[j] >= 1.0:
                prev = j + 1 if indices.step == -1 else j - 1
                return float(np.interp(1.0, [delta[prev], delta[j]], [dv[prev], dv[j]]))
        raise raw.error("the chi2 table never rises 1 above its minimum on this side", check="chi2 table")

    low = crossing(range(k - 1, -1, -1))
    high = crossing(range(k + 1, chi2.size))
    summary = {
        "n_values": int(chi2.size),
        "alpha_at_minimum": float(alpha[k]),
        "DV_over_rd_at_minimum": float(dv[k]),
        "chi2_minimum": float(chi2[k]),
        "delta_chi2_1_interval": [low, high],
        "half_width_delta_chi2_1": (high - low) / 2,
    }
    return {"chi2_alpha": alpha, "chi2_DV_over_rd": dv, "chi2": chi2}, summary
