"""What ``cobaya-run`` needs besides a dataset's likelihood to run an export offline, with no Cobaya package installed.

``FlatLCDM``
    A Cobaya theory: the background and growth of :class:`pbuf_data.model.cosmology.Fiducial` (flat LCDM with photons at
    ``T_cmb`` and ``N_eff`` massless neutrinos; r_d from the Hu & Sugiyama 1996 drag redshift; f sigma8 from the
    growth equation without radiation). Parameters ``H0``, ``omegam`` (Omega_m, baryons + cold dark matter),
    ``ombh2`` and ``sigma8``; it provides Cobaya's ``Hubble``, ``angular_diameter_distance``, ``fsigma8`` and the
    derived parameters ``rdrag`` and ``zstar`` (the fit of :meth:`pbuf_data.model.cosmology.Fiducial.z_star`, where a
    Boltzmann code gives its recombination redshift). It needs no Boltzmann code: an export's companion runs as it is, and a fit swaps
    in ``camb`` or ``classy`` for the same likelihood.
``BaoGeneric``, ``SnPantheon``
    Cobaya's own ``bao.generic`` and ``sn.pantheon`` classes, unchanged except that they do not require Cobaya's
    ``bao_data``/``sn_data`` packages to be installed: the files they read are the exported ones (option ``path``),
    and the check that the packages are installed is what stops them from running offline.
"""

from __future__ import annotations

import numpy as np
from cobaya.likelihoods.bao.generic import generic
from cobaya.likelihoods.sn.pantheon import Pantheon
from cobaya.theory import Theory

from ..model.cosmology import C_KM_S, Fiducial


class FlatLCDM(Theory):
    """Cobaya theory of :class:`pbuf_data.model.cosmology.Fiducial` (options ``T_cmb``, ``N_eff``)."""

    T_cmb: float = 2.7255
    N_eff: float = 3.046
    params = {"H0": None, "omegam": None, "ombh2": None, "sigma8": None}

    def get_can_provide(self):
        return ["Hubble", "angular_diameter_distance", "fsigma8"]

    def get_can_provide_params(self):
        return ["rdrag", "zstar"]

    def must_provide(self, **requirements):
        return {}

    def calculate(self, state, want_derived=True, **params):
        # n_s and M_B are no part of the background or of f sigma8: NaN, so any use of them shows
        state["cosmology"] = Fiducial(H0=params["H0"], Omega_m=params["omegam"], Omega_b_h2=params["ombh2"],
                                      sigma8=params["sigma8"], n_s=np.nan, T_cmb=self.T_cmb, N_eff=self.N_eff,
                                      M_B=np.nan)
        state["derived"] = {"rdrag": state["cosmology"].r_d, "zstar": state["cosmology"].z_star}

    # arrays also for a scalar z, like Cobaya's Boltzmann theories
    def get_Hubble(self, z, units="km/s/Mpc"):
        h = np.atleast_1d(self.current_state["cosmology"].H(z))
        return h if units == "km/s/Mpc" else h / C_KM_S

    def get_angular_diameter_distance(self, z):
        z = np.atleast_1d(np.asarray(z, dtype=np.float64))
        return self.current_state["cosmology"].DM(z) / (1 + z)

    def get_fsigma8(self, z):
        return np.atleast_1d(self.current_state["cosmology"].fsigma8(z))


class BaoGeneric(generic):
    """Cobaya's ``bao.generic`` reading exported files (no ``bao_data`` package needed)."""

    install_options = {}


class SnPantheon(Pantheon):
    """Cobaya's ``sn.pantheon`` reading exported files (no ``sn_data`` package needed)."""

    install_options = {}
