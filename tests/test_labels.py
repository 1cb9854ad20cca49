"""Every observable type means one theory computation.

For every shipped dataset (real corpus and mocks) a chi2 is computed twice at
three flat LCDM cosmologies: once from the published dataset with the formula
of the README's "Observable types" table, once from the raw files the way the
collaborations' likelihoods read them (BOSS values scaled by r_s,fid, 6dFGS
with the EH98 rs_rescale, the CMB inverse covariance, Moresco's recipe, ...).
Both use the small independent flat LCDM below (numpy/scipy only; r_d from
Aubourg et al. 2015 eq. 16, z* from Hu & Sugiyama 1996, f sigma8 from Linder's
gamma = 0.55), so only the labels, conversions and conventions are compared.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import constants, integrate

from pbuf_data.core.errors import PbufDataError
from pbuf_data.publish.validation import PHYSICAL_RANGES, validate_dataset
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import mock_files
from pbuf_data.read.registry import load_registry
from pbuf_data.read.schema import load_schema

PROJECT = Path(__file__).resolve().parents[1]
MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")
FIDUCIAL_BLOCK = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
C_KM_S = constants.c / 1e3
RS_RESCALE = 1.027369826  # cobaya bao/sixdf_2011_bao.yaml: r_s(EH98) / r_d(CAMB)
BOSS_RS_FID = 147.78  # cobaya sdss_dr12_consensus_bao.yaml rs_fid
SH0ES_M_B = -19.253  # Riess et al. 2022 (SOURCES.md: MU_SH0ES - m_b_corr = 19.253 on every row)


# -- an independent flat LCDM ---------------------------------------------------------------


@dataclass(frozen=True)
class Cosmology:
    H0: float
    Omega_m: float  # all matter, massive neutrinos included
    omega_b: float  # Omega_b h^2
    sigma8: float
    n_s: float = 0.9649
    m_nu: float = 0.06  # eV, one massive species
    N_eff: float = 3.046
    T_cmb: float = 2.7255

    @property
    def h(self):
        return self.H0 / 100

    @cached_property
    def omega_gamma(self):
        """Photon density Omega_gamma h^2 = (4 sigma_SB T^4 / c^3) / (3 (100 km/s/Mpc)^2 / 8 pi G)."""
        rho = 4 * constants.Stefan_Boltzmann * self.T_cmb**4 / constants.c**3
        rho_crit = 3 * (1e5 / (constants.parsec * 1e6)) ** 2 / (8 * math.pi * constants.G)
        return rho / rho_crit

    @cached_property
    def Omega_r(self):
        return self.omega_gamma * (1 + 7 / 8 * (4 / 11) ** (4 / 3) * self.N_eff) / self.h**2

    def E(self, z):
        z = np.asarray(z, float)
        return np.sqrt(self.Omega_m * (1 + z) ** 3 + self.Omega_r * (1 + z) ** 4 + 1 - self.Omega_m - self.Omega_r)

    def H(self, z):
        return self.H0 * self.E(z)

    def DM(self, z):
        z = np.atleast_1d(np.asarray(z, float))
        grid = np.unique(np.concatenate([[0.0], z]))
        m, r = self.Omega_m, self.Omega_r

        def inverse_e(x):
            return 1 / math.sqrt(m * (1 + x) ** 3 + r * (1 + x) ** 4 + 1 - m - r)

        steps = [integrate.quad(inverse_e, a, b, epsrel=1e-11)[0] for a, b in zip(grid[:-1].tolist(), grid[1:].tolist())]
        cumulative = dict(zip(grid, np.concatenate([[0.0], np.cumsum(steps)])))
        return C_KM_S / self.H0 * np.array([cumulative[v] for v in z])

    def DH(self, z):
        return C_KM_S / self.H(z)

    def DV(self, z):
        return np.cbrt(z * self.DM(z) ** 2 * self.DH(z))

    @cached_property
    def r_d(self):
        """Aubourg et al. 2015 (PRD 92, 123516) eq. 16, the CAMB drag-epoch sound horizon to 0.02 %."""
        omega_nu = self.m_nu / 93.14
        omega_cb = self.Omega_m * self.h**2 - omega_nu
        return 55.154 * math.exp(-72.3 * (omega_nu + 0.0006) ** 2) / (omega_cb**0.25351 * self.omega_b**0.12807)

    @cached_property
    def z_star(self):
        """Stands in for a recombination code's z* (the priors' z*, CAMB's zstar): Hu & Sugiyama 1996 eqs. E1-E3."""
        wb, wm = self.omega_b, self.Omega_m * self.h**2
        g1 = 0.0783 * wb**-0.238 / (1 + 39.5 * wb**0.763)
        g2 = 0.560 / (1 + 21.1 * wb**1.81)
        return 1048 * (1 + 0.00124 * wb**-0.738) * (1 + g1 * wm**g2)

    def r_s(self, z):
        """int_z^inf c_s / H dz, written in a: int_0^a c_s / (a^2 H) da, with the CMB priors' (CosmoMC's) sound speed
        c_s = c / sqrt(3 (1 + 3e4 omega_b a)) (README: l_A)."""
        ratio = 3e4 * self.omega_b

        def integrand(a):
            return C_KM_S / math.sqrt(3 * (1 + ratio * a)) / (a * a * self.H(1 / a - 1))

        return integrate.quad(integrand, 1e-12, 1 / (1 + z), epsrel=1e-11, limit=200)[0]

    def fsigma8(self, z):
        """Linder 2005: f = Omega_m(z)^0.55, D(z) = exp(-int_0^z f / (1+z) dz)."""

        def f(x):
            return (self.Omega_m * (1 + x) ** 3 / self.E(x) ** 2) ** 0.55

        out = []
        for zi in np.atleast_1d(z):
            growth = math.exp(-integrate.quad(lambda x: f(x) / (1 + x), 0, zi, epsrel=1e-11)[0])
            out.append(f(zi) * self.sigma8 * growth)
        return np.array(out)

    def H_DM(self, z):
        """H(z) D_M(z) / c of this cosmology (independent of H0)."""
        return self.H(z) * self.DM(z) / C_KM_S

    def mu(self, z_hd, z_hel):
        return 5 * np.log10((1 + z_hel) * self.DM(z_hd)) + 25


