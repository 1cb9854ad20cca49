"""Report figures: what each shows, read back from the matplotlib objects."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from matplotlib.contour import QuadContourSet
from matplotlib.image import AxesImage

from pbuf_data.cosmology import Fiducial
from pbuf_data.plots import _fiducial_values, correlation_figure, observable_figure

from conftest import PROJECT

FIDUCIAL = Fiducial.from_config(yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"])


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in (*ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels())]


def test_a_diagonal_covariance_says_so_instead_of_an_empty_map(real):
    fig = correlation_figure(real("sn_pantheon_plus"))
    assert not any(isinstance(a, AxesImage) for ax in fig.axes for a in ax.get_images())
    assert any("diagonal covariance" in t and "1590 independent points" in t for t in _texts(fig))


def test_a_correlation_map_is_labelled_by_type_and_redshift(real):
    fig = correlation_figure(real("bao_desi_dr1"))
    assert fig.axes[0].get_images()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[:3] == ["DV_over_rd z=0.295", "DM_over_rd z=0.51", "DH_over_rd z=0.51"]


def test_pulls_are_data_minus_fiducial_over_sigma(real):
    ds = real("cc_moresco")
    model = _fiducial_values(ds, FIDUCIAL)
    np.testing.assert_allclose(model, FIDUCIAL.H(ds.z), rtol=1e-12)
    fig = observable_figure(ds, FIDUCIAL)
    pull_line = [ln for ax in fig.axes if ax.get_ylabel() == "pull [σ]" for ln in ax.get_lines() if ln.get_marker() == "o"]
    np.testing.assert_allclose(pull_line[0].get_ydata(), (ds.observable - FIDUCIAL.H(ds.z)) / ds.uncertainty, rtol=1e-12)


def test_an_offset_free_magnitude_is_drawn_with_its_best_offset(real):
    ds = real("sn_des5yr")
    model = _fiducial_values(ds, FIDUCIAL)
    w = 1 / ds.uncertainty**2
    assert np.sum(w * (ds.observable - model)) == pytest.approx(0, abs=1e-6 * np.sum(w))


def test_a_likelihood_table_is_drawn_as_itself(real):
    fig = observable_figure(real("bao_sdss_mgs"), FIDUCIAL)
    ax = fig.axes[0]
    curve = ax.get_lines()[0]
    assert min(curve.get_ydata()) == pytest.approx(0, abs=1e-12)  # Delta chi2 of the published curve
    x_min = curve.get_xdata()[int(np.argmin(curve.get_ydata()))]
    assert x_min == pytest.approx(4.4669, abs=1e-3)  # SOURCES.md: minimum at alpha = 1.0395


def test_a_two_dimensional_grid_is_drawn_as_contours(tmp_path):
    from test_layouts import REGISTRY, _entry, _lya_grid, _validated

    raw = tmp_path / "raw"
    (raw / "bao_lya_toy").mkdir(parents=True)
    _lya_grid(raw / "bao_lya_toy")
    entry = _entry(REGISTRY["bao_desi_dr1"], {"table": {"path": "bao_lya_toy/lya_grid.txt"}},
                   {"observables": ["DM_over_rd", "DH_over_rd"], "z_eff": 2.334, "values": "likelihood"})
    entry["format"] = "likelihood_table"
    fig = observable_figure(_validated("bao_lya_toy", entry, raw, tmp_path), FIDUCIAL)
    contours = [c for c in fig.axes[0].get_children() if isinstance(c, QuadContourSet)]
    assert len(contours) == 2 and list(contours[0].levels) == [2.30, 6.18, 11.83]


def test_a_combination_is_drawn_per_type_with_each_members_offset(real):
    """A combination has no layout of its own: one panel per observable type, members' axis text, and each SN
    member's free magnitude offset set to its own best value (independent of the other members)."""
    from pbuf_data.combine import combine

    sn, cc = real("sn_pantheon"), real("cc_moresco")
    joint = combine("sn_cc", [sn, cc])
    model = _fiducial_values(joint, FIDUCIAL)
    np.testing.assert_allclose(model[len(sn):], FIDUCIAL.H(cc.z), rtol=1e-12)
    own = _fiducial_values(sn, FIDUCIAL)
    np.testing.assert_allclose(model[: len(sn)], own, rtol=1e-12)  # the same offset as the member alone
    fig = observable_figure(joint, FIDUCIAL)
    labels = {ax.get_ylabel() for ax in fig.axes}
    assert len(fig.axes) == 2 * len(set(joint.observable_type.tolist())) and "pull [σ]" in labels
    assert not labels & set(joint.observable_type.tolist())  # every panel has its layout's axis text, not the type
