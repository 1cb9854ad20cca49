"""Figures of a derived dataset for the HTML report.

``observable_figure``: the observable against redshift with error bars and
the fiducial flat LCDM of the configuration drawn for reference (SN: Hubble
diagram and residuals; BAO: one panel per observable type; CC: H(z); RSD:
f sigma8(z); CMB: a table of the priors). ``correlation_figure``: the
correlation matrix C_ij / sqrt(C_ii C_jj) as a heat map.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .cosmology import Fiducial  # noqa: E402
from .dataset import Dataset  # noqa: E402

LABELS = {
    "mu": r"$\mu$ [mag]",
    "m_b_corr": r"$m_{B,\rm corr}$ [mag]",
    "DM_over_rd": r"$D_M/r_d$",
    "DH_over_rd": r"$D_H/r_d$",
    "DV_over_rd": r"$D_V/r_d$",
    "rd_over_DV": r"$r_d/D_V$",
    "rs_EH98_over_DV": r"$r_s^{\rm EH98}/D_V$",
    "H_times_rd": r"$H\,r_d$ [km/s]",
    "H": r"$H(z)$ [km/s/Mpc]",
    "fsigma8": r"$f\sigma_8(z)$",
}


def _model_curve(ax, fiducial: Fiducial, otype: str, z: np.ndarray):
    grid = np.linspace(max(0.0, z.min() * 0.8), z.max() * 1.1, 200) if z.max() > 0 else z
    grid = grid[grid > 0]
    if grid.size:
        ax.plot(grid, fiducial.predict(otype, grid), color="0.4", lw=1, label="fiducial flat ΛCDM")


def _sn(dataset: Dataset, fiducial: Fiducial):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(2, 1))
    otype = dataset.observable_type[0]
    model = fiducial.predict(otype, dataset.z)
    top.errorbar(dataset.z, dataset.observable, dataset.uncertainty, fmt=".", ms=2, lw=0.5, alpha=0.6, label=dataset.name)
    _model_curve(top, fiducial, otype, dataset.z)
    bottom.errorbar(dataset.z, dataset.observable - model, dataset.uncertainty, fmt=".", ms=2, lw=0.5, alpha=0.6)
    bottom.axhline(0, color="0.4", lw=1)
    top.set_ylabel(LABELS[otype])
    bottom.set_ylabel("residual [mag]")
    bottom.set_xlabel("z")
    top.set_xscale("log")
    top.legend(loc="lower right")
    return fig


def _panels(dataset: Dataset, fiducial: Fiducial):
    types = sorted(set(dataset.observable_type.tolist()))
    fig, axes = plt.subplots(len(types), 1, figsize=(7, 2.6 * len(types) + 0.8), squeeze=False)
    for ax, otype in zip(axes[:, 0], types):
        sel = dataset.observable_type == otype
        ax.errorbar(dataset.z[sel], dataset.observable[sel], dataset.uncertainty[sel], fmt="o", ms=4, capsize=2, label=dataset.name)
        _model_curve(ax, fiducial, otype, dataset.z[sel])
        ax.set_ylabel(LABELS.get(otype, otype))
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("z")
    return fig


def _table(dataset: Dataset):
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.4 * len(dataset)))
    ax.axis("off")
    corr = dataset.covariance / np.outer(dataset.uncertainty, dataset.uncertainty)
    rows = [
        [t, f"{v:.6g}", f"{s:.4g}", " ".join(f"{c:+.3f}" for c in corr[i])]
        for i, (t, v, s) in enumerate(zip(dataset.observable_type, dataset.observable, dataset.uncertainty))
    ]
    table = ax.table(cellText=rows, colLabels=["parameter", "mean", "σ", "correlations"], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)
    return fig


def observable_figure(dataset: Dataset, fiducial: Fiducial):
    kind = dataset.metadata.get("kind")
    if kind == "cmb":
        fig = _table(dataset)
    elif kind == "sn":
        fig = _sn(dataset, fiducial)
    else:
        fig = _panels(dataset, fiducial)
    fig.suptitle(dataset.metadata.get("title", dataset.name), fontsize=10)
    fig.tight_layout()
    return fig


def correlation_figure(dataset: Dataset):
    sigma = np.sqrt(np.diag(dataset.covariance))
    corr = dataset.covariance / np.outer(sigma, sigma)
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    image = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="correlation")
    ax.set_title(f"{dataset.name}: correlation matrix ({len(dataset)} points)", fontsize=10)
    ax.set_xlabel("point index")
    ax.set_ylabel("point index")
    fig.tight_layout()
    return fig


def save_figures(dataset: Dataset, fiducial_block: dict, observable_png, correlation_png) -> None:
    from .atomic import atomic_path

    fiducial = Fiducial.from_config(fiducial_block)
    for fig, path in ((observable_figure(dataset, fiducial), observable_png), (correlation_figure(dataset), correlation_png)):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
