"""Cobaya's own likelihood classes on the exported files, and this package's Cobaya class, against ``ds.chi2``.

The theory is a small flat LCDM written here with numpy/scipy (no Boltzmann code): H(z) with photons and
massless neutrinos, comoving distance by quadrature, r_d from the fitting formula of Aubourg et al. 2015 (eq. 16), f sigma8 from the
Linder growth index gamma = 0.55. Only the consistency of the two routes matters, so three cosmologies are used.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import yaml
from scipy.integrate import quad

cobaya = pytest.importorskip("cobaya")
sacc = pytest.importorskip("sacc")

from cobaya.model import get_model  # noqa: E402
from cobaya.theory import Theory  # noqa: E402

from pbuf_data.fit.export import cobaya_native_kind, write_cobaya_export, write_exports, write_sacc  # noqa: E402
from pbuf_data.read.derive import derive_dataset  # noqa: E402
from pbuf_data.read.mock import write_mock_file  # noqa: E402
from pbuf_data.read.registry import load_registry  # noqa: E402

from conftest import PROJECT  # noqa: E402

C = 299792.458
COSMOLOGIES = [
    {"H0": 67.4, "omegam": 0.315, "ombh2": 0.02237, "sigma8": 0.811},
    {"H0": 70.0, "omegam": 0.28, "ombh2": 0.0222, "sigma8": 0.79},
    {"H0": 64.0, "omegam": 0.35, "ombh2": 0.0230, "sigma8": 0.84},
]


class FlatLCDM:
    def __init__(self, H0, omegam, ombh2, sigma8):
        self.H0, self.om, self.ombh2, self.s8 = H0, omegam, ombh2, sigma8

    OMEGA_R_H2 = 2.4728e-5 * (1 + 0.2271 * 3.046)  # photons at 2.7255 K and three massless neutrinos

    def hubble(self, z):
        z = np.asarray(z, dtype=float)
        orad = self.OMEGA_R_H2 / (self.H0 / 100) ** 2
        return self.H0 * np.sqrt(orad * (1 + z) ** 4 + self.om * (1 + z) ** 3 + 1 - self.om - orad)

    def zstar(self):
        """This theory's recombination redshift (its 'zstar', as CAMB's): the Hu & Sugiyama 1996 fit stands in for a
        recombination code; the class must use whatever z* the theory gives."""
        omh2, ombh2 = self.om * (self.H0 / 100) ** 2, self.ombh2
        g1 = 0.0783 * ombh2**-0.238 / (1 + 39.5 * ombh2**0.763)
        g2 = 0.560 / (1 + 21.1 * ombh2**1.81)
        return 1048 * (1 + 0.00124 * ombh2**-0.738) * (1 + g1 * omh2**g2)

    @functools.cached_property
    def cmb(self):
        """R, l_A at the theory's z* with the priors' sound speed c / sqrt(3 (1 + 3e4 omega_b a)), by direct
        quadrature (the independent route)."""
        zs = self.zstar()
        dm = quad(lambda x: C / self.hubble(x), 0, zs, epsabs=0, epsrel=1e-13, limit=400)[0]

        def integrand(a):
            cs = C / np.sqrt(3 * (1 + 3e4 * self.ombh2 * a))
            return cs / (a * a * self.hubble(1 / a - 1))

        rs = quad(integrand, 0, 1 / (1 + zs), epsabs=0, epsrel=1e-12, limit=200)[0]
        return {"R": np.sqrt(self.om) * self.H0 * dm / C, "l_A": np.pi * dm / rs, "omega_b_h2": self.ombh2}

    def comoving(self, z):
        """D_M(z): a cubic spline of the cumulative integral of c/H on a fine grid below z = 3, quadrature above."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if not hasattr(self, "_dm"):
            from scipy.integrate import cumulative_simpson
            from scipy.interpolate import CubicSpline

            grid = np.linspace(0, 3, 6001)
            self._dm = CubicSpline(grid, cumulative_simpson(C / self.hubble(grid), x=grid, initial=0))
        return np.array([self._dm(zi) if zi <= 3 else
                         self._dm(3.0) + quad(lambda x: C / self.hubble(x), 3, zi, epsabs=0, epsrel=1e-12)[0] for zi in z])

    def rdrag(self):
        omh2 = self.om * (self.H0 / 100) ** 2
        return 55.154 * np.exp(-72.3 * (0.0006) ** 2) / (omh2**0.25351 * self.ombh2**0.12807)

    def fsigma8(self, z):
        def f(x):
            e2 = self.om * (1 + x) ** 3 + 1 - self.om
            return (self.om * (1 + x) ** 3 / e2) ** 0.55

        out = []
        for zi in np.atleast_1d(z):
            growth = np.exp(-quad(lambda x: f(x) / (1 + x), 0, zi, epsrel=1e-12)[0])
            out.append(f(zi) * self.s8 * growth)
        return np.array(out)

    def predict(self, z, obs):
        dm, rd = self.comoving(z), self.rdrag()
        dh = C / self.hubble(z)
        return {"DM_over_rd": lambda: dm / rd, "DH_over_rd": lambda: dh / rd,
                "DV_over_rd": lambda: np.cbrt(z * dm**2 * dh) / rd, "rd_over_DV": lambda: rd / np.cbrt(z * dm**2 * dh),
                "H_times_rd": lambda: self.hubble(z) * rd, "H": lambda: self.hubble(z),
                "DA_over_rd": lambda: dm / (1 + z) / rd, "theta_BAO_deg": lambda: np.degrees(rd / dm),
                "fsigma8": lambda: self.fsigma8(z),
                "R": lambda: np.full(len(z), self.cmb["R"]), "l_A": lambda: np.full(len(z), self.cmb["l_A"]),
                "omega_b_h2": lambda: np.full(len(z), self.ombh2)}[obs]()


