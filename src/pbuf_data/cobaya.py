"""A Cobaya likelihood for any derived dataset: ``likelihood: {pbuf_data.cobaya.Dataset: {dataset: NAME, root: DIR}}``.

The class loads the published dataset, asks Cobaya's theory for the quantities its observable types need and
returns the dataset's own ``loglike`` (:mod:`pbuf_data.likelihood`), so Cobaya and ``ds.chi2`` are one computation.
What each observable type asks of the theory (Cobaya's names; D_M = (1+z) D_A, D_H = c/H):

=============================  ======================================================================
``DM_over_rd``                 angular_diameter_distance(z), rdrag: (1+z) D_A / r_d
``DH_over_rd``                 Hubble(z), rdrag: c / (H r_d)
``DV_over_rd``, ``rd_over_DV`` both: [z D_M^2 D_H]^(1/3) / r_d, and its inverse
``H_times_rd``                 Hubble(z), rdrag: H [km/s/Mpc] r_d [Mpc]
``H``                          Hubble(z) [km/s/Mpc]
``fsigma8``                    fsigma8(z)
SN distance moduli/magnitudes  angular_diameter_distance(zHD): 5 log10[(1+zHEL)(1+zHD) D_A / Mpc] + 25, the
                               constant offset marginalized (or kept) as in ``ds.chi2``
=============================  ======================================================================

CMB distance priors (R, l_A at the Hu & Sugiyama z*) are not a quantity Cobaya's Boltzmann theories provide at
that z*; a CMB-prior dataset is refused with that reason.
"""

from __future__ import annotations

import numpy as np
from cobaya.likelihood import Likelihood

from .dataset import load_dataset
from .errors import PbufDataError

C_KM_S = 299792.458

_NEEDS = {
    "DM_over_rd": ("angular_diameter_distance", "rdrag"),
    "DH_over_rd": ("Hubble", "rdrag"),
    "DV_over_rd": ("angular_diameter_distance", "Hubble", "rdrag"),
    "rd_over_DV": ("angular_diameter_distance", "Hubble", "rdrag"),
    "H_times_rd": ("Hubble", "rdrag"),
    "H": ("Hubble",),
    "fsigma8": ("fsigma8",),
}


class Dataset(Likelihood):
    """Cobaya likelihood of one derived dataset (options: dataset, root, form, marginalize_offset)."""

    dataset: str | None = None
    root: str = "."
    form: str = "auto"
    marginalize_offset: bool | None = None

    def initialize(self):
        if not self.dataset:
            raise PbufDataError("the Cobaya likelihood needs 'dataset: NAME'", check="cobaya options")
        self.data = load_dataset(self.dataset, root=self.root)
        self.lik = self.data.likelihood(form=self.form, marginalize_offset=self.marginalize_offset)
        self.is_sn = self.data.metadata.get("kind") == "sn"
        types = set(self.data.observable_type.tolist())
        unknown = sorted(types - set(_NEEDS)) if not self.is_sn else []
        if unknown:
            raise PbufDataError(f"observable types {unknown} have no Cobaya theory quantity (see pbuf_data.cobaya)",
                                dataset=self.dataset, check="cobaya observable types")
        zhel = self.data.columns.get("zhel", self.data.columns.get("zHEL"))
        self.zhel = np.asarray(zhel, dtype=np.float64) if zhel is not None else self.data.z

    def get_requirements(self):
        z = self.data.z
        if self.is_sn:
            return {"angular_diameter_distance": {"z": z}}
        reqs = {}
        for obs in set(self.data.observable_type.tolist()):
            zs = z[self.data.observable_type == obs]
            for need in _NEEDS[obs]:
                if need == "rdrag":
                    reqs["rdrag"] = None
                else:
                    previous = reqs.get(need, {"z": np.empty(0)})["z"]
                    reqs[need] = {"z": np.unique(np.concatenate([previous, zs]))}
        return reqs

    def theory(self, z, observable_type):
        """The theory of one observable type at redshifts z, from Cobaya's provider."""
        p = self.provider
        if observable_type == "H":
            return p.get_Hubble(z, units="km/s/Mpc")
        if observable_type == "fsigma8":
            return p.get_fsigma8(z)
        rd = p.get_param("rdrag")
        if observable_type == "H_times_rd":
            return p.get_Hubble(z, units="km/s/Mpc") * rd
        if observable_type == "DH_over_rd":
            return C_KM_S / p.get_Hubble(z, units="km/s/Mpc") / rd
        dm = (1 + z) * p.get_angular_diameter_distance(z)
        if observable_type == "DM_over_rd":
            return dm / rd
        dv = np.cbrt(z * dm**2 * C_KM_S / p.get_Hubble(z, units="km/s/Mpc"))
        return dv / rd if observable_type == "DV_over_rd" else rd / dv

    def logp(self, **params_values):
        if self.is_sn:
            z = self.data.z
            da = self.provider.get_angular_diameter_distance(z)
            return self.lik.loglike(5 * np.log10((1 + self.zhel) * (1 + z) * da) + 25)
        return self.lik.loglike(self.theory)
