"""Fiducial flat LCDM predictions for the mock surveys and their closure tests.

One observable per method, vectorized over the redshift ``z``, in numpy only
(the plot and mock jobs import no astropy or scipy). The background is the one
of :class:`astropy.cosmology.FlatLambdaCDM` with photons at ``T_cmb`` and
``N_eff`` *massless* neutrinos, so radiation is in H(z) and the model is
exactly flat (Omega_Lambda = 1 - Omega_m - Omega_r); the tests compare it with
astropy. Integrals use a fixed :data:`QUADRATURE_NODES`-point Gauss-Legendre
rule in a variable where the integrand is analytic on and near the interval
(D_M in ln(1+z), the sound horizon in a, the growth integral in sqrt(a)):
from z = 1e-4 to 1e4 the results differ from a 512-point rule's by less than
3e-14 relative, and D_M from astropy's adaptive quadrature by 1.5e-12.
Massive neutrinos are neglected: Planck's Omega_m contains 0.06 eV neutrinos,
which are still relativistic at z* but are counted as matter here; this lowers
r_d by 0.16 Mpc and raises l_A by 0.24 (both about 0.1 %).

Values for the default fiducial (Planck 2018 TT,TE,EE+lowE+lensing,
A&A 641, A6, Table 2; its CAMB values in brackets): z_d = 1063.4 (1059.9),
r_d = 146.61 Mpc (147.09), f sigma8(0) = 0.428, f sigma8(0.5) = 0.475.

CMB distance priors follow the convention that reproduces Chen, Huang & Wang
2019 (:data:`CMB_PRIOR_CONVENTION`): z* of recombination, r_s(z*) with
CosmoMC's approximate baryon loading R_b = 3e4 omega_b a. A Boltzmann code
gives z* (Cobaya's ``zstar``); this module has none and takes z* from the fit
of Aizpuru, Arjona & Nesseris 2021, 1.07 below CAMB's at Planck's parameters
(lowering l_A by 0.20), while its massless neutrinos raise l_A by 0.24: for
Planck TT,TE,EE+lowE it gives R = 1.7502, l_A = 301.49 (CAMB in the same
convention: 1.7507, 301.45; the priors: 1.7502, 301.47).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

# r_s(EH98 fitting formula) / r_d(CAMB) = 153.9 / 149.8; cobaya sixdf_2011_bao rs_rescale
EH98_TO_CAMB = 1.027369826

C_KM_S = 299792.458  # speed of light in km/s (exact, SI)
# CODATA 2018 and IAU 2015, as astropy.constants: Stefan-Boltzmann (W m^-2 K^-4; 2 pi^5 k^4 / (15 h^3 c^2)
# from the exact SI k, h, c), G (m^3 kg^-1 s^-2), the megaparsec (m; 1 pc = 648000 / pi au, 1 au = 149597870700 m)
SIGMA_SB = 5.6703744191844314e-8
G_NEWTON = 6.67430e-11
MPC_M = 648000.0 / np.pi * 149597870700.0 * 1e6
NEUTRINO_TO_PHOTON = 0.22710731766  # 7/8 (4/11)^(4/3): one massless neutrino species over the photons

QUADRATURE_NODES = 64
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
_NODES, _WEIGHTS = 0.5 * (_NODES + 1.0), 0.5 * _WEIGHTS  # on [0, 1]
# the sound horizon is integrated in a up to this scale factor, in ln a beyond
_A_SOUND_SPLIT = 0.01

# CMB distance priors (Chen, Huang & Wang 2019): the baryon loading of the sound speed, R_b = 3 rho_b / (4 rho_gamma)
# = BARYON_LOADING_APPROX omega_b a, as CosmoMC and CAMB's dsound_da_approx (their theta_MC) write it; it is
# 3 / (4 omega_gamma) for omega_gamma = 2.5e-5, i.e. T_cmb = 2.7294 K, not the 30330 of T_cmb = 2.7255 K
BARYON_LOADING_APPROX = 3.0e4
CMB_PRIOR_CONVENTION = {
    "z_star": "z* of recombination from a Boltzmann code (CAMB's zstar, where the Thomson optical depth reaches 1; "
    "Cobaya's derived parameter zstar), not the Hu & Sugiyama 1996 fit",
    "R": "sqrt(Omega_m H0^2) D_M(z*) / c, Omega_m all non-relativistic matter today (massive neutrinos included)",
    "l_A": "pi D_M(z*) / r_s(z*), r_s(z*) = int_0^a* c_s / (a^2 H) da, c_s = c / sqrt(3 (1 + 3e4 omega_b a)), "
    "H the full background (photons, neutrinos with their masses, matter, Lambda)",
    "reference": "Chen, Huang & Wang 2019, JCAP 02, 028 (arXiv:1808.05724); r_s as CosmoMC's and CAMB's "
    "dsound_da_approx (the sound horizon of theta_MC); z* as CAMB's derived zstar",
    "evidence": "with this convention CAMB gives chi2 = 0.16 at Planck 2018 TT,TE,EE+lowE (H0 67.27, omega_b 0.02236, "
    "omega_c 0.1202, one 0.06 eV neutrino), and LCDM fitted to the three priors alone gives omega_b 0.022360, "
    "omega_c 0.12000, H0 67.31 (Planck: 0.02236, 0.1202, 67.27; compared with Planck's own LCDM constraints, which "
    "the paper says its priors reproduce: its LCDM results table was not available here). The paper's own "
    "likelihood code (l_A = pi / theta_MC, z* of Hu & Sugiyama) gives chi2 = 19.4 there (l_A 301.82), the exact "
    "sound speed at the Hu & Sugiyama z* 69.5 (l_A 302.13)",
}


def sound_horizon_approx(hubble, omega_b_h2: float, z: float) -> float:
    """r_s(z) = int_0^a c_s / (a'^2 H(a')) da' in Mpc with c_s = c / sqrt(3 (1 + BARYON_LOADING_APPROX omega_b a')).

    ``hubble(z)`` is H in km/s/Mpc (vectorized). The sound horizon of the CMB priors (:data:`CMB_PRIOR_CONVENTION`),
    by the fixed Gauss-Legendre rule in a: a^2 H is analytic in a up to the branch point a = -Omega_r / Omega_m, far
    enough below the interval [0, a*] that the rule is exact to rounding there.
    """

    def integrand(a):
        return C_KM_S / np.sqrt(3.0 * (1.0 + BARYON_LOADING_APPROX * omega_b_h2 * a)) / (a * a * hubble(1.0 / a - 1.0))

    return float(_integrate(integrand, 0.0, 1.0 / (1.0 + z)))


# observable types of the BAO datasets (formats/_bao.py) -> Fiducial method name
BAO_OBSERVABLES = ("DM_over_rd", "DH_over_rd", "DV_over_rd", "rd_over_DV", "H_times_rd", "rs_EH98_over_DV", "DA_over_rd",
                   "theta_BAO_deg")


def _integrate(integrand, lower, upper):
    """int_lower^upper integrand(x) dx for arrays of upper limits (broadcast), by the fixed Gauss-Legendre rule."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    span = upper - lower
    x = lower[..., None] + span[..., None] * _NODES
    return span * (integrand(x) @ _WEIGHTS)


