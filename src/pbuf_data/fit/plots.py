"""Figures of a derived dataset for the HTML report.

``observable_figure``: the figure the dataset's layout module names (``FIGURE``, :mod:`pbuf_data.read.formats`), with
its axis text (``AXIS_LABELS``) and fiducial prediction (``fiducial_prediction``): ``hubble``, a Hubble diagram,
residuals and pulls; ``panels``, the data against redshift with the fiducial flat LCDM of the configuration and
below each panel the pull (data - fiducial) / sigma, one panel pair per observable type; ``table``, the priors
with the fiducial and the pull. A likelihood published as a table or grid is drawn as itself: Delta chi2 against the
observable (1-D) or its 1, 2, 3 sigma contours (2-D), with the fiducial, its maximum-likelihood point and 68 % interval,
and the moment summary (the dataset's observable and covariance), named as such.
``correlation_figure``: the correlation matrix C_ij / sqrt(C_ii C_jj), axes labelled by observable type and z;
for a diagonal covariance a panel that says so instead of an empty map.

Layout: margins in inches, set before the figure is drawn (``_place``), not ``tight_layout``, which lays out
every tick label once more only to measure it (a third of a figure job). The text around the panels is known in
advance: axis labels, numeric tick labels a formatter keeps to a few characters, a title; where a label's length
depends on the data (the correlation map's point labels, the table's columns), it is measured from the font.
tests/test_plots.py checks on every figure of both corpora that no text leaves the figure or runs into a panel.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..model.cosmology import Fiducial
from ..model.dataset import Dataset
from ..read.formats import layout


# Room in inches around the panels of the observable figures: tick labels and an axis label on the left and
# below, the title above (TITLE_AT from the top edge); between stacked panels, a row of tick labels
MARGINS = {"left": 0.85, "right": 0.2, "top": 0.45, "bottom": 0.55}
TITLE_AT, TITLE_LINE = 0.12, 0.17


def _place(fig, *, gap: float = 0.0, **margins) -> None:
    """Fix the panels' grid: ``margins`` (inches, over MARGINS) around it and ``gap`` inches between rows,
    whatever the figure's size (matplotlib's ``hspace`` is a fraction of the mean panel height)."""
    m = MARGINS | margins
    width, height = fig.get_size_inches()
    rows = fig.axes[0].get_subplotspec().get_topmost_subplotspec().get_gridspec().nrows
    mean_panel = (height - m["top"] - m["bottom"] - (rows - 1) * gap) / rows
    fig.subplots_adjust(left=m["left"] / width, right=1 - m["right"] / width, bottom=m["bottom"] / height,
                        top=1 - m["top"] / height, hspace=gap / mean_panel)


def _text_inches(texts, size: float) -> float:
    """The widest of ``texts`` in inches at font ``size``, from the font's metrics (no figure is drawn)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(size=size)
    return max((text_to_path.get_text_width_height_descent(t, font, ismath=False)[0] for t in texts), default=0) / 72


def _subplots(*grid, figsize, **options):
    """A figure and its axes, as ``pyplot.subplots`` makes them, without pyplot's global figure registry:
    figures may be drawn in one process for many jobs (``pbuf_data.operate.job.run_here``, as tests call it), where
    pyplot's state would be shared between jobs. A figure not registered is freed with its last reference."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(*grid, **options)


# Delta chi2 of the 68.3, 95.4 and 99.7 % regions of two parameters
CONTOURS_2D = (2.30, 6.18, 11.83)


def _layout(dataset: Dataset):
    """The dataset's layout module: its figure, axis text and fiducial prediction (pbuf_data.read.formats); for a
    combination, :class:`_Combination`."""
    if dataset.metadata.get("kind") == "combination":
        return _Combination()
    return layout(dataset.metadata["format"])


class _Combination:
    """How a combination is drawn: a panel per observable type with the axis text its members' layouts give, and
    the fiducial per type, each member's free magnitude offset (SN m_b_corr, offset-free mu) at its best value."""

    FIGURE = "panels"

    def __init__(self):
        from ..read.formats import names

        self.AXIS_LABELS = {k: v for fmt in names() for k, v in layout(fmt).AXIS_LABELS.items()}  # the modules' name

    @staticmethod
    def fiducial_prediction(dataset: Dataset, fiducial: Fiducial) -> np.ndarray:
        from ..model.likelihood import OFFSET_FREE_TYPES
        from ..read.formats._common import best_offsets, predict_by_type

        return best_offsets(dataset, predict_by_type(dataset, fiducial), OFFSET_FREE_TYPES)


