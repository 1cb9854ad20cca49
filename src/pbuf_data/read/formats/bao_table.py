"""BAO as a table of ``z value sigma label`` rows, independent points (reader, checks, mock, figure).

The 6dFGS and SDSS MGS summaries are written so; the label of each row drives its observable type and
conversion (:mod:`._bao`), ``skip_labels`` leaves rows out (e.g. the same measurement in another form). A
chi2(alpha) table may be carried alongside (``files.chi2_table``, ``options.chi2_table``): as aux arrays, and as
the summary (minimum and Delta chi2 = 1 half-width) with ``summary: chi2_curve``.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import PbufDataError
from . import _bao, _mock
from ._common import Result, conversion, predict_by_type
from ._table import read_columns

KIND = "bao"
FIGURE = "panels"
AXIS_LABELS = _bao.AXIS_LABELS


def check_entry(name: str, entry: dict) -> None:
    files, options = entry["files"], entry["options"]
    if ("chi2_table" in files) != ("chi2_table" in options):
        raise PbufDataError("files.chi2_table and options.chi2_table go together", dataset=name, check="registry")
    if options.get("summary") == "chi2_curve" and "chi2_table" not in files:
        raise PbufDataError("summary 'chi2_curve' needs files.chi2_table", dataset=name, check="registry")


def derive(options, files) -> Result:
    table = files["table"]
    numbers, cols = read_columns(table, options["table"], options["columns"], text_roles=("label",))
    keep = _bao.label_rows(table, cols["label"], numbers, options["columns"]["label"], options,
                           skip=set(options["skip_labels"]))
    bad = keep[cols["sigma"][keep] <= 0]
    if bad.size:
        raise table.error(f"uncertainty {cols['sigma'][bad[0]]} is not positive", line=numbers[bad[0]],
                          column=options["columns"]["sigma"], check="positive uncertainty")
    z, values, sigma = cols["z"][keep], cols["value"][keep], cols["sigma"][keep]
    labels = [cols["label"][i] for i in keep]
    metadata = {
        "covariance": {"source": "diagonal: independent published measurements"},
        "skipped_labels": sorted(set(cols["label"]) & set(options["skip_labels"])),
    }
    metadata["sound_horizon"] = _bao.sound_horizon(table, options, labels)
    conversions = []
    aux = {}
    if "chi2_table" in files:
        aux, summary = _chi2_table(files["chi2_table"], options["chi2_table"])
        metadata["chi2_table"] = summary
        if options["summary"] == "chi2_curve":
            if len(keep) != 1 or options["labels"][labels[0]]["observable_type"] != "DV_over_rd":
                raise table.error("summary 'chi2_curve' needs exactly one DV_over_rd row", check="chi2 summary")
            values = np.array([summary["DV_over_rd_at_minimum"]])
            sigma = np.array([summary["half_width_delta_chi2_1"]])
            conversions.append(
                conversion(
                    "chi2_curve_summary",
                    "value = D_V/r_d at the chi2 minimum, sigma = half the width of the Delta chi2 <= 1 interval "
                    "(linear interpolation between grid points)",
                    "Ross et al. 2015, MNRAS 449, 835 (likelihood file sdss_MGS_prob.txt)",
                    **summary,
                )
            )
    if options["gaussian_approximation"]:
        metadata["likelihood"] = (
            "Gaussian approximation of a non-Gaussian published likelihood"
            + ("; the chi2 table is carried as aux arrays chi2_alpha, chi2_DV_over_rd, chi2" if aux else "")
        )
    types, factors, covariance, more = _bao.convert(labels, options, np.diag(sigma**2))
    return Result(
        z=z,
        observable=factors * values,
        uncertainty=factors * sigma,  # the published sigma scaled exactly (factors are positive)
        covariance=covariance,
        observable_type=types,
        units={t: _bao.UNITS[t] for t in sorted(set(types))},
        metadata=metadata,
        conversions=conversions + more,
        columns={"label": np.array(labels, dtype=np.str_)},
        aux=aux,
    )


def _chi2_table(raw, spec):
    """chi2(alpha) on an implicit grid alpha = linspace(alpha_min, alpha_max, N); D_V/r_d = alpha * fid."""
    lines = raw.lines()
    chi2 = np.empty(len(lines))
    for i, ln in enumerate(lines):
        if len(ln.fields) != 1:
            raise raw.error(f"expected 1 column, found {len(ln.fields)}", line=ln.number, check="column count")
        chi2[i] = raw.number(ln.fields[0], ln.number, 1)
    if chi2.size < 3:
        raise raw.error("a chi2 table needs at least 3 values", check="chi2 table")
    if (chi2 < 0).any():
        i = int(np.flatnonzero(chi2 < 0)[0])
        raise raw.error(f"negative chi2 {chi2[i]}", line=lines[i].number, check="chi2 >= 0")
    alpha = np.linspace(spec["alpha_min"], spec["alpha_max"], chi2.size)
    dv = alpha * spec["DV_over_rd_fid"]
    k = int(np.argmin(chi2))
    delta = chi2 - chi2[k]

    def crossing(indices):
        for j in indices:
            if delta[j] >= 1.0:
                prev = j + 1 if indices.step == -1 else j - 1
                return float(np.interp(1.0, [delta[prev], delta[j]], [dv[prev], dv[j]]))
        raise raw.error("the chi2 table never rises 1 above its minimum on this side", check="chi2 table")

    low = crossing(range(k - 1, -1, -1))
    high = crossing(range(k + 1, chi2.size))
    summary = {
        "n_values": int(chi2.size),
        "alpha_at_minimum": float(alpha[k]),
        "DV_over_rd_at_minimum": float(dv[k]),
        "chi2_minimum": float(chi2[k]),
        "delta_chi2_1_interval": [low, high],
        "half_width_delta_chi2_1": (high - low) / 2,
    }
    return {"chi2_alpha": alpha, "chi2_DV_over_rd": dv, "chi2": chi2}, summary


def fiducial_prediction(dataset, fiducial) -> np.ndarray:
    return predict_by_type(dataset, fiducial)


# -- mock: 6dFGS (r_d / D_V) and SDSS MGS (D_V / r_d with a chi2(alpha) table) ----------------------------------------------------------

SIXDF_Z, SIXDF_SIGMA = 0.106, 0.015  # Beutler et al. 2011: r_s/D_V(0.106) = 0.336 +- 0.015
MGS_Z, MGS_RELATIVE_ERROR = 0.15, 25.0 / 664.0  # Ross et al. 2015: D_V(0.15) = 664 +- 25 (r_d/148.69) Mpc
MGS_SKEWNESS = 0.02  # chi2 = x^2 (1 + 0.02 x), x = (alpha - alpha_obs) / sigma_alpha: mildly non-Gaussian


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str]:
    if "chi2_table" in entry["files"]:
        return _mgs_like(entry, fid, rng)
    if set(entry["options"]["labels"]) == {"rs_over_DV"}:
        return _sixdf_like(entry["options"]["labels"]["rs_over_DV"], fid, rng)
    raise PbufDataError(f"no mock layout for BAO table labels {sorted(entry['options']['labels'])}", check="mock")


def _sixdf_like(spec: dict, fid, rng) -> dict[str, str]:
    """One measurement in two forms: r_s/D_V (used) and D_V in Mpc (skipped), like Beutler et al. 2011.

    r_s is written in the convention the registry label converts from (EH98: EH98_TO_CAMB r_d)."""
    truth = _bao.file_value(fid, spec, SIXDF_Z, None)
    value = truth + SIXDF_SIGMA * rng.standard_normal()
    rs = truth * float(fid.DV(SIXDF_Z))
    dv = rs / value
    lines = [
        _mock.banner("6dFGS-format BAO table", fid),
        "# Layout of the transcribed Beutler et al. 2011 (MNRAS 416, 3017) table. Single measurement at z_eff = 0.106;",
        "# the two rows are the SAME measurement in two forms (do not use both): rs_over_DV = r_s/D_V with",
        f"# r_s = {rs:.2f} Mpc = {rs / fid.r_d:.10g} x the fiducial r_d (EH98 convention: {_bao.EH98_TO_CAMB}), DV_Mpc = D_V in Mpc.",
        "# columns: z  value  sigma  quantity",
        f"{SIXDF_Z} {value:.4f} {SIXDF_SIGMA} rs_over_DV",
        f"{SIXDF_Z} {dv:.1f} {dv * SIXDF_SIGMA / value:.1f} DV_Mpc",
    ]
    return {"table": _mock.lines(lines)}


def _mgs_like(entry: dict, fid, rng) -> dict[str, str]:
    """Gaussian summary row and chi2(alpha) on alpha = linspace(alpha_min, alpha_max, 399), minimum 0."""
    spec = entry["options"]["chi2_table"]
    truth = float(fid.DV_over_rd(MGS_Z))
    sigma = MGS_RELATIVE_ERROR * truth
    value = truth + sigma * rng.standard_normal()
    alpha = np.linspace(spec["alpha_min"], spec["alpha_max"], 399)
    x = (alpha - value / spec["DV_over_rd_fid"]) / (sigma / spec["DV_over_rd_fid"])
    chi2 = x**2 * (1.0 + MGS_SKEWNESS * x)
    chi2 -= chi2.min()
    chi2_lines = [f" {v:.12g}" for v in chi2.tolist()]
    chi2_lines[-1] += " "
    table = [
        _mock.banner("SDSS MGS-format BAO summary", fid),
        "# Layout of the transcribed Ross et al. 2015 (MNRAS 449, 835) Gaussian summary. The chi2(alpha) table",
        "# beside it holds 399 values of chi2 on alpha = linspace(alpha_min, alpha_max, 399) of the registry,",
        f"#   alpha = (D_V/r_d) / {spec['DV_over_rd_fid']}, minimum at the value below.",
        "# columns: z  value  sigma  quantity",
        f"{MGS_Z} {value:.9f} {sigma:.10f} DV_over_rs",
    ]
    return {"table": _mock.lines(table), "chi2_table": _mock.lines(chi2_lines)}
