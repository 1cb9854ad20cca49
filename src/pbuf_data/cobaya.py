"""A Cobaya likelihood for any derived dataset: ``likelihood: {pbuf_data.cobaya.Dataset: {dataset: NAME, root: DIR}}``.

The class loads the published dataset, asks Cobaya's theory for the quantities its observable types need and
returns the dataset's own ``loglike`` (:mod:`pbuf_data.likelihood`), so Cobaya and ``ds.chi2`` are one computation.
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
                               constant offset marginalized (or kept) as in ``ds.chi2``
=============================  ======================================================================

CMB distance priors (Chen, Huang & Wang 2019) are computed here from the theory's background, at the z* of the
Hu & Sugiyama (1996, eqs. E1-E3) fitting formula for the cosmology's omega_b and omega_m (not the theory code's own
z*, which the priors do not use):

``R``           sqrt(Omega_m) H0 D_M(z*) / c, with the parameters omegam, H0 and angular_diameter_distance near z*
``l_A``         pi D_M(z*) / r_s(z*), r_s(z*) = int_z*^inf c_s / H dz, c_s = c / sqrt(3 (1 + 3 omega_b / (4 omega_gamma
                (1+z)))), omega_gamma from T_cmb (option, 2.7255 K); H from the theory's Hubble on a grid to z = 1e8
``omega_b_h2``  the parameter ombh2
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
    "rs_EH98_over_DV": ("angular_diameter_distance", "Hubble", "rdrag"),
    "H_times_rd": ("Hubble", "rdrag"),
    "DA_over_rd": ("angular_diameter_distance", "rdrag"),
    "theta_BAO_deg": ("angular_diameter_distance", "rdrag"),
    "H": ("Hubble",),
    "fsigma8": ("fsigma8",),
    "R": ("angular_diameter_distance", "omegam", "H0", "ombh2"),
    "l_A": ("angular_diameter_distance", "Hubble", "omegam", "H0", "ombh2"),
    "omega_b_h2": ("ombh2",),
}
_PARAMS = {"rdrag", "omegam", "H0", "ombh2"}
EH98_OVER_CAMB = 1.027369826  # r_s(EH98) / r_d (Beutler et al. 2011; the 6dFGS conversion of the registry)
# where the CMB quantities are evaluated: D_M on a grid around every plausible z*, H from there to deep radiation era
_Z_STAR_GRID = np.linspace(1000.0, 1200.0, 401)
_Z_SOUND = np.concatenate([np.linspace(1000.0, 1200.0, 401)[:-1], np.geomspace(1200.0, 1e8, 1200)])


def z_star_hu_sugiyama(ombh2: float, omh2: float) -> float:
    """Photon decoupling redshift, Hu & Sugiyama 1996 (ApJ 471, 542) eqs. E1-E3."""
    g1 = 0.0783 * ombh2**-0.238 / (1.0 + 39.5 * ombh2**0.763)
    g2 = 0.560 / (1.0 + 21.1 * ombh2**1.81)
    return 1048.0 * (1.0 + 0.00124 * ombh2**-0.738) * (1.0 + g1 * omh2**g2)


def omega_gamma_h2(t_cmb: float) -> float:
    """Photon density omega_gamma = Omega_gamma h^2 = 4 sigma_SB T^4 / c^3 / (rho_crit / h^2)."""
    sigma_sb, c, g, mpc = 5.670374419e-8, 299792458.0, 6.67430e-11, 3.0856775814913673e22
    rho_crit_h2 = 3 * (100e3 / mpc) ** 2 / (8 * np.pi * g)
    return 4 * sigma_sb * t_cmb**4 / c**3 / rho_crit_h2


class Dataset(Likelihood):
    """Cobaya likelihood of one derived dataset (options: dataset, root, form, marginalize_offset)."""

    dataset: str | None = None
    root: str = "."
    form: str = "auto"
    marginalize_offset: bool | None = None
    T_cmb: float = 2.7255

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
        self.has_cmb = bool(types & {"R", "l_A"})
        omega_m_ref = self.data.columns.get("omega_m_ref")
        self.omega_m_ref = None if omega_m_ref is None else np.asarray(omega_m_ref, dtype=np.float64)
        zhel = self.data.columns.get("zHEL")
        self.zhel = np.asarray(zhel, dtype=np.float64) if zhel is not None else self.data.z

    def get_requirements(self):
        z, types = self.data.z, self.data.observable_type
        if self.is_sn:
            return {"angular_diameter_distance": {"z": z}}
        reqs, grids = {}, {}
        for obs in set(types.tolist()):
            for need in _NEEDS[obs]:
                if need in _PARAMS:
                    reqs[need] = None
                    continue
                if obs in ("R", "l_A"):
                    zs = _Z_STAR_GRID if need == "angular_diameter_distance" else _Z_SOUND
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

        p = self.provider
        ombh2, h0, om = p.get_param("ombh2"), p.get_param("H0"), p.get_param("omegam")
        z_star = z_star_hu_sugiyama(ombh2, om * (h0 / 100) ** 2)
        dm = CubicSpline(_Z_STAR_GRID, (1 + _Z_STAR_GRID) * p.get_angular_diameter_distance(_Z_STAR_GRID))(z_star)
        out = {"R": float(np.sqrt(om) * h0 * dm / C_KM_S), "omega_b_h2": float(ombh2)}
        if "l_A" in self.data.observable_type:
            # r_s = int c_s/H dz = int f dx with x = ln(1+z), f = c_s (1+z)/H smooth in x: a cubic spline of f on
            # the grid integrated from z*; beyond z = 1e8 (radiation era, H ~ (1+z)^2) the tail is f at the end
            x = np.log1p(_Z_SOUND)
            rb = 0.75 * ombh2 / omega_gamma_h2(self.T_cmb) / (1 + _Z_SOUND)
            f = C_KM_S / np.sqrt(3 * (1 + rb)) / p.get_Hubble(_Z_SOUND, units="km/s/Mpc") * (1 + _Z_SOUND)
            spline = CubicSpline(x, f)
            rs = float(spline.integrate(np.log1p(z_star), x[-1])) + float(f[-1])
            out["l_A"] = float(np.pi * dm / rs)
        return out

    def logp(self, **params_values):
        if self.is_sn:
            z = self.data.z
            da = self.provider.get_angular_diameter_distance(z)
            return self.lik.loglike(5 * np.log10((1 + self.zhel) * (1 + z) * da) + 25)
        self._cmb_now = self._cmb() if self.has_cmb else None
        return self.lik.loglike(self.theory)