def _label(dataset: Dataset, otype: str) -> str:
    return _layout(dataset).AXIS_LABELS.get(otype, otype)


def _fiducial_values(dataset: Dataset, fiducial: Fiducial) -> np.ndarray:
    """The fiducial prediction of every point, as the dataset's layout makes it (free magnitude offsets at their best)."""
    return _layout(dataset).fiducial_prediction(dataset, fiducial)


def _model_curve(ax, fiducial: Fiducial, otype: str, z: np.ndarray, offset: float = 0.0):
    grid = np.linspace(max(0.0, z.min() * 0.8), z.max() * 1.1, 200) if z.max() > 0 else z
    grid = grid[grid > 0]
    if grid.size:
        ax.plot(grid, fiducial.predict(otype, grid) + offset, color="0.4", lw=1, label="fiducial flat ΛCDM")


def _pull_axis(ax, z, pull, **style):
    ax.axhline(0, color="0.4", lw=1)
    for level in (-2, 2):
        ax.axhline(level, color="0.8", lw=0.8, ls="--")
    ax.plot(z, pull, **style)
    ax.set_ylabel("pull [σ]")


# A supernova whose uncertainty exceeds this many times the median is de-weighted: drawn and named, but the axes
# are scaled to the bulk (a few points with sigma of hundreds of magnitudes would otherwise set them)
DEWEIGHTED_SIGMA = 5.0


def _bulk_limits(ax, values, sigma, bulk) -> tuple[float, float]:
    """Axis limits holding the error bars of the bulk, with a margin; set on ``ax``."""
    lo, hi = float(np.min(values[bulk] - sigma[bulk])), float(np.max(values[bulk] + sigma[bulk]))
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    return lo - pad, hi + pad


def _hubble(dataset: Dataset, fiducial: Fiducial):
    fig, (top, middle, bottom) = _subplots(3, 1, figsize=(7, 7.5), sharex=True, height_ratios=(2, 1, 1))
    otype = dataset.observable_type[0]
    model = _fiducial_values(dataset, fiducial)
    offset = float(np.median(model - fiducial.predict(otype, dataset.z)))  # a free magnitude offset's best value
    z, value, sigma = dataset.z, dataset.observable, dataset.uncertainty
    bulk = sigma <= DEWEIGHTED_SIGMA * np.median(sigma)
    few = ~bulk
    top.errorbar(z[bulk], value[bulk], sigma[bulk], fmt=".", ms=2, lw=0.5, alpha=0.6, label=dataset.name)
    _model_curve(top, fiducial, otype, z, offset)
    middle.errorbar(z[bulk], (value - model)[bulk], sigma[bulk], fmt=".", ms=2, lw=0.5, alpha=0.6)
    middle.axhline(0, color="0.4", lw=1)
    pull = (value - model) / sigma
    _pull_axis(bottom, z, pull, ls="", marker=".", ms=2, alpha=0.6)
    for ax, shown in ((top, value), (middle, value - model)):
        lo, hi = _bulk_limits(ax, shown, sigma, bulk)
        if few.any():  # at their value, kept inside the axes (a point beyond them sits on the edge)
            ax.plot(z[few], np.clip(shown[few], lo, hi), ls="", marker="x", ms=4, color="0.45",
                    label=f"{int(few.sum())} de-weighted (σ > {DEWEIGHTED_SIGMA:g}× median σ), error bars not drawn")
    top.set_ylabel(_label(dataset, otype))
    middle.set_ylabel("residual [mag]")
    bottom.set_xlabel("z")
    top.set_xscale("log")
    top.legend(loc="lower right")
    return fig