# Planck 2018 VI, Table 2, TT,TE,EE+lowE+lensing best fit, and two further cosmologies
PLANCK = Cosmology(H0=67.36, Omega_m=0.3153, omega_b=0.02237, sigma8=0.8111)
COSMOLOGIES = [PLANCK, Cosmology(70.0, 0.28, 0.0222, 0.78), Cosmology(64.0, 0.35, 0.0230, 0.86)]


# -- route 1: the README's table, applied to the published dataset ----------------------------


def _ap_factor(cosmo, z, omega_m_ref):
    """H_ref D_M,ref / (H D_M), the reference being flat LCDM of matter and Lambda, Omega_m = omega_m_ref (H0 cancels)."""
    ref = Cosmology(cosmo.H0, float(omega_m_ref), cosmo.omega_b, cosmo.sigma8, N_eff=0.0, T_cmb=0.0)
    return ref.H_DM(z) / cosmo.H_DM(z)


def _fsigma8(c, z, row):
    value = c.fsigma8(z)[0]
    return value * _ap_factor(c, z, row["omega_m_ref"])[0] if "omega_m_ref" in row else value


# type -> theory(cosmology, z, the point's columns): one line per row of the README table
THEORY = {
    "DM_over_rd": lambda c, z, row: c.DM(z)[0] / c.r_d,
    "DH_over_rd": lambda c, z, row: c.DH(z) / c.r_d,
    "DV_over_rd": lambda c, z, row: c.DV(z)[0] / c.r_d,
    "DA_over_rd": lambda c, z, row: c.DM(z)[0] / (1 + z) / c.r_d,
    "rd_over_DV": lambda c, z, row: c.r_d / c.DV(z)[0],
    "rs_EH98_over_DV": lambda c, z, row: RS_RESCALE * c.r_d / c.DV(z)[0],
    "H_times_rd": lambda c, z, row: c.H(z) * c.r_d,
    "theta_BAO_deg": lambda c, z, row: math.degrees(c.r_d / c.DM(z)[0]),
    "R": lambda c, z, row: math.sqrt(c.Omega_m) * c.H0 * c.DM(c.z_star)[0] / C_KM_S,
    "l_A": lambda c, z, row: math.pi * c.DM(c.z_star)[0] / c.r_s(c.z_star),
    "omega_b_h2": lambda c, z, row: c.omega_b,
    "n_s": lambda c, z, row: c.n_s,
    "H": lambda c, z, row: c.H(z),
    "fsigma8": _fsigma8,
    "mu": lambda c, z, row: c.mu(row["zHD"], row["zHEL"]),
    "m_b_corr": lambda c, z, row: c.mu(row["zHD"], row["zHEL"]),
    "mu_offset_free": lambda c, z, row: c.mu(row["zHD"], row["zHEL"]),
}
VECTORIZED = {"mu", "m_b_corr", "mu_offset_free"}  # evaluated on whole columns at once (1590 points)
FREE_OFFSET = {"m_b_corr", "mu_offset_free"}  # the README's rows: the offset free, marginalized analytically


