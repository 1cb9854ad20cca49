"""The likelihood API (chi2 / loglike) against computations written here with numpy and scipy."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from scipy.interpolate import CubicSpline
from scipy.optimize import minimize_scalar

from pbuf_data.core.errors import PbufDataError
from pbuf_data.model.cosmology import Fiducial
from pbuf_data.model.dataset import Dataset

from conftest import PROJECT

FIDUCIAL = Fiducial.from_config(yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"])


def _prediction(ds):
    """The fiducial model's value at every point, one observable type at a time (as a fitter would)."""
    out = np.empty(len(ds))
    for obs in set(ds.observable_type.tolist()):
        sel = ds.observable_type == obs
        out[sel] = FIDUCIAL.predict(obs, ds.z[sel])
    return out


def _gaussian(n=6, seed=1, *, kind="bao"):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    cov = a @ a.T + n * np.eye(n)
    return Dataset(name="toy", z=np.linspace(0.1, 1.0, n), observable=rng.normal(size=n), uncertainty=np.sqrt(np.diag(cov)),
                   covariance=cov, observable_type=np.array(["DM_over_rd", "DH_over_rd"] * (n // 2)),
                   metadata={"kind": kind})


def test_gaussian_chi2_equals_solve_and_callable_equals_vector():
    ds = _gaussian()
    theory = np.linspace(-1, 1, len(ds))
    r = ds.observable - theory
    assert ds.chi2(theory) == pytest.approx(r @ np.linalg.solve(ds.covariance, r), rel=1e-12)
    assert ds.loglike(theory) == pytest.approx(-0.5 * ds.chi2(theory), rel=1e-15)
    by_type = lambda z, obs: np.interp(z, ds.z, theory) if obs else None  # noqa: E731
    assert ds.chi2(by_type) == pytest.approx(ds.chi2(theory), rel=1e-14)


def test_gaussian_normalization_matches_scipy_multivariate_normal():
    from scipy.stats import multivariate_normal

    ds = _gaussian(n=4, seed=3)
    theory = np.zeros(4)
    lik = ds.likelihood()
    expected = multivariate_normal(mean=theory, cov=ds.covariance).logpdf(ds.observable)
    assert lik.loglike(theory) + lik.log_normalization == pytest.approx(expected, rel=1e-12)


def test_sn_offset_marginalization_equals_the_minimum_over_the_offset():
    ds = _gaussian(n=8, seed=5, kind="sn")
    ds.observable_type = np.full(8, "m_b_corr")
    theory = np.linspace(30, 40, 8)
    inv = np.linalg.inv(ds.covariance)

    def chi2_with_offset(m):
        r = ds.observable - theory - m
        return r @ inv @ r

    best = minimize_scalar(chi2_with_offset, bracket=(-50, 50), tol=1e-12).fun
    assert ds.chi2(theory) == pytest.approx(best, rel=1e-8)
    assert ds.chi2(theory + 3.7) == pytest.approx(ds.chi2(theory), rel=1e-9)  # the offset is free
    assert ds.chi2(theory, marginalize_offset=False) == pytest.approx(chi2_with_offset(0.0), rel=1e-12)
    with pytest.raises(PbufDataError, match="marginalize"):
        _gaussian().chi2(np.zeros(6), marginalize_offset=True)


@pytest.mark.parametrize(
    "theory, check",
    [(np.zeros(5), "theory length"), (np.array([0, 1, np.nan, 2, 3, 4.0]), "theory finite"),
     (lambda z, obs: np.ones(2), "theory length"), (lambda z, obs: z * np.inf, "theory finite")],
)
def test_bad_theory_is_a_clear_error(theory, check):
    with pytest.raises(PbufDataError) as info:
        _gaussian().chi2(theory)
    assert info.value.check == check and "toy" in str(info.value)


def _mgs(real_or_mock):
    ds = real_or_mock
    x, chi2 = ds.aux["chi2_DV_over_rd"], ds.aux["chi2"]
    return ds, x, chi2


def test_mgs_chi2_table_is_a_cubic_spline_of_lnL_like_cobaya(real):
    ds, x, chi2 = _mgs(real("bao_sdss_mgs"))
    lik = ds.likelihood()
    assert lik.form == "table_1d"
    # on the nodes the spline interpolates the published chi2
    for i in (0, 57, 239, 398):
        assert ds.chi2(np.array([x[i]])) == pytest.approx(chi2[i], abs=1e-9)
    # between nodes: the not-a-knot cubic spline of ln L (what FITPACK's s=0 spline is), computed independently
    spline = CubicSpline(x, -0.5 * chi2, bc_type="not-a-knot")
    for value in (4.3171, 4.4669, 4.62555, 3.5, 5.1):
        assert ds.chi2(np.array([value])) == pytest.approx(-2 * spline(value), rel=1e-9, abs=1e-9)
    # the minimum is where SOURCES.md puts it: alpha = 1.0395 -> D_V/r_d = 4.4669
    best = minimize_scalar(lambda v: ds.chi2(np.array([v])), bounds=(4.3, 4.6), method="bounded").x
    assert best == pytest.approx(4.4669, abs=2e-3)
    for outside in (x[0] - 1e-6, x[-1] + 0.01):
        with pytest.raises(PbufDataError, match="outside the likelihood grid"):
            ds.chi2(np.array([outside]))
    # the Gaussian summary stays available, by option
    sigma = ds.uncertainty[0]
    assert ds.chi2(np.array([4.5]), form="gaussian") == pytest.approx(((ds.observable[0] - 4.5) / sigma) ** 2, rel=1e-12)


def test_two_dimensional_grid_reproduces_a_quadratic_lnL_exactly():
    """A bicubic spline holds every polynomial of degree <= 3 per axis: a Gaussian ln L on a grid comes back exactly."""
    x, y = np.linspace(17, 21, 41), np.linspace(7.5, 10.5, 31)
    mean, icov = np.array([19.1, 8.9]), np.array([[2.0, 0.7], [0.7, 3.0]])
    dx, dy = np.meshgrid(x - mean[0], y - mean[1], indexing="ij")
    lnl = -0.5 * (icov[0, 0] * dx**2 + 2 * icov[0, 1] * dx * dy + icov[1, 1] * dy**2)
    ds = Dataset(name="lya_grid", z=np.array([2.33, 2.33]), observable=mean, uncertainty=np.ones(2),
                 covariance=np.linalg.inv(icov), observable_type=np.array(["DM_over_rd", "DH_over_rd"]),
                 metadata={"kind": "bao"}, aux={"grid.DM_over_rd": x, "grid.DH_over_rd": y, "grid.lnL": lnl})
    assert ds.likelihood().form == "grid_2d"
    for point in ([18.33, 9.71], [20.9, 7.6], [19.1, 8.9]):
        d = np.array(point) - mean
        assert ds.chi2(np.array(point)) == pytest.approx(d @ icov @ d, rel=1e-9, abs=1e-10)
    with pytest.raises(PbufDataError, match="outside the likelihood grid"):
        ds.chi2(np.array([16.9, 9.0]))


REAL_NAMES = ["sn_pantheon_plus", "bao_boss_dr12", "bao_desi_dr1", "bao_6dfgs", "cmb_planck2018", "cc_moresco", "rsd_fsigma8"]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_dataset_chi2_at_the_fiducial_equals_a_direct_solve(real, name):
    ds = real(name)
    theory = _prediction(ds)
    r = ds.observable - theory
    inv_r = np.linalg.solve(ds.covariance, r)
    expected = r @ inv_r  # Pantheon+ is published as mu with the SH0ES M_B: used as it is, no free offset
    assert ds.chi2(theory) == pytest.approx(expected, rel=1e-9)


def test_sn_m_b_corr_marginalizes_and_mu_does_not(real, registry, raw_dir):
    import copy

    from pbuf_data.read.derive import derive_dataset

    mu = real("sn_pantheon_plus")
    entry = copy.deepcopy(registry["sn_pantheon_plus"])
    entry["options"]["observable_type"] = "m_b_corr"
    mb = derive_dataset("sn_pantheon_plus", entry, raw_dir)
    theory = _prediction(mu)
    assert not mu.likelihood().marginalize_offset and mb.likelihood().marginalize_offset
    r = mb.observable - theory  # = M_B + noise: the free offset the marginalization removes
    inv_r, inv_1 = np.linalg.solve(mb.covariance, r), np.linalg.solve(mb.covariance, np.ones(len(mb)))
    assert mb.chi2(theory) == pytest.approx(r @ inv_r - (inv_1 @ r) ** 2 / inv_1.sum(), rel=1e-9)


def test_readme_fit_example_runs_and_finds_a_sensible_omega_m(real, tmp_path):
    """The README's ten-line example, run on the derived CC dataset."""
    text = (PROJECT / "README.md").read_text()
    block = re.search(r"```python\n(# Fit .*?)```", text, re.S)
    assert block, "README lacks the fit example"
    real("cc_moresco").save(tmp_path / "cc_moresco.npz", tmp_path / "cc_moresco.json")
    code = block.group(1).replace('load_dataset("cc_moresco", root=".")', "read_dataset(NPZ, JSON)")
    namespace = {"NPZ": tmp_path / "cc_moresco.npz", "JSON": tmp_path / "cc_moresco.json"}
    exec("from pbuf_data import read_dataset\n" + code, namespace)
    assert 0.2 < namespace["fit"].x < 0.45