# The tallest observable figure, in inches: at PNG's 110 dpi (836 pixels) it is seen whole, with a margin, in the
# Snakemake report's viewer, which cuts a taller picture at the top and bottom, in a browser window of 1920 x 1080
# pixels (a page of about 1920 x 937) or 1400 x 1000 (about 1400 x 857, the picture shrunk to the width beside the
# menu). Only the panels of three or more observable types reach it.
MAX_HEIGHT = 7.6
PANELS_GAP, TYPES_GAP = 0.1, 0.45  # inches between a panel and its pulls, and between types (the pulls' tick labels)


def _panels(dataset: Dataset, fiducial: Fiducial):
    """Per observable type, the data and its pulls below it (sharing its z axis: tick labels under the pulls);
    the types one under the other, in at most MAX_HEIGHT inches."""
    types = sorted(set(dataset.observable_type.tolist()))
    n = len(types)
    height = min(3.4 * n + 0.8, MAX_HEIGHT)
    # the room between types is an empty row of its own, of `room` inches (height ratio `spacer`)
    cells = height - MARGINS["top"] - MARGINS["bottom"] - (3 * n - 2) * PANELS_GAP
    room = TYPES_GAP - 2 * PANELS_GAP
    spacer = 3 * n * room / (cells - (n - 1) * room) if n > 1 else 0
    ratios = [r for i in range(n) for r in ([2, 1, spacer] if i < n - 1 else [2, 1])]
    fig, grid = _subplots(len(ratios), 1, figsize=(7, height), squeeze=False, height_ratios=ratios)
    for i in range(n - 1):
        grid[3 * i + 2, 0].remove()
    axes = [(grid[3 * i, 0], grid[3 * i + 1, 0]) for i in range(n)]
    model = _fiducial_values(dataset, fiducial)
    for i, otype in enumerate(types):
        ax, pull = axes[i]
        ax.tick_params(labelbottom=False)
        sel = dataset.observable_type == otype
        z, value, sigma = dataset.z[sel], dataset.observable[sel], dataset.uncertainty[sel]
        ax.errorbar(z, value, sigma, fmt="o", ms=4, capsize=2, label=dataset.name)
        _model_curve(ax, fiducial, otype, z)
        ax.set_ylabel(_label(dataset, otype))
        ax.legend(fontsize=8)
        _pull_axis(pull, z, (value - model[sel]) / sigma, ls="", marker="o", ms=4)
        pull.set_xlim(ax.get_xlim())
    axes[-1][1].set_xlabel("z")
    return fig


