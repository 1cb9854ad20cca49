"""The workflow's exports as a fitter uses them, on the real and the mock corpus (each with a combination):

* ``cobaya-run`` (Cobaya's own program) on every Cobaya input as it is written reports -2 ln L = ``ds.chi2`` at
  the input's point, computed here from the dataset and the flat LCDM of :mod:`pbuf_data.model.cosmology`;
* every SACC file, read back with the ``sacc`` library, re-scores to ``ds.chi2`` (a likelihood written here from
  the file's points, tags, covariance or ln L nodes) and carries every per-point column.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.integrate import quad

from conftest import PROJECT, Workflow, copy_project
from pbuf_data import load_dataset
from pbuf_data.model.cosmology import C_KM_S, Fiducial

sacc = pytest.importorskip("sacc")
pytest.importorskip("cobaya")

pytestmark = pytest.mark.workflow

REAL_COMBINATION = ("combinations={fit_mix: {datasets: [bao_desi_dr1, cc_moresco, cmb_planck2018, rsd_fsigma8]}}")
MOCK_COMBINATION = ("combinations={mock_fit_mix: {datasets: [mock_bao_desi_dr1, mock_cc_moresco, mock_cmb_planck2018, "
                    "mock_rsd_fsigma8]}}")
FIDUCIAL = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
SN_TYPES = {"mu", "m_b_corr", "mu_offset_free"}
CMB_TYPES = {"R", "l_A", "omega_b_h2"}


@pytest.fixture(scope="module")
def corpora(finished_run, raw_dir, mock_registry, tmp_path_factory) -> dict[str, Path]:
    """corpus -> a project with the workflow's exports: the session's finished real run with a combination added,
    and the embedded default (mock corpus) with a combination, run to its exports (no figures or report)."""
    real = tmp_path_factory.mktemp("exports-real") / "project"
    shutil.copytree(finished_run, real, symlinks=True)
    Workflow(real).run("--cores", "2", "--config", f"raw_dir={raw_dir}", REAL_COMBINATION)
    mock = copy_project(tmp_path_factory.mktemp("exports-mock") / "project")
    receipts = [f"results/mock/state/{name}.exports.json" for name in [*mock_registry, "mock_fit_mix"]]
    mock.run("--cores", "2", "--config", MOCK_COMBINATION, "--", *receipts)
    return {"real": real, "mock": mock.root}


def _exports(corpora, pattern):
    return [(root, path) for corpus, root in corpora.items()
            for path in sorted((root / "results" / corpus / "exports").glob(pattern))]


def _cosmology(point: dict, theory_options: dict) -> Fiducial:
    return Fiducial(H0=point["H0"], Omega_m=point["omegam"], Omega_b_h2=point["ombh2"], sigma8=point["sigma8"],
                    n_s=np.nan, T_cmb=theory_options["T_cmb"], N_eff=theory_options["N_eff"], M_B=np.nan)


def _theory(ds, cosmo: Fiducial):
    """theory(z, observable_type) of README's formula table, for ``ds.chi2``."""

    def theory(z, obs):
        sel = ds.observable_type == obs
        if obs in SN_TYPES:  # D_L = (1 + zHEL) D_M(zHD)
            zhel = np.asarray(ds.columns["zHEL"], dtype=float)[sel]
            return 5 * np.log10((1 + zhel) * cosmo.DM(z)) + 25
        if obs in CMB_TYPES:
            return np.full(len(z), cosmo.distance_priors()[obs])
        if obs == "H":
            return cosmo.H(z)
        if obs == "fsigma8":
            out = cosmo.fsigma8(z)
            if "omega_m_ref" in ds.columns:  # the Alcock-Paczynski factor H_ref D_M,ref / (H D_M)
                for i, (zi, om) in enumerate(zip(z, np.asarray(ds.columns["omega_m_ref"], dtype=float)[sel])):
                    e_ref = lambda x: np.sqrt(om * (1 + x) ** 3 + 1 - om)  # noqa: E731
                    ref = e_ref(zi) * quad(lambda x: 1 / e_ref(x), 0, zi, epsabs=0, epsrel=1e-13)[0]
                    out[i] *= ref / (cosmo.H(zi) * cosmo.DM(zi) / C_KM_S)
            return out
        return cosmo.bao(obs, z)

    return theory


# one process runs Cobaya's cobaya-run entry point (what the cobaya-run script calls) on every file in turn
RUNNER = """
import sys
from cobaya.run import run_script
for path in sys.argv[1:]:
    print("=== " + path, flush=True)
    run_script([path, "--debug"])
"""


def _offline_env(tmp_path) -> dict:
    """The environment with an empty Cobaya packages folder: no data package, no Boltzmann code installed there."""
    (tmp_path / "cobaya_packages").mkdir()
    return {**os.environ, "COBAYA_PACKAGES_PATH": str(tmp_path / "cobaya_packages")}