def gaussian_chi2(residual, covariance, free_offset=False):
    inverse_residual = np.linalg.solve(covariance, residual)
    chi2 = residual @ inverse_residual
    if free_offset:
        inverse_ones = np.linalg.solve(covariance, np.ones_like(residual))
        chi2 -= inverse_residual.sum() ** 2 / inverse_ones.sum()
    return float(chi2)


TABULATED = ("likelihood_table", "bao_alpha_grid", "bao_alpha_table")  # formats publishing a likelihood table or grid


def readme_chi2(dataset, cosmo):
    types = set(dataset.observable_type.tolist())
    if len(types) == 1 and types <= VECTORIZED:
        theory = THEORY[next(iter(types))](cosmo, dataset.z, dataset.columns)
    else:
        rows = [{k: v[i] for k, v in dataset.columns.items()} for i in range(len(dataset))]
        theory = np.array([THEORY[t](cosmo, z, row) for t, z, row in zip(dataset.observable_type, dataset.z, rows)])
    if dataset.metadata["format"] in TABULATED:  # the published likelihood itself, interpolated
        return dataset.chi2(theory)
    return gaussian_chi2(dataset.observable - theory, dataset.covariance, free_offset=bool(types & FREE_OFFSET))


# -- route 2: the raw files, read the way the collaborations' likelihoods read them -------------


def _rows(path, usecols, dtype=float):
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return np.array([[r[i] for i in usecols] for r in rows]).astype(dtype)


def collab_sn(folder, files, cosmo, options):
    layout = options.get("table", {})
    if layout.get("header") == "comment_line":  # cobaya sn.pantheon: lcparam, '#' header, columns by position
        path = folder / files["table"]
        names = path.read_text().splitlines()[0].lstrip("#").split()
        table = pd.read_csv(path, sep=r"\s+", comment="#", header=None, names=names[:18])
        theory = cosmo.mu(table.zcmb.to_numpy(), table.zhel.to_numpy())
        return gaussian_chi2(table.mb.to_numpy() - theory, np.diag(table.dmb.to_numpy() ** 2), free_offset=True)
    if layout.get("delimiter") == "comma":  # cobaya sn.desy5: the CSV's MU against zHD, zHEL, offset free
        table = pd.read_csv(folder / files["table"])
        theory = cosmo.mu(table.zHD.to_numpy(), table.zHEL.to_numpy())
        covariance = np.diag(table.MUERR_FINAL.to_numpy() ** 2)
        if "covariance" in files:  # sn.desy5: the file's matrix plus pre_vars = MUERR_FINAL^2 (numpy reads the .gz)
            values = np.loadtxt(folder / files["covariance"])
            covariance += values[1:].reshape(int(values[0]), int(values[0]))
        return gaussian_chi2(table.MU.to_numpy() - theory, covariance, free_offset=True)
    if layout.get("header") == "none":  # MontePython sn (Union2): name z mu dmu, z both redshifts, square matrix
        table = np.loadtxt(folder / files["table"], usecols=(1, 2))
        covariance = np.loadtxt(folder / files["covariance"])
        theory = cosmo.mu(table[:, 0], table[:, 0])
        return gaussian_chi2(table[:, 1] - theory, covariance, free_offset=True)
    table = pd.read_csv(folder / files["table"], sep=r"\s+")
    keep = (table.zHD > 0.01).to_numpy()
    if "covariance" in files:
        values = np.array((folder / files["covariance"]).read_text().split()[1:], dtype=float)
        n = int(np.sqrt(values.size))
        covariance = values.reshape(n, n)[np.ix_(keep, keep)]
        covariance = (covariance + covariance.T) / 2
    elif options["observable_type"] == "m_b_corr":
        covariance = np.diag(table.m_b_corr_err_DIAG.to_numpy()[keep] ** 2)
    else:
        covariance = np.diag(table.MU_SH0ES_ERR_DIAG.to_numpy()[keep] ** 2)
    theory = cosmo.mu(table.zHD.to_numpy()[keep], table.zHEL.to_numpy()[keep])
    m_b = table.m_b_corr.to_numpy()[keep]
    if options["observable_type"] == "m_b_corr":  # cobaya SN likelihoods: offset marginalized analytically
        return gaussian_chi2(m_b - theory, covariance, free_offset=True)
    # Pantheon+SH0ES: m_b_corr - M_B with the SH0ES magnitude
    return gaussian_chi2(m_b - options["absolute_magnitude"]["M_B"] - theory, covariance)