class NumpyTheory(Theory):
    """The same flat LCDM as a Cobaya theory: provides Hubble, angular_diameter_distance, fsigma8 and rdrag."""

    params = {"H0": None, "omegam": None, "ombh2": None, "sigma8": None}

    def get_can_provide(self):
        return ["Hubble", "angular_diameter_distance", "fsigma8"]

    def get_can_provide_params(self):
        return ["rdrag", "omegam", "zstar"]

    def must_provide(self, **requirements):
        return {}

    def calculate(self, state, want_derived=True, **params):
        state["model"] = FlatLCDM(**params)
        state["derived"] = {"rdrag": state["model"].rdrag(), "omegam": params["omegam"], "zstar": state["model"].zstar()}

    # like Cobaya's Boltzmann theories, these return arrays also for a scalar z
    def get_Hubble(self, z, units="km/s/Mpc"):
        h = np.atleast_1d(self.current_state["model"].hubble(z))
        return h if units == "km/s/Mpc" else h / C

    def get_angular_diameter_distance(self, z):
        z = np.atleast_1d(np.asarray(z, dtype=float))
        return self.current_state["model"].comoving(z) / (1 + z)

    def get_fsigma8(self, z):
        return self.current_state["model"].fsigma8(z)


def _chi2_ours(ds, cosmo):
    model = FlatLCDM(**cosmo)
    if ds.metadata["kind"] == "sn":
        mu = 5 * np.log10((1 + np.asarray(ds.columns["zHEL"], float)) * model.comoving(ds.z)) + 25
        return ds.chi2(mu)
    theory = np.empty(len(ds))
    for obs in set(ds.observable_type.tolist()):
        sel = ds.observable_type == obs
        theory[sel] = model.predict(ds.z[sel], obs)
        if obs == "fsigma8" and "omega_m_ref" in ds.columns:  # README: the Alcock-Paczynski factor of Gold-2018
            for i in np.flatnonzero(sel):
                om, zi = ds.columns["omega_m_ref"][i], ds.z[i]
                e_ref = lambda x: np.sqrt(om * (1 + x) ** 3 + 1 - om)  # noqa: E731
                ref = e_ref(zi) * quad(lambda x: 1 / e_ref(x), 0, zi, epsabs=0, epsrel=1e-12)[0]
                theory[i] *= ref / (model.hubble(zi) * model.comoving(zi)[0] / C)
    return ds.chi2(theory)


