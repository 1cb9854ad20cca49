"""A Cobaya likelihood for any derived dataset: ``likelihood: {pbuf_data.fit.cobaya.Dataset: {dataset: NAME, root: DIR}}``.

The class loads the published dataset, asks Cobaya's theory for the quantities its observable types need and
returns the dataset's own ``loglike`` (:mod:`pbuf_data.model.likelihood`), so Cobaya and ``ds.chi2`` are one computation.
What each observable type asks of the theory (Cobaya's names; D_M = (1+z) D_A, D_H = c/H):

=============================  ======================================================================
``DM_over_rd``                 angular_diameter_distance(z), rdrag: (1+z) D_A / r_d
``DH_over_rd``                 Hubble(z), rdrag: c / (H r_d)
``DV_over_rd``, ``rd_over_DV`` both: [z D_M^2 D_H]^(1/3) / r_d, and its inverse
``H_times_rd``                 Hubble(z), rdrag: H [km/s/Mpc] r_d [Mpc]
``DA_over_rd``                 angular_diameter_distance(z), rdrag: D_A / r_d
``theta_BAO_deg``              angular_diameter_distance(z), rdrag: (180/pi) r_d / ((1+z) D_A), in degrees
``H``                          Hubble(z) [km/s/Mpc]
``rs_EH98_over_DV``            as rd_over_DV, times 1.027369826 (r_s of the Eisenstein & Hu 1998 formula over r_d)
``fsigma8``                    fsigma8(z); where the dataset has the column ``omega_m_ref`` (Gold-2018), times the
                               Alcock-Paczynski factor H_ref D_M,ref / (H D_M) of a flat LCDM of matter and Lambda with
                               Omega_m = omega_m_ref (H0 cancels), so also Hubble(z) and angular_diameter_distance(z)
SN distance moduli/magnitudes  angular_diameter_distance(zHD): 5 log10[(1+zHEL)(1+zHD) D_A / Mpc] + 25, the
                               constant offset marginalized (or kept) as in ``ds.chi2``; the rows of an SN dataset
                               or of an SN member of a combination (column ``kind``), zHEL from the column ``zHEL``
=============================  ======================================================================

CMB distance priors (Chen, Huang & Wang 2019) are computed here from the theory's background in the convention
that reproduces the priors (``pbuf_data.model.cosmology.CMB_PRIOR_CONVENTION``): at the theory's own recombination
redshift z* (the derived parameter ``zstar`` of CAMB or CLASS), not at the Hu & Sugiyama fit:

``R``           sqrt(Omega_m) H0 D_M(z*) / c, with the parameters omegam, H0, zstar; D_M(z*) = int_0^z* c / H dz (flat)
``l_A``         pi D_M(z*) / r_s(z*), r_s(z*) = int_0^a* c_s / (a^2 H) da, c_s = c / sqrt(3 (1 + 3e4 omega_b a))
                (CosmoMC's and CAMB's approximate baryon loading); H from the theory's Hubble on grids in ln(1+z)
                (z <= 1200) and in a (z >= 1000), splined and integrated
``omega_b_h2``  the parameter ombh2
"""

from __future__ import annotations

import numpy as np
from cobaya.likelihood import Likelihood

from ..core.errors import PbufDataError
from ..model.dataset import load_dataset
from ..model.likelihood import sn_rows

C_KM_S = 299792.458