def collab_bao_mean_cov(folder, files, cosmo, options):
    """cobaya bao.generic: theory by the file's own label, BOSS quantities scaled by rs_fid."""
    z, value = _rows(folder / files["mean"], (0, 1)).T
    labels = _rows(folder / files["mean"], (2,), str)[:, 0]
    covariance = np.loadtxt(folder / files["covariance"])
    theory = {
        "DM_over_rs": lambda zi: cosmo.DM(zi)[0] * (BOSS_RS_FID if "rs_fid" in options else 1) / cosmo.r_d,
        "bao_Hz_rs": lambda zi: cosmo.H(zi) * cosmo.r_d / BOSS_RS_FID,
        "DH_over_rs": lambda zi: cosmo.DH(zi) / cosmo.r_d,
        "DV_over_rs": lambda zi: cosmo.DV(zi)[0] / cosmo.r_d,
        "f_sigma8": lambda zi: cosmo.fsigma8(zi)[0],  # BOSS DR12 final consensus: not rescaled
    }
    return gaussian_chi2(value - np.array([theory[lab](zi) for zi, lab in zip(z, labels)]), covariance)


def collab_bao_table(folder, files, cosmo, options):
    """cobaya sixdf_2011_bao (rs_rescale on the theory's r_s) and sdss_dr7_mgs (Gaussian summary)."""
    z, value, sigma = _rows(folder / files["table"], (0, 1, 2)).T
    label = _rows(folder / files["table"], (3,), str)[0, 0]
    if label == "rs_over_DV":
        rs = RS_RESCALE * cosmo.r_d if options.get("sound_horizon") == "eh98" else cosmo.r_d
        theory = rs / cosmo.DV(z[0])[0]
    else:
        theory = cosmo.DV(z[0])[0] / cosmo.r_d
    return float(((value[0] - theory) / sigma[0]) ** 2)


def collab_bao_type_coded(folder, files, cosmo, options):
    """MontePython bao_boss on bao_2014.txt: lines with '#' skipped, rows by name excluded; per row by code (the
    entry's type_codes, MontePython's 3 D_V/r_s, 5 D_A/r_s, 6 c/(H r_s), 7 r_s/D_V, an angular code theta_BAO in
    degrees); independent Gaussian errors."""
    by_type = {"DV_over_rd": lambda z: cosmo.DV(z)[0] / cosmo.r_d, "DA_over_rd": lambda z: cosmo.DM(z)[0] / (1 + z) / cosmo.r_d,
               "DH_over_rd": lambda z: cosmo.DH(z) / cosmo.r_d, "rd_over_DV": lambda z: cosmo.r_d / cosmo.DV(z)[0],
               "theta_BAO_deg": lambda z: math.degrees(cosmo.r_d / cosmo.DM(z)[0])}
    exclude = options.get("rows", {}).get("exclude", [])
    sep = "\t" if options.get("table", {}).get("delimiter") == "tab" else None
    chi2 = 0.0
    for line in (folder / files["table"]).read_text().splitlines():
        if "#" in line or not line.strip() or line.split(sep)[0] in exclude:
            continue
        name, z, value, sigma, code = line.split(sep)
        theory = by_type[options["type_codes"][code.strip()]["observable_type"]](float(z))
        chi2 += ((float(value) - theory) / float(sigma)) ** 2
    return chi2


def collab_bao_correlated_pair(folder, files, cosmo, options):
    """cobaya bao.generic with rs_fid (r_s = r_d / rs_fid): DA_over_rs and Hz_rs of each row as written, the 2 x 2
    covariance from the row's sigmas and correlation coefficient."""
    chi2 = 0.0
    for line in (folder / files["table"]).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        _, z, da, sda, h, sh, rho, rs_fid = line.split()
        z, rs_fid = float(z), float(rs_fid)
        theory = np.array([cosmo.DM(z)[0] / (1 + z) * rs_fid / cosmo.r_d, cosmo.H(z) * cosmo.r_d / rs_fid])
        s = np.array([float(sda), float(sh)])
        covariance = np.outer(s, s) * np.array([[1, float(rho)], [float(rho), 1]])
        chi2 += gaussian_chi2(np.array([float(da), float(h)]) - theory, covariance)
    return chi2


def collab_likelihood_table(folder, files, cosmo, options):
    """cobaya bao.generic grid_file: ln of the tabulated likelihood, a cubic spline (1-D) or bicubic spline (2-D)."""
    from scipy.interpolate import RectBivariateSpline, UnivariateSpline

    grid = np.loadtxt(folder / files["table"], ndmin=2)
    z = options["z_eff"]
    theory = [THEORY[t](cosmo, z, {}) for t in options["observables"]]
    if grid.shape[1] == 1:  # values alone, on the entry's declared grid of evenly spaced nodes
        grid = np.column_stack([np.linspace(options["grid"]["min"], options["grid"]["max"], grid.shape[0]), grid])
    values = grid[:, -1]
    ln_l = {"likelihood": np.log, "probability": np.log, "chi2": lambda v: -v / 2, "lnL": lambda v: v,
            "minus_lnL": lambda v: -v}[options.get("values", "likelihood")](values)
    if grid.shape[1] == 2:
        return float(-2 * UnivariateSpline(grid[:, 0], ln_l, s=0, ext=2)(theory[0]))
    x, y = np.unique(grid[:, 0]), np.unique(grid[:, 1])
    spline = RectBivariateSpline(x, y, ln_l.reshape(x.size, y.size), kx=3, ky=3)
    return float(-2 * spline(theory[0], theory[1])[0, 0])