def _cobaya_chi2s(root, likelihood_block, cosmologies, fixed=None):
    """-2 ln L of Cobaya's model at each cosmology (one model, its parameters sampled, evaluated point by point)."""
    import os

    params = {k: {"prior": {"min": 0.5 * min(c[k] for c in cosmologies), "max": 2 * max(c[k] for c in cosmologies)}}
              for k in cosmologies[0]} | dict(fixed or {})
    info = {"likelihood": likelihood_block, "theory": {"numpy_lcdm": {"external": NumpyTheory}}, "params": params}
    cwd = os.getcwd()
    os.chdir(root)  # the exported YAML paths are relative to the project folder
    try:
        model = get_model(info)
        return [-2 * float(np.sum(model.loglikes(dict(c))[0])) for c in cosmologies]
    finally:
        os.chdir(cwd)


def _publish(ds, root):
    """Publish ``ds`` under ``root`` the way the workflow does (staged pair, then versioned publication)."""
    from pbuf_data.publish.publication import publish

    staged = root / "results" / "real" / "staging"
    ds.save(staged / f"{ds.name}.npz", staged / f"{ds.name}.json")
    publish(staged / f"{ds.name}.npz", staged / f"{ds.name}.json", root / "results" / "real" / "derived")


FIDUCIAL = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
REAL = ["sn_pantheon", "sn_des5yr", "cmb_planck2018", "bao_boss_dr12", "bao_boss_dr12_fs", "bao_desi_dr1", "bao_6dfgs", "rsd_fsigma8", "sn_pantheon_plus", "cc_moresco", "bao_sdss_mgs",
        "sn_union2", "bao_mp_compilation_2014", "bao_boss_dr11_cmass_gauss", "cc_hz_moresco2012_bc03"]
MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")


@pytest.fixture(scope="module")
def mock_datasets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mock_raw")
    block = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
    out = {}
    for name, entry in MOCKS.items():
        for role, spec in entry["files"].items():
            write_mock_file(entry, role, folder / spec["path"], block, entry["mock"]["seed"])
        out[name] = derive_dataset(name, entry, raw_dir=folder)
    return out


def _check(ds, root):
    _publish(ds, root)
    rel = "results/real/exports"  # as the workflow writes them (the YAML names the tree above)
    written = write_cobaya_export(ds, root / rel, rel, FIDUCIAL)
    block = yaml.safe_load((root / rel / f"{ds.name}.cobaya.yaml").read_text())["likelihood"]
    assert {p.name for p in written} >= {f"{ds.name}.cobaya.yaml"}
    native = cobaya_native_kind(ds)
    if native:  # its own file, one likelihood: Cobaya's class reading the native files
        exported = yaml.safe_load((root / rel / f"{ds.name}.native.cobaya.yaml").read_text())
        block |= exported["likelihood"]
        block_params = {k: v for k, v in exported["params"].items() if not isinstance(v, dict)}
    # CMB priors: the class splines H on grids and integrates D_M and r_s(z*), the test by adaptive quadrature
    tol = 1e-6 if ds.metadata["kind"] == "cmb" else 1e-9
    ours = [_chi2_ours(ds, cosmo) for cosmo in COSMOLOGIES]
    package = _cobaya_chi2s(root, {f"pbuf_{ds.name}": block[f"pbuf_{ds.name}"]}, COSMOLOGIES)
    assert package == pytest.approx(ours, rel=tol)
    if native:
        key = [k for k in block if k != f"pbuf_{ds.name}"][0]
        theirs = np.array(_cobaya_chi2s(root, {key: block[key]}, COSMOLOGIES, block_params))
        if native == "sn.pantheon":
            # Cobaya's SN class adds the theory-independent ln(E/2pi), E = 1^T C^-1 1, with M free (its marginal
            # likelihood) and with M fixed alike; chi2 here leaves it out
            theirs -= np.log(np.linalg.solve(ds.covariance, np.ones(len(ds))).sum() / (2 * np.pi))
        assert theirs.tolist() == pytest.approx(ours, rel=1e-9)
    return native


@pytest.mark.parametrize("name", REAL)
def test_real_dataset_through_cobaya(real, name, tmp_path):
    native = _check(real(name), tmp_path)
    expected = {"bao_boss_dr12": "bao.generic", "bao_boss_dr12_fs": "bao.generic", "bao_desi_dr1": "bao.generic",
                "bao_6dfgs": "bao.generic", "sn_pantheon_plus": "sn.pantheon", "sn_pantheon": "sn.pantheon",
                "sn_des5yr": "sn.pantheon", "sn_union2": "sn.pantheon", "bao_mp_compilation_2014": "bao.generic",
                "bao_boss_dr11_cmass_gauss": "bao.generic", "bao_sdss_mgs": "bao.generic"}  # Gold-2018 needs its AP factor
    assert native == expected.get(name)