@dataclass(frozen=True)
class Fiducial:
    """A flat LCDM cosmology given by the ``fiducial_cosmology`` block of config/config.yaml.

    H0 in km/s/Mpc, T_cmb in K, M_B the absolute SN Ia magnitude (mag) used
    for ``m_b_corr``; the rest dimensionless.
    """

    H0: float
    Omega_m: float
    Omega_b_h2: float
    sigma8: float
    n_s: float
    T_cmb: float
    N_eff: float
    M_B: float

    @classmethod
    def from_config(cls, block: dict) -> "Fiducial":
        """Build from the config block; unknown keys are an error, all keys are required."""
        names = [f.name for f in fields(cls)]
        unknown, missing = sorted(set(block) - set(names)), [n for n in names if n not in block]
        if unknown or missing:
            raise ValueError(f"fiducial_cosmology: unknown keys {unknown}, missing keys {missing}")
        return cls(**{name: float(block[name]) for name in names})

    # -- background ---------------------------------------------------------
    @property
    def h(self) -> float:
        return self.H0 / 100.0

    @property
    def omega_m_h2(self) -> float:
        """Physical matter density omega_m = Omega_m h^2 (baryons + cold dark matter)."""
        return self.Omega_m * self.h**2

    @cached_property
    def Omega_gamma(self) -> float:
        """Photon density today, 4 sigma_SB T_cmb^4 / c^3 / rho_crit with rho_crit = 3 H0^2 / (8 pi G) (as astropy)."""
        h0_per_s = self.H0 / (MPC_M / 1e3)
        rho_crit = 3.0 * h0_per_s**2 / (8.0 * np.pi * G_NEWTON)
        return 4.0 * SIGMA_SB / (C_KM_S * 1e3) ** 3 * self.T_cmb**4 / rho_crit

    @property
    def Omega_r(self) -> float:
        """Radiation today: photons and N_eff massless neutrinos."""
        return self.Omega_gamma * (1.0 + NEUTRINO_TO_PHOTON * self.N_eff)

    def efunc(self, z):
        """E(z) = H(z) / H0, E^2 = Omega_m (1+z)^3 + Omega_r (1+z)^4 + Omega_Lambda, Omega_Lambda = 1 - Omega_m - Omega_r."""
        zp1 = 1.0 + np.asarray(z, dtype=float)
        omega_r = self.Omega_r
        return np.sqrt(zp1**3 * (self.Omega_m + zp1 * omega_r) + (1.0 - self.Omega_m - omega_r))

    def H(self, z):
        """Hubble rate H(z) = H0 E(z) in km/s/Mpc."""
        return self.H0 * self.efunc(z)

    def DM(self, z):
        """Transverse comoving distance D_M(z) = c int_0^z dz'/H(z') in Mpc (flat: equals the comoving distance).

        Integrated in x = ln(1+z): D_M = (c/H0) int_0^ln(1+z) e^x / E(e^x - 1) dx.
        """
        return C_KM_S / self.H0 * _integrate(lambda x: np.exp(x) / self.efunc(np.expm1(x)), 0.0, np.log1p(z))

    def DH(self, z):
        """Hubble distance D_H(z) = c / H(z) in Mpc."""
        return C_KM_S / self.H(z)

    def DV(self, z):
        """Spherically averaged BAO distance D_V = (z D_M^2 D_H)^(1/3) in Mpc (Eisenstein et al. 2005, eq. 2)."""
        z = np.asarray(z, dtype=float)
        return np.cbrt(z * self.DM(z) ** 2 * self.DH(z))

    def mu(self, z):
        """Distance modulus mu = 5 log10(D_L / 10 pc), D_L = (1+z) D_M(z).

        The same z serves as Hubble-diagram and heliocentric redshift.
        """
        z = np.asarray(z, dtype=float)
        return 5.0 * np.log10((1.0 + z) * self.DM(z)) + 25.0

    def m_b_corr(self, z):
        """Standardized SN Ia apparent magnitude m_b_corr = mu(z) + M_B (Brout et al. 2022, ApJ 938, 110)."""
        return self.mu(z) + self.M_B

    # -- sound horizon ------------------------------------------------------
    @property
    def omega_gamma_h2(self) -> float:
        """Photon density omega_gamma = Omega_gamma h^2 for T_cmb."""
        return self.Omega_gamma * self.h**2

    def baryon_photon_ratio(self, z):
        """R_b(z) = 3 rho_b / (4 rho_gamma) = (3 omega_b / (4 omega_gamma)) / (1+z)."""
        return 0.75 * self.Omega_b_h2 / self.omega_gamma_h2 / (1.0 + np.asarray(z, dtype=float))

    def sound_horizon(self, z: float) -> float:
        """Comoving sound horizon r_s(z) = int_z^inf c_s(z')/H(z') dz' in Mpc, c_s = c / sqrt(3 (1 + R_b)).

        Integrated in the scale factor, r_s = int_0^a c_s / (a'^2 H(a')) da',
        with radiation (photons + massless neutrinos) in H (e.g. Hu & Sugiyama 1996, ApJ 471, 542).
        The integrand is analytic in a except for branch points at a < 0 (a^2 E = 0 at
        a = -Omega_r / Omega_m, 1 + R_b = 0), so the rule converges fast up to a = 0.01; the rest,
        when z < 99, is integrated in ln a.
        """

        def integrand(a):
            sound_speed = C_KM_S / np.sqrt(3.0 * (1.0 + self.baryon_photon_ratio(1.0 / a - 1.0)))
            return sound_speed / (a * a * self.H(1.0 / a - 1.0))

        a_z = 1.0 / (1.0 + z)
        value = _integrate(integrand, 0.0, min(a_z, _A_SOUND_SPLIT))
        if a_z > _A_SOUND_SPLIT:
            value += _integrate(lambda y: np.exp(y) * integrand(np.exp(y)), np.log(_A_SOUND_SPLIT), np.log(a_z))
        return float(value)

    @cached_property
    def z_drag(self) -> float:
        """Baryon drag redshift z_d from the fit of Hu & Sugiyama 1996 (ApJ 471, 542, appendix E).

        z_d = 1345 w_m^0.251 / (1 + 0.659 w_m^0.828) (1 + b1 w_b^b2),
        b1 = 0.313 w_m^-0.419 (1 + 0.607 w_m^0.674), b2 = 0.238 w_m^0.223
        (w = Omega h^2). Eisenstein & Hu 1998 (ApJ 496, 605), eq. 4, is the same
        form with 1291 in place of 1345: it fits EH98's own drag-epoch definition
        and gives z_d = 1020.7 here, hence r_d = 150.56 Mpc, 2.4 % above CAMB's
        147.09 Mpc (about the EH98-to-CAMB r_s factor 1.027 that derive/bao.py
        applies to 6dFGS). The HS96 coefficient gives z_d = 1063.4 (CAMB:
        1059.9) and r_d = 146.61 Mpc.
        """
        om, ob = self.omega_m_h2, self.Omega_b_h2
        b1 = 0.313 * om**-0.419 * (1.0 + 0.607 * om**0.674)
        b2 = 0.238 * om**0.223
        return 1345.0 * om**0.251 / (1.0 + 0.659 * om**0.828) * (1.0 + b1 * ob**b2)

    @cached_property
    def r_d(self) -> float:
        """Sound horizon at the drag epoch r_d = r_s(z_d) in Mpc (146.61 Mpc for the default fiducial)."""
        return self.sound_horizon(self.z_drag)

    # -- BAO observables ----------------------------------------------------
    def DM_over_rd(self, z):
        return self.DM(z) / self.r_d

    def DH_over_rd(self, z):
        return self.DH(z) / self.r_d

    def DV_over_rd(self, z):
        return self.DV(z) / self.r_d

    def rd_over_DV(self, z):
        return self.r_d / self.DV(z)

    def rs_EH98_over_DV(self, z):
        """r_s(EH98)/D_V with the EH98-formula sound horizon taken as EH98_TO_CAMB r_d (derive/bao.py)."""
        return EH98_TO_CAMB * self.r_d / self.DV(z)

    def H_times_rd(self, z):
        """H(z) r_d in km/s."""
        return self.H(z) * self.r_d

    def DA_over_rd(self, z):
        """D_A/r_d = D_M / ((1+z) r_d)."""
        return self.DM(z) / ((1.0 + np.asarray(z, dtype=float)) * self.r_d)

    def theta_BAO_deg(self, z):
        """The angular BAO scale in degrees: (180/pi) r_d / D_M(z) = r_d / ((1+z) D_A)."""
        return np.degrees(self.r_d / self.DM(z))

    def bao(self, observable_type: str, z):
        """BAO prediction for an observable type of derive/bao.py (one of :data:`BAO_OBSERVABLES`)."""
        if observable_type not in BAO_OBSERVABLES:
            raise ValueError(f"unknown BAO observable type '{observable_type}' (known: {BAO_OBSERVABLES})")
        return getattr(self, observable_type)(z)

    # -- CMB distance priors --------------------------------------------------
    @cached_property
    def z_star(self) -> float:
        """Recombination redshift z* from the fit of Aizpuru, Arjona & Nesseris 2021 (PRD 104, 043521, eq. A4).

        z* = w_m^-0.731631 + (391.672 w_m^-0.372296 + 937.422 w_b^-0.97966) w_m^0.0192951 w_b^0.93681 (w = Omega h^2),
        a fit to a Boltzmann code's z*; at Planck 2018's parameters it is 1.07 below CAMB's zstar (1088.87, 1089.94).
        """
        om, ob = self.omega_m_h2, self.Omega_b_h2
        return om**-0.731631 + (391.672 * om**-0.372296 + 937.422 * ob**-0.97966) * om**0.0192951 * ob**0.93681

    @cached_property
    def shift_parameter(self) -> float:
        """Shift parameter R = sqrt(Omega_m) H0 D_M(z*) / c (Chen, Huang & Wang 2019, JCAP 02, 028)."""
        return float(np.sqrt(self.Omega_m) * self.H0 * self.DM(self.z_star) / C_KM_S)

    @cached_property
    def acoustic_scale(self) -> float:
        """Acoustic scale l_A = pi D_M(z*) / r_s(z*), r_s of :func:`sound_horizon_approx` (:data:`CMB_PRIOR_CONVENTION`)."""
        return float(np.pi * self.DM(self.z_star) / sound_horizon_approx(self.H, self.Omega_b_h2, self.z_star))

    def distance_priors(self) -> dict[str, float]:
        """The CMB distance-prior vector by the parameter names of derive/cmb.py."""
        return {"R": self.shift_parameter, "l_A": self.acoustic_scale, "omega_b_h2": self.Omega_b_h2}

    # -- linear growth --------------------------------------------------------
    def _matter_lambda_e(self, a):
        """E(a) of the growth equation: flat LCDM with radiation neglected, E^2 = Omega_m a^-3 + 1 - Omega_m."""
        return np.sqrt(self.Omega_m / a**3 + 1.0 - self.Omega_m)

    def _growth_integral(self, z):
        """I(a) = int_0^a da' / (a' E(a'))^3 at a = 1/(1+z), in u = sqrt(a'): int_0^sqrt(a) 2 u^4 / (Omega_m + Omega_Lambda u^6)^(3/2) du."""

        def integrand(u):
            return 2.0 * u**4 / (self.Omega_m + (1.0 - self.Omega_m) * u**6) ** 1.5

        return _integrate(integrand, 0.0, 1.0 / np.sqrt(1.0 + np.asarray(z, dtype=float)))

    def growth_factor(self, z):
        """Linear growth factor D(z) normalized to D(0) = 1.

        The growing mode of D'' + (2 + dlnE/dlna) D' - (3/2) Omega_m(a) D = 0 (' = d/dln a) for flat
        LCDM with radiation neglected in the growth equation only, as in the standard treatment (e.g.
        Linder 2005, PRD 72, 043529): D(a) ∝ E(a) int_0^a da' / (a' E(a'))^3 (Heath 1977, MNRAS 179, 351).
        """
        z = np.asarray(z, dtype=float)
        a = 1.0 / (1.0 + z)
        growth = self._matter_lambda_e(a) * self._growth_integral(z)
        return growth / (self._matter_lambda_e(1.0) * self._growth_integral(0.0))

    def growth_rate(self, z):
        """Growth rate f = dlnD/dlna = dlnE/dlna + 1 / (a^2 E^3 I(a)), dlnE/dlna = -(3/2) Omega_m / (a^3 E^2)."""
        z = np.asarray(z, dtype=float)
        a = 1.0 / (1.0 + z)
        e = self._matter_lambda_e(a)
        return -1.5 * self.Omega_m / (a**3 * e**2) + 1.0 / (a * a * e**3 * self._growth_integral(z))

    def sigma8_z(self, z):
        """sigma8(z) = sigma8 D(z) (linear theory, sigma8 of the fiducial at z = 0)."""
        return self.sigma8 * self.growth_factor(z)

    def fsigma8(self, z):
        """f(z) sigma8(z), the RSD observable (Percival & White 2009, MNRAS 393, 297)."""
        return self.growth_rate(z) * self.sigma8_z(z)

    # -- one entry point for the closure tests ------------------------------
    def predict(self, observable_type: str, z):
        """Fiducial value of a derived dataset's observable type at ``z`` (z is ignored for CMB priors)."""
        if observable_type in BAO_OBSERVABLES:
            return self.bao(observable_type, z)
        if observable_type in ("mu", "m_b_corr", "H", "fsigma8"):
            return getattr(self, observable_type)(z)
        if observable_type == "mu_offset_free":  # up to its free offset
            return self.mu(z)
        priors = {**self.distance_priors(), "n_s": self.n_s}
        if observable_type in priors:
            return np.full(np.shape(z), priors[observable_type])
        raise ValueError(f"no fiducial prediction for observable type '{observable_type}'")