_NEEDS = {
    "DM_over_rd": ("angular_diameter_distance", "rdrag"),
    "DH_over_rd": ("Hubble", "rdrag"),
    "DV_over_rd": ("angular_diameter_distance", "Hubble", "rdrag"),
    "rd_over_DV": ("angular_diameter_distance", "Hubble", "rdrag"),
    "rs_EH98_over_DV": ("angular_diameter_distance", "Hubble", "rdrag"),
    "H_times_rd": ("Hubble", "rdrag"),
    "DA_over_rd": ("angular_diameter_distance", "rdrag"),
    "theta_BAO_deg": ("angular_diameter_distance", "rdrag"),
    "H": ("Hubble",),
    "fsigma8": ("fsigma8",),
    "R": ("Hubble", "omegam", "H0", "ombh2", "zstar"),
    "l_A": ("Hubble", "ombh2", "zstar"),
    "omega_b_h2": ("ombh2",),
}
_PARAMS = {"rdrag", "omegam", "H0", "ombh2", "zstar"}
EH98_OVER_CAMB = 1.027369826  # r_s(EH98) / r_d (Beutler et al. 2011; the 6dFGS conversion of the registry)
# where the CMB quantities are evaluated: H on a grid in ln(1+z) up to z = 1200 (D_M = int c/H dz, the integrand
# (1+z) c/H smooth in ln(1+z)), and on a grid in the scale factor from a = 1/1001 down to the deep radiation era
# (a^2 H is smooth in a there; splined and integrated from a = 0)
_X_DM = np.linspace(0.0, np.log(1201.0), 4001)
_A_SOUND = np.linspace(0.0, 1.0 / 1001.0, 2001)[1:]
_Z_CMB = np.concatenate([np.expm1(_X_DM), 1.0 / _A_SOUND - 1.0])


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
        types = set(self.data.observable_type.tolist())
        sn = sn_rows(self.data)  # the supernova rows
        self.sn_types = set(self.data.observable_type[sn].tolist())
        if self.sn_types & set(self.data.observable_type[~sn].tolist()):
            raise PbufDataError(f"observable types {sorted(self.sn_types)} name both supernova and other points",
                                dataset=self.dataset, check="cobaya observable types")
        if self.sn_types and "zHEL" not in self.data.columns:
            raise PbufDataError("supernova distance moduli need the heliocentric redshift column zHEL",
                                dataset=self.dataset, check="cobaya zHEL")
        unknown = sorted(types - set(_NEEDS) - self.sn_types)
        if unknown:
            raise PbufDataError(f"observable types {unknown} have no Cobaya theory quantity (see pbuf_data.fit.cobaya)",
                                dataset=self.dataset, check="cobaya observable types")
        self.has_cmb = bool(types & {"R", "l_A"})
        omega_m_ref = self.data.columns.get("omega_m_ref")
        self.omega_m_ref = None if omega_m_ref is None else np.asarray(omega_m_ref, dtype=np.float64)
        # zHEL of each SN type's rows, in the order the likelihood asks for them (theory(z of that type, type))
        self.zhel = {obs: np.asarray(self.data.columns["zHEL"], dtype=np.float64)[self.data.observable_type == obs]
                     for obs in self.sn_types}

    def get_requirements(self):
        z, types = self.data.z, self.data.observable_type
        reqs, grids = {}, {}
        if self.sn_types:
            grids["angular_diameter_distance"] = np.unique(z[np.isin(types, list(self.sn_types))])
        for obs in set(types.tolist()) - self.sn_types:
            for need in _NEEDS[obs]:
                if need in _PARAMS:
                    reqs[need] = None
                    continue
                if obs in ("R", "l_A"):
                    zs = _Z_CMB
                else:
                    zs = z[types == obs]
                grids[need] = np.unique(np.concatenate([grids.get(need, np.empty(0)), zs]))
        if self.omega_m_ref is not None and "fsigma8" in types:  # the Alcock-Paczynski factor needs H and D_M
            zs = z[types == "fsigma8"]
            for need in ("Hubble", "angular_diameter_distance"):
                grids[need] = np.unique(np.concatenate([grids.get(need, np.empty(0)), zs]))
        reqs.update({quantity: {"z": grid} for quantity, grid in grids.items()})
        return reqs

    def theory(self, z, observable_type):
        """The theory of one observable type at redshifts z, from Cobaya's provider."""
        p = self.provider
        if observable_type in self.sn_types:  # distance modulus 5 log10(D_L / 10 pc), D_L = (1+zHEL)(1+z) D_A(z)
            return 5 * np.log10((1 + self.zhel[observable_type]) * (1 + z) * p.get_angular_diameter_distance(z)) + 25
        if observable_type in ("R", "l_A", "omega_b_h2"):
            return np.full(len(z), self._cmb_now[observable_type])
        if observable_type == "H":
            return p.get_Hubble(z, units="km/s/Mpc")
        if observable_type == "fsigma8":
            fs8 = p.get_fsigma8(z)
            if self.omega_m_ref is None:
                return fs8
            return fs8 * self._ap_factor(z)
        rd = p.get_param("rdrag")
        if observable_type == "H_times_rd":
            return p.get_Hubble(z, units="km/s/Mpc") * rd
        if observable_type == "DH_over_rd":
            return C_KM_S / p.get_Hubble(z, units="km/s/Mpc") / rd
        dm = (1 + z) * p.get_angular_diameter_distance(z)
        if observable_type == "DM_over_rd":
            return dm / rd
        if observable_type == "DA_over_rd":
            return dm / (1 + z) / rd
        if observable_type == "theta_BAO_deg":
            return np.degrees(rd / dm)
        dv = np.cbrt(z * dm**2 * C_KM_S / p.get_Hubble(z, units="km/s/Mpc"))
        if observable_type == "DV_over_rd":
            return dv / rd
        return rd / dv if observable_type == "rd_over_DV" else EH98_OVER_CAMB * rd / dv

    def _ap_factor(self, z):
        """H_ref(z) D_M,ref(z) / (H(z) D_M(z)) for the fsigma8 points (reference: flat LCDM at omega_m_ref)."""
        from scipy.integrate import quad

        sel = self.data.observable_type == "fsigma8"
        om_ref = self.omega_m_ref[sel]
        if len(z) != om_ref.size:
            raise PbufDataError("fsigma8 redshifts do not match the omega_m_ref column", dataset=self.dataset,
                                check="cobaya theory")
        p = self.provider
        out = np.empty(len(z))
        for i, (zi, om) in enumerate(zip(z, om_ref)):
            e_ref = lambda x: np.sqrt(om * (1 + x) ** 3 + 1 - om)  # noqa: E731
            ref = e_ref(zi) * quad(lambda x: 1 / e_ref(x), 0, zi, epsabs=0, epsrel=1e-12)[0]  # (H D_M)_ref / c
            hdm = p.get_Hubble(zi, units="km/s/Mpc") * (1 + zi) * p.get_angular_diameter_distance(zi) / C_KM_S
            out[i] = ref / np.atleast_1d(hdm)[0]
        return out

    def _cmb(self) -> dict:
        """R, l_A and omega_b h^2 of the current theory point (see the module documentation)."""
        from scipy.interpolate import CubicSpline

        from ..model.cosmology import sound_horizon_approx

        p = self.provider
        ombh2, z_star = p.get_param("ombh2"), p.get_param("zstar")
        hubble = p.get_Hubble(_Z_CMB, units="km/s/Mpc")
        n_dm = len(_X_DM)
        dm = float(CubicSpline(_X_DM, C_KM_S * np.exp(_X_DM) / hubble[:n_dm]).integrate(0.0, np.log1p(z_star)))
        out = {"omega_b_h2": float(ombh2)}
        if "R" in self.data.observable_type:
            out["R"] = float(np.sqrt(p.get_param("omegam")) * p.get_param("H0") * dm / C_KM_S)
        if "l_A" in self.data.observable_type:
            a2h = CubicSpline(_A_SOUND, _A_SOUND**2 * hubble[n_dm:])
            rs = sound_horizon_approx(lambda z: a2h(1.0 / (1.0 + z)) * (1.0 + z) ** 2, ombh2, z_star)
            out["l_A"] = float(np.pi * dm / rs)
        return out

    def logp(self, **params_values):
        self._cmb_now = self._cmb() if self.has_cmb else None
        return self.lik.loglike(self.theory)