def test_mock_datasets_through_cobaya(mock_datasets, tmp_path):
    for name, ds in mock_datasets.items():
        _check(ds, tmp_path / name)


@pytest.mark.parametrize("name", ["bao_desi_dr1", "sn_pantheon_plus", "rsd_fsigma8"])
def test_sacc_round_trip_is_identical(real, name, tmp_path):
    ds = real(name)
    path = write_sacc(ds, tmp_path / f"{name}.sacc.fits")
    back = sacc.Sacc.load_fits(str(path))
    assert np.array_equal(back.mean, ds.observable)
    assert np.array_equal(back.covariance.dense, ds.covariance)
    assert np.array_equal([d.get_tag("z") for d in back.data], ds.z)
    assert [d.get_tag("observable_type") for d in back.data] == ds.observable_type.tolist()
    assert back.metadata["pbuf_dataset"] == name
    for key, values in ds.columns.items():  # zHEL, M_B of supernovae, omega_m_ref of Gold-2018: tags of their points
        got = [d.tags.get(key, np.nan) for d in back.data]  # a NaN value is no tag
        np.testing.assert_array_equal(got, np.asarray(values), err_msg=key)
    assert {"sn_pantheon_plus": "zHEL", "rsd_fsigma8": "omega_m_ref"}.get(name, "z") in back.data[0].tags
    import json

    assert json.loads(back.metadata["pbuf_provenance"])["raw_files"][0]["sha256"] == ds.provenance["raw_files"][0]["sha256"]


def test_readme_cobaya_example_runs_with_cobaya_run_and_camb(real, tmp_path):
    """The README's YAML, run by ``cobaya-run`` (evaluate sampler, CAMB theory) on a published dataset; its chi2
    equals ``ds.chi2`` of the distances CAMB computes for the same parameters, called directly."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    camb = pytest.importorskip("camb")
    text = (PROJECT / "README.md").read_text()
    block = re.search(r"```yaml\n(# cobaya-run .*?)```", text, re.S)
    assert block, "README lacks the cobaya-run example"
    info = yaml.safe_load(block.group(1))
    name = info["likelihood"]["pbuf_data.fit.cobaya.Dataset"]["dataset"]
    ds = real(name)
    _publish(ds, tmp_path)
    (tmp_path / "fit.yaml").write_text(block.group(1))
    exe = Path(sys.executable).with_name("cobaya-run")
    proc = subprocess.run([str(exe), "fit.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = tmp_path / info["output"]
    chain = (prefix.parent / f"{prefix.name}.1.txt").read_text().split("\n")
    header, values = chain[0].lstrip("#").split(), chain[1].split()
    row = dict(zip(header, map(float, values)))
    point = info["sampler"]["evaluate"]["override"]
    fixed = {k: v for k, v in info["params"].items() if isinstance(v, (int, float))}
    pars = camb.set_params(H0=point["H0"], ombh2=fixed["ombh2"], omch2=point["omch2"], mnu=fixed["mnu"],
                           num_massive_neutrinos=1)
    background = camb.get_background(pars)
    # Cobaya's CAMB call finds the drag epoch to ~1e-6 relative of a direct call; the distances are identical,
    # so the chain's r_d is used for the theory and checked against the direct one
    assert row["rdrag"] == pytest.approx(background.get_derived_params()["rdrag"], rel=1e-5)
    rd = row["rdrag"]

    def theory(z, obs):
        dm, h = background.comoving_radial_distance(z), background.hubble_parameter(z)
        dh = C / h
        return {"DM_over_rd": dm / rd, "DH_over_rd": dh / rd, "DV_over_rd": np.cbrt(z * dm**2 * dh) / rd}[obs]

    assert row["chi2__pbuf_data.fit.cobaya.Dataset"] == pytest.approx(ds.chi2(theory), rel=1e-5)  # chain: 8 digits


def test_an_export_folder_holds_one_export_per_dataset(real, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "bao_desi_dr1.lcparam.txt").write_text("left over from an earlier export\n")
    (folder / "cc_moresco.cobaya.yaml").write_text("another dataset's export\n")
    written = write_exports(real("bao_desi_dr1"), folder, "results/real/exports", FIDUCIAL)
    assert {p.name for p in written} == {"bao_desi_dr1.bao_mean.txt", "bao_desi_dr1.bao_cov.txt",
                                         "bao_desi_dr1.cobaya.yaml", "bao_desi_dr1.native.cobaya.yaml",
                                         "bao_desi_dr1.sacc.fits"}
    assert sorted(p.name for p in folder.iterdir()) == sorted([*(p.name for p in written), "cc_moresco.cobaya.yaml"])


def test_a_combination_with_supernovae_through_cobaya(real, tmp_path):
    """The class scores the SN rows of a combination as distance moduli at their own zHEL (the column a
    combination keeps from its SN members; NaN for the other rows): -2 ln L = the sum of the members' chi2."""
    from scipy.linalg import block_diag

    from pbuf_data.model.dataset import Dataset

    members = [real("sn_pantheon"), real("bao_desi_dr1"), real("rsd_fsigma8")]
    n = [len(ds) for ds in members]
    column = lambda key: np.concatenate([np.asarray(ds.columns[key], float) if key in ds.columns  # noqa: E731
                                         else np.full(len(ds), np.nan) for ds in members])
    joint = Dataset(name="sn_bao_rsd", z=np.concatenate([ds.z for ds in members]),
                    observable=np.concatenate([ds.observable for ds in members]),
                    uncertainty=np.concatenate([ds.uncertainty for ds in members]),
                    covariance=block_diag(*[ds.covariance for ds in members]),
                    observable_type=np.concatenate([ds.observable_type for ds in members]),
                    metadata={"name": "sn_bao_rsd", "kind": "combination"},
                    columns={"member": np.repeat([ds.name for ds in members], n),
                             "kind": np.repeat([ds.metadata["kind"] for ds in members], n),
                             "zHEL": column("zHEL"), "omega_m_ref": column("omega_m_ref")})
    _publish(joint, tmp_path)
    block = {"pbuf_joint": {"class": "pbuf_data.fit.cobaya.Dataset", "dataset": "sn_bao_rsd", "root": "results/real"}}
    expected = [sum(_chi2_ours(ds, cosmo) for ds in members) for cosmo in COSMOLOGIES]
    assert _cobaya_chi2s(tmp_path, block, COSMOLOGIES) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", ["mock_bao_elg_table", "mock_bao_lya_grid"])
