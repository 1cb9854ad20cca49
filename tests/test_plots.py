"""Report figures: what each shows, read back from the matplotlib objects."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.contour import QuadContourSet
from matplotlib.image import AxesImage
from matplotlib.table import Table
from matplotlib.transforms import Bbox

from pbuf_data.fit.plots import _fiducial_values, correlation_figure, observable_figure
from pbuf_data.model.cosmology import Fiducial
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import write_mock_file
from pbuf_data.read.registry import load_registry

from conftest import PROJECT

BLOCK = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
FIDUCIAL = Fiducial.from_config(BLOCK)
REAL = sorted(load_registry(PROJECT / "config" / "registry.yaml"))
MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")


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
    from pbuf_data.fit.combine import combine

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


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    """Derive an embedded mock dataset (cached per module)."""
    folder, cache = tmp_path_factory.mktemp("mock_raw"), {}

    def get(name):
        if name not in cache:
            entry = MOCKS[name]
            for role, spec in entry["files"].items():
                write_mock_file(entry, role, folder / spec["path"], BLOCK, entry["mock"]["seed"])
            cache[name] = derive_dataset(name, entry, raw_dir=folder)
        return cache[name]

    return get


def _overlap(a: Bbox, b: Bbox) -> float:
    """Area in pixels where two boxes overlap."""
    cut = Bbox.intersection(a, b)
    return 0.0 if cut is None else cut.width * cut.height


def _layout_problems(fig) -> list[str]:
    """What a reader would see wrong once the figure is drawn: text cut at the figure's edge, a panel's text (tick
    labels, axis labels, title, legend) running into another panel, the title over a panel, a table's text wider
    than its cell. Measured by matplotlib on the drawn figure, independently of how the figure was laid out."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    page, problems = fig.bbox, []
    drawn = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # inches -> pixels
    if not (drawn.x0 >= page.x0 - 0.5 and drawn.y0 >= page.y0 - 0.5 and drawn.x1 <= page.x1 + 0.5 and drawn.y1 <= page.y1 + 0.5):
        problems.append(f"text leaves the figure: drawn {drawn.bounds}, page {page.bounds}")
    boxes = [(ax, ax.get_tightbbox(renderer)) for ax in fig.axes]
    for i, (ax, box) in enumerate(boxes):
        for j, other in enumerate(fig.axes):
            if i != j and _overlap(box, other.get_window_extent(renderer)) > 1:
                problems.append(f"the text of panel {i} ({ax.get_ylabel()!r}) runs into panel {j} ({other.get_ylabel()!r})")
    if fig._suptitle is not None:
        title = fig._suptitle.get_window_extent(renderer)
        problems += [f"the title runs into panel {i}" for i, (_, box) in enumerate(boxes) if _overlap(title, box) > 1]
    for table in fig.findobj(Table):
        for (row, col), cell in table.get_celld().items():
            text, frame = cell.get_text().get_window_extent(renderer), cell.get_window_extent(renderer)
            if text.x0 < frame.x0 or text.x1 > frame.x1:
                problems.append(f"table cell {row},{col} ({cell.get_text().get_text()!r}) is wider than its column")
    return problems


@pytest.mark.parametrize("name", REAL + sorted(MOCKS))
def test_no_text_leaves_a_figure_or_runs_into_a_panel(name, real, mock):
    ds = mock(name) if name in MOCKS else real(name)
    for fig in (observable_figure(ds, FIDUCIAL), correlation_figure(ds)):
        assert _layout_problems(fig) == []


def test_a_hubble_diagram_is_scaled_to_the_bulk_and_names_its_de_weighted_points(real):
    """DES-SN5YR carries a few supernovae with sigma of up to hundreds of magnitudes: drawn and named, they do
    not set the axes, which hold every error bar of the others (sigma within 5x the median)."""
    ds = real("sn_des5yr")
    sigma, value = ds.uncertainty, ds.observable
    bulk = sigma <= 5 * np.median(sigma)
    assert 0 < (~bulk).sum() < 0.1 * len(ds) and sigma.max() > 100  # the file's own de-weighted points
    fig = observable_figure(ds, FIDUCIAL)
    top = fig.axes[0]
    low, high = top.get_ylim()
    assert low <= (value - sigma)[bulk].min() and high >= (value + sigma)[bulk].max()
    assert high - low < 1.2 * ((value + sigma)[bulk].max() - (value - sigma)[bulk].min())  # not stretched by the few
    marked = [ln for ln in top.get_lines() if ln.get_marker() == "x"]
    assert len(marked) == 1 and len(marked[0].get_xdata()) == (~bulk).sum()
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert f"{(~bulk).sum()} de-weighted (σ > 5× median σ), error bars not drawn" in legend