def _table(dataset: Dataset, fiducial: Fiducial):
    fig, ax = _subplots(figsize=(max(7.5, 4.6 + 0.5 * len(dataset)), 0.6 + 0.45 * len(dataset)))
    ax.axis("off")
    corr = dataset.covariance / np.outer(dataset.uncertainty, dataset.uncertainty)
    model = _fiducial_values(dataset, fiducial)
    rows = [
        [t, f"{v:.6g}", f"{s:.4g}", f"{m:.6g}", f"{(v - m) / s:+.2f}", " ".join(f"{c:+.3f}" for c in corr[i])]
        for i, (t, v, s, m) in enumerate(zip(dataset.observable_type, dataset.observable, dataset.uncertainty, model))
    ]
    table = ax.table(cellText=rows, colLabels=["parameter", "mean", "σ", "fiducial", "pull [σ]", "correlations"],
                     loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(range(len(rows[0])))  # each column as wide as its widest cell
    table.scale(1, 1.4)
    return fig


def _likelihood(dataset: Dataset, fiducial: Fiducial):
    """The published likelihood: Delta chi2 curve (1-D) or contours (2-D), the fiducial, the maximum-likelihood point
    with its 68 % interval and the moment summary."""
    lik = dataset.likelihood()
    axes, lnl = lik.table
    truth = _fiducial_values(dataset, fiducial)
    types = dataset.observable_type.tolist()
    meta = dataset.metadata.get("likelihood")
    meta = meta if isinstance(meta, dict) else {}
    best = [meta.get("maximum_likelihood", {}).get(t) for t in types]
    fig, ax = _subplots(figsize=(7, 4.6))
    if len(axes) == 1:
        (x,) = axes
        ax.plot(x, -2 * (lnl - lnl.max()), color="C0", label=f"published likelihood ({lik.form})")
        gauss = ((x - dataset.observable[0]) / dataset.uncertainty[0]) ** 2
        ax.plot(x, gauss, color="C1", ls="--", label=f"moment summary {dataset.observable[0]:.4g} ± "
                f"{dataset.uncertainty[0]:.3g} (not the quoted value)")
        if best[0] is not None:
            lo, hi = meta["interval_68"][types[0]]
            ax.axvline(best[0], color="C0", ls=":", label=f"maximum likelihood {best[0]:.4g}, 68 %: "
                       f"[{'–' if lo is None else f'{lo:.4g}'}, {'–' if hi is None else f'{hi:.4g}'}]")
            ax.axvspan(x[0] if lo is None else lo, x[-1] if hi is None else hi, color="C0", alpha=0.12)
        ax.axvline(truth[0], color="0.4", lw=1, label="fiducial flat ΛCDM")
        ax.set_ylim(0, 12)
        ax.set_xlabel(_label(dataset, types[0]) + f" at z = {dataset.z[0]:g}")
        ax.set_ylabel(r"$\Delta\chi^2 = -2\,\Delta\ln L$")
    else:
        x, y = axes
        delta = -2 * (lnl - lnl.max())
        ax.contour(x, y, delta.T, levels=CONTOURS_2D, colors="C0")
        inv = np.linalg.inv(dataset.covariance)
        xx, yy = np.meshgrid(x - dataset.observable[0], y - dataset.observable[1], indexing="ij")
        gauss = inv[0, 0] * xx**2 + 2 * inv[0, 1] * xx * yy + inv[1, 1] * yy**2
        ax.contour(x, y, gauss.T, levels=CONTOURS_2D, colors="C1", linestyles="--")
        ax.plot(*truth, marker="*", ms=12, color="0.3", ls="")
        ax.plot([], [], color="C0", label="published likelihood: 1, 2, 3 σ")
        if None not in best:
            ax.plot(*best, marker="+", ms=12, color="C0", ls="", label="maximum likelihood")
        ax.plot([], [], color="C1", ls="--", label="moment summary (mean, covariance; not the quoted value)")
        ax.plot([], [], marker="*", color="0.3", ls="", label="fiducial flat ΛCDM")
        ax.set_xlabel(_label(dataset, types[0]) + f" at z = {dataset.z[0]:g}")
        ax.set_ylabel(_label(dataset, types[1]))
    ax.legend(fontsize=8)
    return fig


def observable_figure(dataset: Dataset, fiducial: Fiducial):
    """The figure the dataset's layout names (``FIGURE``): a likelihood table or grid is drawn as itself."""
    figure = _layout(dataset).FIGURE
    if dataset.likelihood().form != "gaussian":
        figure = "likelihood"
    draw, layout = FIGURES[figure]
    fig = draw(dataset, fiducial)
    lines = _title(fig, dataset.metadata.get("title", dataset.name))
    _place(fig, **layout, top=MARGINS["top"] + TITLE_LINE * (lines - 1))
    return fig


# each figure and its layout (_place): stacked panels sharing their z axis have tick labels only below the last
FIGURES = {
    "hubble": (_hubble, {"gap": 0.2}),
    "panels": (_panels, {"gap": PANELS_GAP}),
    "table": (_table, {"left": 0.1, "right": 0.1, "bottom": 0.1}),
    "likelihood": (_likelihood, {}),
}


def _title(fig, text: str, size: float = 10) -> int:
    """The figure's title, at TITLE_AT from its top edge, in as many lines as it needs to fit its width (a
    dataset's title is free text); returns the number of lines."""
    import textwrap

    room, lines = fig.get_figwidth() - 0.3, [text]
    for n in range(2, len(text.split()) + 1):  # the fewest lines that fit, of about equal length
        if _text_inches(lines, size) <= room:
            break
        width = -(-len(text) // n)
        while len(lines := textwrap.wrap(text, width, break_long_words=False)) > n:
            width += 1
    fig.suptitle("\n".join(lines), fontsize=size, y=1 - TITLE_AT / fig.get_figheight())
    return len(lines)


def _point_labels(dataset: Dataset) -> list[str]:
    return [f"{t} z={z:g}" if np.isfinite(z) else str(t) for t, z in zip(dataset.observable_type, dataset.z)]


def correlation_figure(dataset: Dataset):
    n = len(dataset)
    if dataset.covariance_diagonal is not None:
        fig, ax = _subplots(figsize=(5.5, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{dataset.name}: diagonal covariance\n{n} independent point{'s' * (n != 1)}, no correlation map",
                ha="center", va="center", fontsize=11)
        return fig
    cov = dataset.covariance
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)
    fig, ax = _subplots(figsize=(6.5, 5.6))
    image = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="correlation")
    ax.set_title(f"{dataset.name}: correlation matrix ({n} points)", fontsize=10)
    if n <= 40:
        ticks, labels, size = np.arange(n), _point_labels(dataset), 6
    else:  # a few points, labelled by their redshift
        ticks = np.unique(np.linspace(0, n - 1, 9).round().astype(int))
        labels, size = [f"z={dataset.z[i]:.3g}" for i in ticks], 7
        ax.set_xlabel("points in the dataset's order")
    ax.set_xticks(ticks, labels, rotation=90, fontsize=size)
    ax.set_yticks(ticks, labels, fontsize=size)
    room = _text_inches(labels, size) + 0.2  # the labels, the ticks and their pads
    # below: the labels (turned upright) and the axis label; right: the colour bar's numbers and label
    _place(fig, left=room + 0.05, bottom=room + 0.3 * (n > 40) + 0.1, top=0.4, right=0.85)
    return fig


# zlib level 1, not Pillow's 6: a sixth less of a figure job's CPU time for files a tenth larger
PNG = {"dpi": 110, "format": "png", "pil_kwargs": {"compress_level": 1}}


def warm_up() -> None:
    """Draw, into memory, a small figure of the kinds of text and artist the figures use: matplotlib finds and
    loads their fonts and builds its mathtext parser once, at the first figure of a process. Called by the
    helper before it forks the first figure job (``pbuf_data.operate.helper.PRELOAD``), so that each job starts with them."""
    import io

    fig, ax = _subplots(figsize=(2, 2))
    ax.errorbar([1, 2], [1, 2], [0.1, 0.1], fmt="o", label="σ ΛCDM")
    ax.set_ylabel(r"$D_V/r_d$ [σ]")
    ax.set_xticks([1, 2], ["a", "b"], rotation=90, fontsize=6)
    ax.legend(fontsize=8)
    fig.colorbar(ax.imshow([[0, 1], [1, 0]], cmap="RdBu_r"), ax=ax, label="correlation")
    ax.table(cellText=[["1"]], loc="center").set_fontsize(9)
    fig.suptitle("title", fontsize=10)
    fig.savefig(io.BytesIO(), **PNG)


def save_figures(dataset: Dataset, fiducial_block: dict, observable_png, correlation_png) -> None:
    from ..core.atomic import atomic_path

    fiducial = Fiducial.from_config(fiducial_block)
    for fig, path in ((observable_figure(dataset, fiducial), observable_png), (correlation_figure(dataset), correlation_png)):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **PNG)