def test_a_sacc_file_carries_the_likelihood_table_itself(mock_datasets, name, tmp_path):
    """The ln L nodes of a table or grid, read back with sacc and interpolated here, give ds.loglike."""
    from scipy.interpolate import RectBivariateSpline, UnivariateSpline

    ds = mock_datasets[name]
    back = sacc.Sacc.load_fits(str(write_sacc(ds, tmp_path / f"{name}.sacc.fits")))
    types = list(dict.fromkeys(ds.observable_type.tolist()))
    nodes = [d for d in back.data if d.data_type == "pbuf_lnL"]
    axes = [np.unique([d.get_tag(t) for d in nodes]) for t in types]
    lnl = np.zeros([a.size for a in axes])
    for d in nodes:
        lnl[tuple(np.searchsorted(a, d.get_tag(t)) for a, t in zip(axes, types))] = d.value
    assert len(nodes) == lnl.size and back.covariance is None
    assert back.metadata["pbuf_likelihood_form"] == ds.likelihood().form
    for frac in (0.2, 0.5, 0.8):
        t = np.array([a[0] + frac * (a[-1] - a[0]) for a in axes])
        ours = (UnivariateSpline(axes[0], lnl, s=0, k=3)(t[0]) if len(axes) == 1
                else RectBivariateSpline(axes[0], axes[1], lnl, kx=3, ky=3)(t[0], t[1])[0, 0])
        assert float(ours) == pytest.approx(ds.loglike(t), rel=1e-12, abs=1e-12)


def test_a_column_that_cannot_be_a_sacc_tag_is_refused_by_name(real, tmp_path):
    from pbuf_data.core.errors import PbufDataError

    ds = real("cc_moresco")
    ds.columns["observable_type"] = ds.observable_type.copy()
    try:
        with pytest.raises(PbufDataError, match="per-point column 'observable_type' cannot be a SACC tag"):
            write_sacc(ds, tmp_path / "cc.sacc.fits")
    finally:
        del ds.columns["observable_type"]
    assert not (tmp_path / "cc.sacc.fits").exists()
