"""Baryon acoustic oscillations: what the BAO layouts share (labels -> observable types, conversions, sound-horizon
conventions, units, axis labels, the fiducial value as a release writes it).

A label of the file drives the observable type (``options.labels``). Only linear, documented conversions are applied (see :data:`CONVERSIONS`).
Every observable type means one theory computation (README, "Observable
types"): ``r_d`` is the CAMB drag-epoch sound horizon. A value published with
another sound horizon is either converted by its cited factor or keeps a type
naming its convention (:data:`CONVENTION_TYPES`, e.g. ``rs_EH98_over_DV``).
"""

from __future__ import annotations

import numpy as np

from ...core.errors import PbufDataError
from ...model.cosmology import EH98_TO_CAMB  # r_s(EH98 fitting formula) / r_d(CAMB)
from ._common import conversion

# r_d appears in the numerator of these observable types, in the denominator of the others
RD_IN_NUMERATOR = {"rd_over_DV", "H_times_rd", "theta_BAO_deg"}
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
    "theta_BAO_deg": "deg",
}
SOUND_HORIZON = {
    "camb_rd": "r_d, the sound horizon at the baryon drag epoch (CAMB convention)",
    "eh98": "r_s from the Eisenstein & Hu 1998 fitting formula, as published (not the CAMB r_d)",
    "converted": "r_d, the sound horizon at the baryon drag epoch (CAMB convention), converted from the published "
    "r_s of the Eisenstein & Hu 1998 fitting formula (conversion eh98_to_camb_rd)",
}
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


def _factor(conv: str, observable_type: str, rs_fid: float | None, rs_rescale: float = EH98_TO_CAMB) -> float:
    if conv == "none":
        return 1.0
    if conv == "divide_by_rs_fid":
        return 1.0 / rs_fid
    if conv == "multiply_by_rs_fid":
        return rs_fid
    if conv == "eh98_to_camb_rd":
        return 1.0 / rs_rescale if observable_type in RD_IN_NUMERATOR else rs_rescale
    raise ValueError(conv)


def convert(labels_used, options, covariance):
    """Each label's type and conversion factor f (x' = f x), and C' = F C F with F = diag(f) (exact for linear maps)."""
    rs_fid = options.get("rs_fid")
    rs_rescale = options.get("rs_rescale", EH98_TO_CAMB)
    types, factors, records = [], [], {}
    for label in labels_used:
        spec = options["labels"][label]
        types.append(spec["observable_type"])
        factors.append(_factor(spec["conversion"], spec["observable_type"], rs_fid, rs_rescale))
        if spec["conversion"] != "none" and label not in records:
            description, citation = CONVERSIONS[spec["conversion"]]
            if spec["conversion"] == "eh98_to_camb_rd" and rs_rescale != EH98_TO_CAMB:
                description = description.replace(str(EH98_TO_CAMB), f"{rs_rescale!r} (options.rs_rescale)")
            params = {"label": label, "observable_type": spec["observable_type"], "factor": factors[-1]}
            if spec["conversion"] == "eh98_to_camb_rd":
                params["rs_rescale"] = rs_rescale
            if "rs_fid" in spec["conversion"]:
                params["rs_fid_Mpc"] = rs_fid
            records[label] = conversion(spec["conversion"], description, citation, **params)
    f = np.asarray(factors)
    return np.asarray(types), f, covariance * np.outer(f, f), list(records.values())


def label_rows(raw, labels, numbers, column, options, skip=()) -> np.ndarray:
    """The indices of the rows whose label (read from ``column``) the registry knows; a label neither known nor
    skipped is an error naming its line."""
    known = options["labels"]
    keep = []
    for i, (label, line) in enumerate(zip(labels, numbers)):
        if label in known:
            keep.append(i)
        elif label not in skip:
            raise raw.error(
                f"unknown quantity label '{label}' (registry knows {sorted(known)}; skip_labels {sorted(skip)})",
                line=line,
                column=column,
                check="label",
            )
    if not keep:
        raise raw.error("no row carries a label listed in the registry", check="label")
    return np.array(keep)


def sound_horizon(raw, options, labels) -> str:
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


# axis text of the BAO observable types (plots); fsigma8 for the growth rate in a mixed BAO + full-shape vector
AXIS_LABELS = {
    "DM_over_rd": r"$D_M/r_d$",
    "DH_over_rd": r"$D_H/r_d$",
    "DV_over_rd": r"$D_V/r_d$",
    "DA_over_rd": r"$D_A/r_d$",
    "rd_over_DV": r"$r_d/D_V$",
    "rs_EH98_over_DV": r"$r_s^{\rm EH98}/D_V$",
    "H_times_rd": r"$H\,r_d$ [km/s]",
    "fsigma8": r"$f\sigma_8(z)$",
    "theta_BAO_deg": r"$\theta_{\rm BAO}$ [deg]",
}


def check_rs_fid(name: str, options: dict) -> None:
    """Labels that convert with r_s,fid need options.rs_fid."""
    needs_rs = any(lab["conversion"] in ("divide_by_rs_fid", "multiply_by_rs_fid") for lab in options["labels"].values())
    if needs_rs and "rs_fid" not in options:
        raise PbufDataError("labels convert with r_s,fid but options.rs_fid is not given", dataset=name, check="registry")


def file_value(fid, spec: dict, z: float, rs_fid: float | None, rs_rescale: float = EH98_TO_CAMB) -> float:
    """Fiducial value as the release writes it (for the mocks): the label's conversion, undone."""
    value = float(fid.bao(spec["observable_type"], z))
    conversion = spec.get("conversion", "none")
    if conversion == "divide_by_rs_fid":  # file holds D * r_s,fid / r_d
        return value * rs_fid
    if conversion == "multiply_by_rs_fid":  # file holds H * r_d / r_s,fid
        return value / rs_fid
    if conversion == "eh98_to_camb_rd":  # file holds the value with r_s(EH98) = EH98_TO_CAMB r_d in place of r_d
        return value * rs_rescale if spec["observable_type"] in RD_IN_NUMERATOR else value / rs_rescale
    if conversion == "none":
        return value
    raise PbufDataError(f"the mock generator cannot write values with conversion '{conversion}'", check="mock")
