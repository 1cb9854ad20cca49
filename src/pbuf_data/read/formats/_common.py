"""What every layout module shares: the :class:`Result` a reader returns, cited conversions, the default fiducial
prediction of a dataset's points."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Result:
    """What a layout's reader returns, before metadata and provenance are attached."""

    z: np.ndarray
    observable: np.ndarray
    uncertainty: np.ndarray
    covariance: np.ndarray
    observable_type: np.ndarray
    units: dict
    metadata: dict = field(default_factory=dict)
    conversions: list = field(default_factory=list)
    columns: dict = field(default_factory=dict)
    aux: dict = field(default_factory=dict)


def conversion(name: str, description: str, citation: str, **parameters) -> dict:
    """A documented, cited change of a published value, recorded in provenance."""
    return {"name": name, "description": description, "citation": citation, "parameters": parameters}


def predict_by_type(dataset, fiducial) -> np.ndarray:
    """The fiducial prediction of every point, by its observable type and z (:meth:`Fiducial.predict`)."""
    model = np.empty(len(dataset))
    for otype in set(dataset.observable_type.tolist()):
        sel = dataset.observable_type == otype
        model[sel] = fiducial.predict(otype, dataset.z[sel])
    return model


def best_offsets(dataset, model: np.ndarray, free_types) -> np.ndarray:
    """``model`` with the free magnitude offset of its rows of ``free_types`` (SN m_b_corr, offset-free mu) at its
    best, inverse-variance weighted value: one offset per member of a combination (column ``member``), else one."""
    members = dataset.columns.get("member")
    groups = np.zeros(len(dataset), dtype=int) if members is None else np.unique(members, return_inverse=True)[1]
    free = np.isin(dataset.observable_type, sorted(free_types))
    for group in np.unique(groups):
        sel = (groups == group) & free
        if sel.any():
            w = 1 / dataset.uncertainty[sel] ** 2
            model[sel] += np.sum(w * (dataset.observable[sel] - model[sel])) / np.sum(w)
    return model