def collab_bao_alpha_grid(folder, files, cosmo, options):
    """MontePython BOSS_DR12_Lya_{auto,cross,combined} (montepython_public, scan_util.chi2_interpolators): columns
    ap, at, Delta chi2; the grid (n_at, n_ap) filled by sorted ap then at; RectBivariateSpline(at, ap, kx=ky=1) at
    at = transverse / transverse_fid, ap = parallel / parallel_fid; z and the transverse type (8: D_M/r_s, 5: D_A/r_s)
    from the aux row; fiducials of the likelihood's .data file (BOSS DR12: 39.15, 8.612)."""
    from scipy.interpolate import RectBivariateSpline

    scan = np.loadtxt(folder / files["grid"])
    ap, at = np.array(sorted(set(scan[:, 0]))), np.array(sorted(set(scan[:, 1])))
    grid = np.zeros((at.size, ap.size))
    for i, value in enumerate(ap):
        chunk = scan[scan[:, 0] == value]
        grid[:, i] = chunk[chunk[:, 1].argsort()][:, 2]
    spline = RectBivariateSpline(at, ap, grid, kx=1, ky=1)
    fid = {"transverse_fid": 39.15, "parallel_fid": 8.612}
    if "fiducial" in files:  # the .data file: <likelihood>.<name> = <value>
        for line in (folder / files["fiducial"]).read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                name, value = line.split("=")
                fid[name.strip().rsplit(".", 1)[-1]] = float(value)
    row = next(ln.split() for ln in (folder / files["aux"]).read_text().splitlines()
               if ln.split() and ln.split()[0] == options["aux_row"])
    z, codes = float(row[1]), {int(row[2]), int(row[3])}
    transverse = cosmo.DM(z)[0] / cosmo.r_d / (1 + z if codes == {5, 6} else 1)
    parallel = C_KM_S / cosmo.H(z) / cosmo.r_d
    return float(spline(transverse / fid["transverse_fid"], parallel / fid["parallel_fid"])[0, 0])


def collab_bao_alpha_table(folder, files, cosmo, options):
    """CosmoSIS des-y3-bao (bao_y3_like.py): loadtxt(delimiter=',', skiprows=1), alpha column 0, chi2 column by the
    header's name (the module's chi2_column 1 = ACF+APS); alpha = D_M / (D_A,fid (1 + z)) * r_s,fid / r_d with
    D_A,fid = 1616.9 Mpc, r_s,fid = 147.6 Mpc, z = 0.835; chi2 by numpy.interp (clipped at the ends)."""
    path = folder / files["table"]
    data = np.loadtxt(path, delimiter=",", skiprows=1).T
    column = path.read_text().splitlines()[0].split(",").index(str(options["columns"]["value"]))
    z = 0.835
    alpha = cosmo.DM(z)[0] / (1616.9 * (1 + z)) * 147.6 / cosmo.r_d
    return float(np.interp(alpha, data[0], data[column], left=data[column][0], right=data[column][-1]))


def collab_cmb(folder, files, cosmo, options):
    """Chen, Huang & Wang 2019 appendix: chi2 = d^T invcov d with their mean and inverse covariance."""
    mean = _rows(folder / files["mean"], (1,))[:, 0]
    inverse = np.loadtxt(folder / files["inverse_covariance"])
    rs_star = cosmo.r_s(cosmo.z_star)
    dm_star = cosmo.DM(cosmo.z_star)[0]
    theory = np.array([math.sqrt(cosmo.Omega_m) * cosmo.H0 * dm_star / C_KM_S, math.pi * dm_star / rs_star, cosmo.omega_b])
    d = mean - theory
    return float(d @ inverse @ d)


def collab_cc(folder, files, cosmo, options):
    """Moresco et al. 2020 recipe: diag(sigma^2) + sum_k (H_i x_k(z_i)/100)(H_j x_k(z_j)/100)."""
    z, h, sigma = np.loadtxt(folder / files["table"]).T
    if not options["systematics"]:  # MontePython cosmic_clocks: independent errors
        return gaussian_chi2(h - cosmo.H(z), np.diag(sigma**2))
    header = (folder / files["systematics"]).read_text().splitlines()[0].lstrip("# ").split()
    systematics = np.loadtxt(folder / files["systematics"])
    covariance = np.diag(sigma**2)
    for name in options["systematics"]:
        x = h * np.interp(z, systematics[:, 0], systematics[:, header.index(name)]) / 100
        covariance += np.outer(x, x)
    return gaussian_chi2(h - cosmo.H(z), covariance)