def test_cobaya_run_on_every_export_gives_ds_chi2(corpora, tmp_path):
    files = _exports(corpora, "*.cobaya.yaml")
    names = {p.name for _, p in files}
    assert {"bao_desi_dr1.cobaya.yaml", "bao_desi_dr1.native.cobaya.yaml", "sn_pantheon_plus.native.cobaya.yaml",
            "fit_mix.cobaya.yaml", "mock_fit_mix.cobaya.yaml", "mock_bao_lya_grid.cobaya.yaml",
            "mock_bao_lya_grid.native.cobaya.yaml", "bao_sdss_mgs.native.cobaya.yaml"} <= names
    checked, env = [], _offline_env(tmp_path)
    for root in corpora.values():
        mine = [p for r, p in files if r == root]
        proc = subprocess.run([sys.executable, "-c", RUNNER, *(str(p.relative_to(root)) for p in mine)], cwd=root,
                              capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert not [p for p in root.iterdir() if p.name.endswith((".input.yaml", ".updated.yaml", ".1.txt"))]
        runs = dict(re.findall(r"^=== (\S+)\n(.*?)(?=^=== |\Z)", proc.stdout + "\n", re.S | re.M))
        for path in mine:
            info = yaml.safe_load(path.read_text())
            (key, block), = info["likelihood"].items()  # exactly one likelihood
            log = runs[str(path.relative_to(root))]
            reported = [float(v) for v in re.findall(rf"\[{re.escape(key)}\] Computed log-likelihood = (\S+)", log)]
            assert reported, log[-2000:]
            ds = load_dataset(path.name.split(".")[0], root=root)
            (theory_options,) = info["theory"].values()
            point = info["sampler"]["evaluate"]["override"]
            assert point == {"H0": FIDUCIAL["H0"], "omegam": FIDUCIAL["Omega_m"], "ombh2": FIDUCIAL["Omega_b_h2"],
                             "sigma8": FIDUCIAL["sigma8"]}  # config/README: the exports' point
            assert theory_options == {"T_cmb": FIDUCIAL["T_cmb"], "N_eff": FIDUCIAL["N_eff"]}
            expected = ds.chi2(_theory(ds, _cosmology(point, theory_options)))
            if block["class"].endswith("SnPantheon"):  # Cobaya's SN class adds ln(E / 2 pi), E = 1^T C^-1 1
                expected += np.log(np.linalg.solve(ds.covariance, np.ones(len(ds))).sum() / (2 * np.pi))
            form = ds.likelihood().form
            # tables and grids: 1e-6; CMB priors: the class integrates r_s(z*) on a spline grid, 2.5e-10 of l_A from
            # the quadrature of pbuf_data.model.cosmology, which sigma(l_A)/l_A ~ 3e-4 turns into ~1e-7 of chi2
            tolerance = 1e-6 if form != "gaussian" or "l_A" in ds.observable_type else 1e-9
            assert -2 * reported[-1] == pytest.approx(expected, rel=tolerance, abs=tolerance), path.name
            # and what it prints for the user (six digits)
            printed = float(re.search(rf"chi2_{re.escape(key)} = (\S+)", log).group(1))
            assert printed == pytest.approx(expected, rel=1e-5)
            checked.append((path.name, form))
    assert len(checked) == len(files) and {"table_1d", "grid_2d", "gaussian"} <= {f for _, f in checked}


def test_the_readme_command_runs_an_export_as_it_is(corpora, tmp_path):
    """README's one command, the cobaya-run program itself, on the real corpus' combination."""
    root = corpora["real"]
    text = (PROJECT / "README.md").read_text()
    command = re.search(r"^cobaya-run (results/<corpus>/exports/<name>\.cobaya\.yaml)$", text, re.M)
    assert command, "README lacks the command that runs an export"
    exe = Path(sys.executable).with_name("cobaya-run")
    path = "results/real/exports/fit_mix.cobaya.yaml"
    proc = subprocess.run([str(exe), path], cwd=root, capture_output=True, text=True, timeout=600,
                          env=_offline_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ds = load_dataset("fit_mix", root=root)
    info = yaml.safe_load((root / path).read_text())
    (theory_options,) = info["theory"].values()
    expected = ds.chi2(_theory(ds, _cosmology(info["sampler"]["evaluate"]["override"], theory_options)))
    printed = float(re.search(r"chi2_pbuf_fit_mix = (\S+)", proc.stdout + proc.stderr).group(1))
    assert printed == pytest.approx(expected, rel=1e-5)


def _sacc_chi2(s, theory_of):
    """chi2 from a SACC file alone: the points, their tags, the covariance (or the summary covariance and the ln L
    nodes), and theory_of(z, observable_type, tags) for one point."""
    points = [d for d in s.data if d.data_type != "pbuf_lnL"]
    t = np.array([theory_of(d.get_tag("z"), d.get_tag("observable_type"), d.tags) for d in points])
    form = s.metadata["pbuf_likelihood_form"]
    if form != "gaussian":  # the spline's degree, and whether it goes through ln L or through L itself
        k, by_likelihood = s.metadata["pbuf_spline_degree"], s.metadata["pbuf_interpolated"] == "likelihood"

        def through(lnl):
            return np.exp(lnl) if by_likelihood else lnl

        def of_likelihood(value):
            value = float(value)
            return (np.log(value) if value > 0 else -np.inf) if by_likelihood else value
    if form == "table_1d":
        from scipy.interpolate import UnivariateSpline

        obs = points[0].get_tag("observable_type")
        nodes = sorted((d.get_tag(obs), d.value) for d in s.data if d.data_type == "pbuf_lnL")
        x, lnl = np.array(nodes).T
        return -2 * of_likelihood(UnivariateSpline(x, through(lnl), s=0, k=k)(t[0]))
    if form == "grid_2d":
        from scipy.interpolate import RectBivariateSpline

        a, b = (d.get_tag("observable_type") for d in points)
        nodes = [(d.get_tag(a), d.get_tag(b), d.value) for d in s.data if d.data_type == "pbuf_lnL"]
        x, y = np.unique([n[0] for n in nodes]), np.unique([n[1] for n in nodes])
        lnl = np.full((x.size, y.size), np.nan)
        for xi, yi, v in nodes:
            lnl[np.searchsorted(x, xi), np.searchsorted(y, yi)] = v
        assert np.isfinite(lnl).all()
        return -2 * of_likelihood(RectBivariateSpline(x, y, through(lnl), kx=k, ky=k)(t[0], t[1])[0, 0])
    cov = s.covariance.dense
    r = s.mean - t
    inv_r, inv_1 = np.linalg.solve(cov, r), None
    chi2 = float(r @ inv_r)
    if s.metadata["pbuf_offset_marginalized"]:  # one free offset per SN dataset or SN member (README)
        groups = sorted({d.tags.get("member", "") for d in points if d.get_tag("observable_type") in ("m_b_corr", "mu_offset_free")})
        u = np.array([[d.get_tag("observable_type") in ("m_b_corr", "mu_offset_free") and d.tags.get("member", "") == g
                       for g in groups] for d in points], dtype=float)
        inv_1 = np.linalg.solve(cov, u)
        b = u.T @ inv_r
        chi2 -= float(b @ np.linalg.solve(u.T @ inv_1, b))
    return chi2


def test_every_sacc_file_rescores_to_ds_chi2(corpora):
    files = _exports(corpora, "*.sacc.fits")
    fiducial = FIDUCIAL
    point = {"H0": fiducial["H0"], "omegam": fiducial["Omega_m"], "ombh2": fiducial["Omega_b_h2"],
             "sigma8": fiducial["sigma8"]}
    forms = set()
    for root, path in files:
        s = sacc.Sacc.load_fits(str(path))
        ds = load_dataset(s.metadata["pbuf_dataset"], root=root)
        forms.add(s.metadata["pbuf_likelihood_form"])
        # every per-point column travels as a tag of its point (no tag: NaN, or an empty text)
        points = [d for d in s.data if d.data_type != "pbuf_lnL"]
        for key, values in ds.columns.items():
            values = np.asarray(values)
            if values.dtype.kind == "f":
                np.testing.assert_array_equal([d.tags.get(key, np.nan) for d in points], values, err_msg=path.name)
            else:
                assert [d.tags.get(key, "") for d in points] == values.tolist(), (path.name, key)
        cosmo = _cosmology(point, fiducial)

        def theory_of(z, obs, tags):
            if obs in SN_TYPES:
                return 5 * np.log10((1 + tags["zHEL"]) * cosmo.DM(z)) + 25
            if obs == "fsigma8" and "omega_m_ref" in tags:
                om = tags["omega_m_ref"]
                e_ref = lambda x: np.sqrt(om * (1 + x) ** 3 + 1 - om)  # noqa: E731
                ref = e_ref(z) * quad(lambda x: 1 / e_ref(x), 0, z, epsabs=0, epsrel=1e-13)[0]
                return cosmo.fsigma8(z) * ref / (cosmo.H(z) * cosmo.DM(z) / C_KM_S)
            if obs in CMB_TYPES:
                return cosmo.distance_priors()[obs]
            return cosmo.H(z) if obs == "H" else cosmo.fsigma8(z) if obs == "fsigma8" else cosmo.bao(obs, z)

        if ds.likelihood().form == "gaussian":
            expected = ds.chi2(_theory(ds, cosmo))
            assert _sacc_chi2(s, theory_of) == pytest.approx(expected, rel=1e-10, abs=1e-10), path.name
        else:  # ln L at several points across the table or grid
            (axes, _lnl) = ds.likelihood().table
            for frac in (0.13, 0.37, 0.5, 0.71, 0.94):
                t = np.array([axis[0] + frac * (axis[-1] - axis[0]) for axis in axes])
                got = _sacc_chi2(s, lambda z, obs, tags: t[list(dict.fromkeys(ds.observable_type.tolist())).index(obs)])
                assert -0.5 * got == pytest.approx(ds.loglike(t[: len(ds)]), rel=1e-12, abs=1e-12), path.name
    assert {"gaussian", "table_1d", "grid_2d"} <= forms
    assert len(files) == len({p.name for _, p in files})
