"""Likelihood tables say what their summary is: the maximum-likelihood point and 68 % interval beside the moment
summary, each checked against an independent computation; and each ``values`` kind is read as the README says."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import yaml
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq, minimize_scalar

from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import write_mock_file
from pbuf_data.read.registry import load_registry

from conftest import PROJECT

REGISTRY = load_registry(PROJECT / "config" / "registry.yaml")
MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")
FIDUCIAL = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
MGS_DV_FID = 4.29720761315  # the MGS release's fiducial D_V/r_d (registry: bao_sdss_mgs)


def _derived(name, table_text, options, tmp_path):
    raw = tmp_path / "raw"
    (raw / name).mkdir(parents=True, exist_ok=True)
    path = raw / name / "table.txt"
    path.write_bytes(table_text) if isinstance(table_text, bytes) else path.write_text(table_text)
    entry = copy.deepcopy(REGISTRY["bao_sdss_mgs"])
    entry.pop("expected_points", None)
    entry.update(format="likelihood_table", options=options,
                 files={"table": {"path": f"{name}/table.txt", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}})
    registry = tmp_path / f"{name}.yaml"
    registry.write_text(yaml.safe_dump({"datasets": {name: entry}}))
    return derive_dataset(name, load_registry(registry)[name], raw)


def _independent_1d(x, lnl):
    """Maximum and Delta chi2 = 1 interval of the not-a-knot cubic spline of ln L, by scipy's CubicSpline."""
    spline = CubicSpline(x, lnl, bc_type="not-a-knot")
    dense = np.linspace(x[0], x[-1], 200001)
    i = int(np.argmax(spline(dense)))
    best = minimize_scalar(lambda v: -spline(v), bounds=(dense[max(i - 5, 0)], dense[min(i + 5, dense.size - 1)]),
                           method="bounded", options={"xatol": 1e-13}).x
    level = float(spline(best)) - 0.5
    left = dense[:i][spline(dense[:i]) < level][-1]
    right = dense[i:][spline(dense[i:]) < level][0]
    return best, brentq(lambda v: spline(v) - level, left, best), brentq(lambda v: spline(v) - level, best, right)


def test_the_mgs_chi2_table_records_its_maximum_and_interval(raw_dir, tmp_path):
    """The SDSS MGS chi2 file as a likelihood_table: the recorded maximum is SOURCES.md's (alpha = 1.0395, D_V/r_d
    = 4.4669) and equals, with its interval, the independent computation; the moment mean is not it."""
    data = (raw_dir / "bao_sdss_mgs" / "sdss_MGS_prob.txt").read_bytes()
    ds = _derived("mgs", data, {"observables": ["DV_over_rd"], "z_eff": 0.15, "values": "chi2",
                                "grid": {"min": 0.8005 * MGS_DV_FID, "max": 1.1985 * MGS_DV_FID}}, tmp_path)
    meta = ds.metadata["likelihood"]
    assert meta["summary"] == "moments" and "not the measurement the release quotes" in meta["gaussian_summary"]
    x, lnl = ds.aux["table.DV_over_rd"], ds.aux["table.lnL"]
    best, lo, hi = _independent_1d(x, lnl)
    assert meta["maximum_likelihood"]["DV_over_rd"] == pytest.approx(best, rel=1e-8)
    assert meta["interval_68"]["DV_over_rd"] == pytest.approx([lo, hi], rel=1e-8)
    assert best == pytest.approx(4.4669, abs=2e-3)
    assert abs(ds.observable[0] - best) > 0.01  # the moment mean of this skewed curve is elsewhere


def test_a_two_dimensional_gaussian_grid_gives_its_centre_and_marginal_sigmas(tmp_path):
    """For a Gaussian ln L the profile likelihood's Delta chi2 = 1 interval is centre +/- sqrt(C_ii), analytically."""
    x, y = np.linspace(30.0, 45.0, 61), np.linspace(6.0, 11.0, 51)
    centre, cov = np.array([37.3, 8.81]), np.array([[3.4, -0.35], [-0.35, 0.09]])
    xx, yy = np.meshgrid(x, y, indexing="ij")
    d = np.stack([xx - centre[0], yy - centre[1]], axis=-1)
    chi2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    text = "\n".join(f"{a:.6f} {b:.6f} {np.exp(-c / 2):.12e}" for a, b, c in zip(xx.ravel(), yy.ravel(), chi2.ravel()))
    ds = _derived("lya", text + "\n", {"observables": ["DM_over_rd", "DH_over_rd"], "z_eff": 2.334,
                                        "values": "likelihood"}, tmp_path)
    meta = ds.metadata["likelihood"]
    best = [meta["maximum_likelihood"][t] for t in ("DM_over_rd", "DH_over_rd")]
    np.testing.assert_allclose(best, centre, rtol=1e-7)
    for i, t in enumerate(("DM_over_rd", "DH_over_rd")):
        s = np.sqrt(cov[i, i])
        np.testing.assert_allclose(meta["interval_68"][t], [centre[i] - s, centre[i] + s], rtol=1e-6)