# H(z) d_A(z) [km/s] of each point's reference cosmology, as the authors' likelihood lists them
# (snesseris/RSD-growth @ 7b17bf7, likelihoods/growth_SN/__init__.py, HdAz)
GOLD2018_HDAZ = (
    5905.2, 5905.2, 5902.17, 27919.8, 40636.6, 45463.8, 47665.2, 90926.2, 63409.3, 88415.1, 78751.0,
    132588.0, 102712.0, 132420.0, 155232.0, 134060.0, 179999.0, 263053.0, 200977.0, 242503.0, 289340.0, 352504.0,
)  # fmt: skip


def collab_rsd(folder, files, cosmo, options):
    """Gold-2018 likelihood (growth_SN): data - theory / ratio, ratio = H d_A / HdAz with the authors' HdAz list
    (the mock compilation keeps the real one's redshifts and Omega_m,ref); published blocks."""
    z, fs8, sigma = np.loadtxt(folder / files["table"]).T
    covariance = np.diag(sigma**2)
    for block in options["blocks"]:
        first, last = block["first_row"] - 1, block["last_row"]
        covariance[first:last, first:last] = np.loadtxt(folder / files[block["file"]])
    ratio = np.array([cosmo.H(zi) * cosmo.DM(zi)[0] / (1 + zi) for zi in z]) / np.array(GOLD2018_HDAZ)
    return gaussian_chi2(fs8 - cosmo.fsigma8(z) / ratio, covariance)


def test_gold2018_reference_h_da_is_flat_lcdm_at_omega_m_ref(real):
    """The column omega_m_ref gives the authors' own reference H d_A of every point (to their 6 digits)."""
    rsd = real("rsd_fsigma8")
    for z, omega_m_ref, published in zip(rsd.z, rsd.columns["omega_m_ref"], GOLD2018_HDAZ):
        ref = Cosmology(70.0, float(omega_m_ref), 0.0224, 0.8, N_eff=0.0, T_cmb=0.0)  # matter + Lambda only
        h_da = ref.H(z) * ref.DM(z)[0] / (1 + z)
        assert h_da == pytest.approx(published, rel=2e-4)


COLLABORATION = {
    "sn_table": collab_sn,
    "bao_mean_cov": collab_bao_mean_cov,
    "bao_table": collab_bao_table,
    "bao_type_coded": collab_bao_type_coded,
    "bao_correlated_pair": collab_bao_correlated_pair,
    "cmb_distance_priors": collab_cmb,
    "cc_hz_table": collab_cc,
    "rsd_fsigma8": collab_rsd,
    "likelihood_table": collab_likelihood_table,
    "bao_alpha_grid": collab_bao_alpha_grid,
    "bao_alpha_table": collab_bao_alpha_table,
}


def collab_chi2(entry, folder, cosmo):
    files = {role: spec["path"] for role, spec in entry["files"].items()}
    return COLLABORATION[entry["format"]](folder, files, cosmo, entry["options"])


# -- the README table is the one the test implements ---------------------------------------------


