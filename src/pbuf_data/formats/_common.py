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