@pytest.mark.parametrize("kind", ["likelihood", "probability", "chi2"])
def test_each_values_kind_is_read_as_documented(kind, tmp_path):
    """One skewed likelihood written as L, as a normalized probability density and as chi2 = -2 ln L + const: the
    same ln L up to a constant, hence the same maximum, interval and moments."""
    x = np.linspace(14.0, 23.0, 181)
    lnl = -0.5 * ((x - 18.3) / np.where(x < 18.3, 0.62, 0.57)) ** 2 - 0.02 * (x - 18.3) ** 3
    value = {"likelihood": np.exp(lnl), "probability": np.exp(lnl) / np.trapezoid(np.exp(lnl), x),
             "chi2": -2 * lnl + 3.0}[kind]
    ds = _derived("elg", "".join(f"{a:.6f} {v:.12e}\n" for a, v in zip(x, value)),
                  {"observables": ["DV_over_rd"], "z_eff": 0.845, "values": kind}, tmp_path)
    got = ds.aux["table.lnL"] - ds.aux["table.lnL"].max()
    np.testing.assert_allclose(got, lnl - lnl.max(), atol=1e-9)  # 12 significant digits written
    best, lo, hi = _independent_1d(x, lnl)
    meta = ds.metadata["likelihood"]
    assert meta["maximum_likelihood"]["DV_over_rd"] == pytest.approx(best, rel=1e-7)
    assert meta["interval_68"]["DV_over_rd"] == pytest.approx([lo, hi], rel=1e-7)


def test_the_shipped_chi2_example_entry(tmp_path):
    """The mock registry's chi2 example (one chi2 column on a declared grid) reads as ln L = -chi2/2."""
    name = "mock_bao_mgs_chi2_table"
    entry = MOCKS[name]
    assert entry["options"]["values"] == "chi2" and "grid" in entry["options"]
    path = tmp_path / entry["files"]["table"]["path"]
    write_mock_file(entry, "table", path, FIDUCIAL, entry["mock"]["seed"])
    ds = derive_dataset(name, entry, raw_dir=tmp_path)
    chi2 = np.loadtxt(path)
    x = np.linspace(entry["options"]["grid"]["min"], entry["options"]["grid"]["max"], chi2.size)
    np.testing.assert_allclose(ds.aux["table.lnL"], -0.5 * chi2, rtol=0, atol=0)
    best, lo, hi = _independent_1d(x, -0.5 * chi2)
    assert ds.metadata["likelihood"]["maximum_likelihood"]["DV_over_rd"] == pytest.approx(best, rel=1e-8)
    assert ds.metadata["likelihood"]["interval_68"]["DV_over_rd"] == pytest.approx([lo, hi], rel=1e-8)


def test_the_figure_names_the_moment_summary_and_shows_the_maximum(tmp_path):
    from pbuf_data.fit.plots import observable_figure
    from pbuf_data.model.cosmology import Fiducial

    name = "mock_bao_elg_table"
    entry = MOCKS[name]
    write_mock_file(entry, "table", tmp_path / entry["files"]["table"]["path"], FIDUCIAL, entry["mock"]["seed"])
    ds = derive_dataset(name, entry, raw_dir=tmp_path)
    fig = observable_figure(ds, Fiducial.from_config(FIDUCIAL))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    best = ds.metadata["likelihood"]["maximum_likelihood"]["DV_over_rd"]
    assert any(label.startswith("moment summary") and "not the quoted value" in label for label in labels)
    assert any(label.startswith(f"maximum likelihood {best:.4g}, 68 %") for label in labels)
    assert any(line.get_xdata()[0] == pytest.approx(best) for line in fig.axes[0].get_lines()[1:])