def readme_types() -> set[str]:
    text = (PROJECT / "README.md").read_text()
    section = text.split("### Observable types", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", section, flags=re.M))


def test_readme_table_lists_every_type_the_project_knows():
    schema = load_schema("registry.schema.yaml")
    label_types = set(schema["$defs"]["label"]["properties"]["observable_type"]["enum"])
    cmb_types = set(schema["$defs"]["options_cmb_distance_priors"]["properties"]["parameters"]["items"]["enum"])
    sn_types = set(schema["$defs"]["options_sn_table"]["properties"]["observable_type"]["enum"])
    published = label_types | cmb_types | sn_types | {"H", "fsigma8"}
    assert readme_types() == set(THEORY) == published == set(PHYSICAL_RANGES)


# -- the chi2 of every shipped dataset, both routes ------------------------------------------------


@pytest.fixture(scope="module")
def mock_raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("labels_mock_raw")
    for name, entry in MOCKS.items():
        for role, text in mock_files(entry, FIDUCIAL_BLOCK, entry["mock"]["seed"]).items():
            path = folder / entry["files"][role]["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode())
    return folder


@pytest.fixture(scope="module")
def mocks(mock_raw):
    return {name: derive_dataset(name, entry, raw_dir=mock_raw) for name, entry in MOCKS.items()}


# where the two routes read different published numbers: SN MU_SH0ES vs m_b_corr - M_B (6-digit rounding),
# Gold-2018 reference H d_A from omega_m_ref vs the authors' 6-digit HdAz list
TOLERANCE = {"sn_table": 2e-4, "rsd_fsigma8": 1e-4}
REAL_NAMES = [n for n in load_registry(PROJECT / "config" / "registry.yaml")]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_chi2_from_the_readme_table_equals_the_collaborations(name, real, registry, raw_dir):
    dataset = real(name)
    for cosmo in COSMOLOGIES:
        expected = collab_chi2(registry[name], raw_dir, cosmo)
        assert readme_chi2(dataset, cosmo) == pytest.approx(expected, rel=TOLERANCE.get(registry[name]["format"], 1e-10))


@pytest.mark.parametrize("name", sorted(MOCKS))
def test_mock_chi2_from_the_readme_table_equals_the_collaborations(name, mocks, mock_raw):
    for cosmo in COSMOLOGIES:
        expected = collab_chi2(MOCKS[name], mock_raw, cosmo)
        assert readme_chi2(mocks[name], cosmo) == pytest.approx(expected, rel=TOLERANCE.get(MOCKS[name]["format"], 1e-10))


@pytest.mark.parametrize("options", [{"observable_type": "m_b_corr"}, {"selection": {"z_min": 0.01, "z_max": None, "calibrators": "include"}}])
def test_sn_options_chi2_equals_the_collaborations(options, registry, raw_dir):
    entry = {**registry["sn_pantheon_plus"], "expected_points": None}
    entry["options"] = {**entry["options"], **options}
    dataset = derive_dataset("sn", entry, raw_dir)
    if options.get("observable_type") == "m_b_corr":
        for cosmo in COSMOLOGIES:
            assert readme_chi2(dataset, cosmo) == pytest.approx(collab_chi2(entry, raw_dir, cosmo), rel=1e-10)
    else:  # calibrators kept at any z: their zHD and zHEL are columns like the others'
        table = pd.read_csv(raw_dir / "sn_pantheon_plus" / "Pantheon+SH0ES.dat", sep=r"\s+")
        kept = table[(table.zHD > 0.01) | (table.IS_CALIBRATOR == 1)]
        np.testing.assert_array_equal(dataset.columns["zHEL"], kept.zHEL.to_numpy())


# -- 6dFGS: the CAMB r_d convention by default (issue figures) ---------------------------------------


def test_6dfgs_in_camb_convention(real):
    six = real("bao_6dfgs")
    assert six.observable.tolist() == [0.336 / 1.027369826]
    assert six.uncertainty.tolist() == [0.015 / 1.027369826]
    assert six.observable_type.tolist() == ["rd_over_DV"]


def test_6dfgs_chi2_at_planck_is_the_cobaya_one(real, registry, raw_dir):
    """Cobaya (CAMB) gives chi2 = 0.082 at the Planck 2018 best fit; trusting the EH98 value as r_d/D_V, 0.767."""
    six = real("bao_6dfgs")
    assert readme_chi2(six, PLANCK) == pytest.approx(0.082, abs=0.02)
    theory = PLANCK.r_d / PLANCK.DV(0.106)[0]
    assert ((0.336 - theory) / 0.015) ** 2 == pytest.approx(0.767, abs=0.05)  # the label as it was
    entry = registry["bao_6dfgs"]
    as_published = {**entry, "options": {**entry["options"], "labels": {"rs_over_DV": {"observable_type": "rs_EH98_over_DV", "conversion": "none"}}}}
    published = derive_dataset("bao_6dfgs", as_published, raw_dir)
    assert published.observable.tolist() == [0.336]
    assert readme_chi2(published, PLANCK) == pytest.approx(readme_chi2(six, PLANCK), rel=1e-12)


# -- CMB priors: the z* definition is data, no fixed z* ------------------------------------------------


def test_cmb_priors_state_their_redshift_definition(real, tmp_path):
    cmb = real("cmb_planck2018")
    assert np.isnan(cmb.z).all()
    assert cmb.columns["z_definition"].tolist() == ["z_star_recombination"] * 2 + ["none"]
    z_star = cmb.metadata["z_star"]
    assert "CAMB's zstar" in z_star["definition"] and "not the Hu & Sugiyama 1996 fit" in z_star["definition"]
    assert "3e4 omega_b a" in cmb.metadata["convention"]["l_A"]
    assert "z_star" not in cmb.provenance["options"]
    assert validate_dataset(cmb)["n_errors"] == 0
    # a fixed z* changes the chi2: l_A at Planck's 1089.92 instead of the cosmology's z*
    fixed = math.pi * PLANCK.DM(1089.92)[0] / PLANCK.r_s(1089.92)
    assert abs(fixed - THEORY["l_A"](PLANCK, np.nan, {})) > 0.1  # > 1 sigma of l_A (0.089)
    # the report's figures of a prior dataset (a table: no redshift axis)
    from pbuf_data.fit.plots import save_figures

    save_figures(cmb, FIDUCIAL_BLOCK, tmp_path / "observable.png", tmp_path / "correlation.png")
    assert (tmp_path / "observable.png").stat().st_size > 0


def test_validation_refuses_a_fixed_redshift_for_a_prior(real):
    from dataclasses import replace

    cmb = real("cmb_planck2018")
    report = validate_dataset(replace(cmb, z=np.full(3, 1089.92)))
    failed = [c["name"] for c in report["checks"] if c["verdict"] == "error"]
    assert failed == ["no_fixed_redshift"]
    bao = real("bao_desi_dr1")
    report = validate_dataset(replace(bao, z=np.where(np.arange(12) == 3, np.nan, bao.z)))
    assert [c["name"] for c in report["checks"] if c["verdict"] == "error"] == ["finite_z"]


# -- SN: the magnitude convention and both redshifts are data ----------------------------------------


def test_sn_mu_states_its_absolute_magnitude_and_redshifts(real, raw_dir):
    sn = real("sn_pantheon_plus")
    table = pd.read_csv(raw_dir / "sn_pantheon_plus" / "Pantheon+SH0ES.dat", sep=r"\s+")
    kept = table[table.zHD > 0.01]
    assert sn.observable_type[0] == "mu" and np.all(sn.columns["M_B"] == SH0ES_M_B)
    assert sn.metadata["absolute_magnitude"]["M_B"] == SH0ES_M_B and "SH0ES" in sn.metadata["absolute_magnitude"]["reference"]
    np.testing.assert_array_equal(sn.columns["zHD"], kept.zHD.to_numpy())
    np.testing.assert_array_equal(sn.z, sn.columns["zHD"])
    np.testing.assert_array_equal(sn.columns["zHEL"], kept.zHEL.to_numpy())
    assert sn.metadata["units"] == {"mu": "mag"}


def test_sn_m_b_corr_is_one_option_away(registry, raw_dir):
    entry = {**registry["sn_pantheon_plus"]}
    entry["options"] = {**entry["options"], "observable_type": "m_b_corr"}
    sn = derive_dataset("sn", entry, raw_dir)
    table = pd.read_csv(raw_dir / "sn_pantheon_plus" / "Pantheon+SH0ES.dat", sep=r"\s+")
    np.testing.assert_array_equal(sn.observable, table[table.zHD > 0.01].m_b_corr.to_numpy())
    assert sn.observable_type[0] == "m_b_corr" and "M_B" not in sn.columns
    assert sn.metadata["absolute_magnitude"]["M_B"] is None and sn.metadata["units"] == {"m_b_corr": "mag"}


@pytest.mark.parametrize(
    "dataset, option, value, key",
    [
        ("cmb_planck2018", "z_star", 1089.92, "datasets.cmb_planck2018.options"),  # no field invites a fixed z*
        ("sn_pantheon_plus", "absolute_magnitude", None, "datasets.sn_pantheon_plus.options"),  # mu needs its M_B
        ("bao_6dfgs", "sound_horizon", "camb", "datasets.bao_6dfgs.options.sound_horizon"),
    ],
)
def test_registry_refuses_labels_without_their_convention(tmp_path, dataset, option, value, key):
    document = yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())
    options = document["datasets"][dataset]["options"]
    if value is None:
        del options[option]
    else:
        options[option] = value
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PbufDataError) as failure:
        load_registry(path)
    assert f"at '{key}'" in str(failure.value) and option in str(failure.value)


def test_sn_mu_with_a_wrong_absolute_magnitude_is_refused(registry, raw_dir):
    entry = {**registry["sn_pantheon_plus"]}
    entry["options"] = {**entry["options"], "absolute_magnitude": {"M_B": -19.3, "reference": "wrong"}}
    with pytest.raises(PbufDataError) as failure:
        derive_dataset("sn_pantheon_plus", entry, raw_dir)
    message = str(failure.value)
    assert "sn_pantheon_plus" in message and "Pantheon+SH0ES.dat" in message and "line 2" in message
    assert "absolute_magnitude.M_B -19.3" in message
    without = {**entry, "options": {k: v for k, v in entry["options"].items() if k != "absolute_magnitude"}}
    with pytest.raises(PbufDataError, match="needs options.absolute_magnitude"):
        derive_dataset("sn_pantheon_plus", without, raw_dir)
