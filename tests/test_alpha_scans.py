"""BAO scans in dilation parameters (layouts ``bao_alpha_grid`` and ``bao_alpha_table``).

The training releases reproduce the reference values of their SOURCES.md; ln L equals the field's reader of each
release, written here from reading its code (MontePython's ``scan_util`` for the BOSS DR12 Lyman-alpha scans,
CosmoSIS's ``des-y3-bao`` for DES Y3, MontePython's ``bao_boss_aniso`` for a probability grid with zeros), away from
the grid nodes; bad input is an error naming the file, the line and the check. (Cobaya has no class for these
releases: its ``bao.generic`` reads grids of a likelihood in distances, with cubic splines of its ln.) The chi2 of
the shipped entries at three cosmologies, against the same readers, is in ``tests/test_labels.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import RectBivariateSpline

from pbuf_data.core.errors import PbufDataError
from pbuf_data.publish.validation import validate_dataset
from test_labels import C_KM_S, COSMOLOGIES
from test_layouts import REGISTRY, _entry, _validated

LYA = {"auto": "auto", "cross": "cross", "comb": "combined"}  # dataset suffix -> the scan file's name
C = 299792.458


# -- the training releases: SOURCES.md reference values ---------------------------------------------------


def _node_loglike(ds, ap, at):
    """ln L at the theory of the grid node (ap, at) of a DR12 scan (D_M/r_d = at 39.15, D_H/r_d = ap 8.612)."""
    return ds.loglike(np.array([at * 39.15, ap * 8.612]))


def test_boss_dr12_lya_scans_reproduce_their_reference_values(real):
    auto, combined = real("bao_boss_dr12_lya_auto"), real("bao_boss_dr12_lya_comb")
    assert auto.z.tolist() == [2.33, 2.33] and combined.z.tolist() == [2.40, 2.40]  # from the aux file's rows
    assert auto.observable_type.tolist() == ["DM_over_rd", "DH_over_rd"]
    assert _node_loglike(auto, 0.8, 0.7) == pytest.approx(-71.12231467 / 2, abs=1e-8)  # first row
    assert _node_loglike(combined, 0.8, 0.7) == pytest.approx(-128.86818701 / 2, abs=1e-8)
    assert _node_loglike(combined, 1.3, 1.5) == pytest.approx(-68.19365878 / 2, abs=1e-8)  # last row
    for ds, dh, dm, delta in ((auto, 9.0426, 38.367, 0.0717), (combined, 9.2818, 36.045, 0.1565)):
        lnl = ds.aux["grid.lnL"]
        i, j = np.unravel_index(np.argmax(lnl), lnl.shape)  # the minimum node of Delta chi2
        assert ds.aux["grid.DM_over_rd"][i] == pytest.approx(dm, abs=6e-4)
        assert ds.aux["grid.DH_over_rd"][j] == pytest.approx(dh, abs=6e-5)
        assert -2 * lnl[i, j] == pytest.approx(delta, abs=6e-5)
    assert combined.aux["grid.DM_over_rd"].size == 30 and combined.aux["grid.DH_over_rd"].size == 10
    assert auto.aux["grid.lnL"].shape == (21, 21)


def test_des_y3_reproduces_its_reference_values(real, registry, raw_dir, tmp_path):
    des = real("bao_des_y3")
    x, lnl = des.aux["table.DM_over_rd"], des.aux["table.lnL"]
    fid = 1616.9 * 1.835 / 147.6
    assert fid == pytest.approx(20.10170, abs=5e-6)
    assert x[0] / fid == pytest.approx(0.8, abs=1e-12) and x[-1] / fid == pytest.approx(1.2, abs=1e-12)
    assert -2 * lnl[0] == 115.0970992021177 and -2 * lnl[-1] == 133.56750041894193
    best = int(np.argmax(lnl))
    assert x[best] / fid == pytest.approx(0.9409, abs=1e-9) and -2 * lnl[best] == pytest.approx(93.7507, abs=1e-4)
    assert x[best] == pytest.approx(18.914, abs=5e-4)
    inside = x[-2 * (lnl - lnl[best]) <= 1] / fid
    assert inside[0] == pytest.approx(0.9151, abs=1.5e-4) and inside[-1] == pytest.approx(0.9663, abs=1.5e-4)
    # the Gaussian summary is the module's own MEAN 0.941, SIGMA 0.026 (to their digits)
    assert des.observable[0] / fid == pytest.approx(0.941, abs=1e-3)
    assert des.uncertainty[0] / fid == pytest.approx(0.026, abs=1e-3)
    # another method by its column name
    for column, minimum in (("ACF", 0.9372), ("APS", 0.9423)):
        entry = {**registry["bao_des_y3"], "options": {**registry["bao_des_y3"]["options"],
                                                       "columns": {"alpha": "alpha", "value": column}}}
        from pbuf_data.read.derive import derive_dataset

        other = derive_dataset("bao_des_y3", entry, raw_dir)
        grid = other.aux["table.lnL"]
        assert other.aux["table.DM_over_rd"][int(np.argmax(grid))] / fid == pytest.approx(minimum, abs=1e-9)


@pytest.mark.parametrize("name", [f"bao_boss_dr12_lya_{k}" for k in LYA] + ["bao_des_y3"])
def test_the_scans_validate_with_axes_in_distances(real, name):
    ds = real(name)
    report = validate_dataset(ds)
    assert report["n_errors"] == 0, [c for c in report["checks"] if c["verdict"] == "fail"]
    lik = ds.metadata["likelihood"]
    assert lik["spline_degree"] == 1 and lik["interpolated"] == "lnL"
    for obs_type in ds.observable_type:  # the axes are D/r_d (tens at z > 0.8), not alpha (about 1)
        key = f"grid.{obs_type}" if f"grid.{obs_type}" in ds.aux else f"table.{obs_type}"
        assert ds.aux[key].min() > 5
    assert [c["name"] for c in ds.provenance["conversions"]][0] == "alpha_to_distance"


# -- ln L equals the readers away from the nodes ----------------------------------------------------------


def _montepython_scan_util(path):
    """MontePython scan_util.chi2_interpolators on one scan: ap, at, Delta chi2 columns, bilinear in (at, ap)."""
    scan = np.loadtxt(path)
    ap, at = np.array(sorted(set(scan[:, 0]))), np.array(sorted(set(scan[:, 1])))
    grid = np.zeros((at.size, ap.size))
    for i, value in enumerate(ap):
        chunk = scan[scan[:, 0] == value]
        grid[:, i] = chunk[chunk[:, 1].argsort()][:, 2]
    return RectBivariateSpline(at, ap, grid, kx=1, ky=1)


@pytest.mark.parametrize("which", sorted(LYA))
def test_dr12_lya_loglike_is_montepythons_between_the_nodes(real, raw_dir, which):
    ds = real(f"bao_boss_dr12_lya_{which}")
    spline = _montepython_scan_util(raw_dir / "bao_boss_dr12_lya_scans" / f"BOSS_DR12_Lya_{LYA[which]}_scan.dat")
    rng = np.random.default_rng(12)
    for at, ap in zip(rng.uniform(0.7, 1.5, 40), rng.uniform(0.8, 1.3, 40)):
        theirs = -0.5 * float(spline(at, ap)[0, 0])
        assert ds.loglike(np.array([at * 39.15, ap * 8.612])) == pytest.approx(theirs, rel=1e-9, abs=1e-9)
    with pytest.raises(PbufDataError, match="outside the likelihood grid"):
        ds.loglike(np.array([1.6 * 39.15, 8.612]))  # the reader clamps to the edge; refused here


def test_des_y3_loglike_is_cosmosis_between_the_nodes(real, raw_dir):
    des = real("bao_des_y3")
    data = np.loadtxt(raw_dir / "bao_des_y3" / "chi2profile_dvdesy3_cosmoplanck18_covcosmolike.csv", delimiter=",",
                      skiprows=1).T
    fid = 1616.9 * 1.835 / 147.6
    for alpha in np.random.default_rng(3).uniform(0.8, 1.2, 60):
        theirs = -0.5 * np.interp(alpha, data[0], data[1])
        assert des.loglike(np.array([alpha * fid])) == pytest.approx(theirs, rel=1e-9, abs=1e-9)


# -- a probability grid in (alpha_perp, alpha_para) with zeros, D_A and H fiducials from a fiducial file -----

ANISO_Z = 0.57


def _aniso_files(raw):
    """In raw/aniso/, a bao_boss_aniso-like grid: alpha_perp slowest, probability with zeros in the tails; a .data
    fiducial file."""
    folder = raw / "aniso"
    folder.mkdir(parents=True)
    planck = COSMOLOGIES[0]
    da_fid = float(planck.DM(ANISO_Z)[0] / (1 + ANISO_Z) * 1.01)
    h_fid = float(planck.H(ANISO_Z) * 0.99)
    rs_fid = 149.28
    a = np.linspace(0.7, 1.3, 41)
    pp, pa = np.meshgrid(a, a, indexing="ij")
    u, v = (pp - 0.99) / 0.05, (pa - 1.01) / 0.06
    prob = 3.7 * np.exp(-(u**2 + v**2 - 0.8 * u * v) / 2)
    prob[prob < 1e-5] = 0.0
    rows = [f"{x:.4f} {y:.4f} {p:.6e}" for x, y, p in zip(pp.ravel(), pa.ravel(), prob.ravel())]
    (folder / "bao_aniso.dat").write_text("# alpha_perp alpha_para prob\n" + "\n".join(rows) + "\n")
    (folder / "bao_boss_aniso.data").write_text(
        f"# fiducials\nbao_boss_aniso.z = {ANISO_Z}\nbao_boss_aniso.Dafid = {da_fid!r}\n"
        f"bao_boss_aniso.Hfid = {h_fid!r}\nbao_boss_aniso.rsfid = {rs_fid!r}\n")
    return da_fid, h_fid, rs_fid, (prob == 0).sum()


def _aniso_entry(**options):
    perp = {"D_A_Mpc": "Dafid", "rs_fid_Mpc": "rsfid"}  # names of the .data file
    para = {"H_km_s_Mpc": "Hfid", "rs_fid_Mpc": "rsfid"}
    base = {"axes": [{"column": 1, "observable": "DA_over_rd", "fiducial": perp},
                     {"column": 2, "observable": "DH_over_rd", "fiducial": para}],
            "value_column": 3, "values": "probability", "z_eff": ANISO_Z,
            "interpolation": {"spline": "cubic", "of": "likelihood"}}
    entry = _entry(REGISTRY["bao_boss_dr12_lya_auto"], {"grid": {"path": "aniso/bao_aniso.dat"},
                                                        "fiducial": {"path": "aniso/bao_boss_aniso.data"}},
                   {**base, **options}, expected=2)
    entry["samples"] = ["boss_dr11_cmass"]
    return entry


def test_a_probability_grid_with_zeros_is_montepythons_bao_boss_aniso(tmp_path):
    raw = tmp_path / "raw"
    da_fid, h_fid, rs_fid, zeros = _aniso_files(raw)
    assert zeros > 100
    ds = _validated("bao_aniso_toy", _aniso_entry(), raw)
    assert ds.observable_type.tolist() == ["DA_over_rd", "DH_over_rd"]
    assert ds.aux["grid.likelihood"].max() == 1.0 and (ds.aux["grid.likelihood"] == 0).sum() == zeros
    # MontePython bao_boss_aniso: prob reshaped (alpha_perp slowest), over its max, bicubic spline, then ln
    prob = np.loadtxt(raw / "aniso" / "bao_aniso.dat")
    size = int(np.sqrt(len(prob)))
    x, y = prob[:, 0].reshape(size, size)[:, 0], prob[:, 1].reshape(size, size)[0, :]
    values = prob[:, 2].reshape(size, size)
    spline = RectBivariateSpline(x, y, values / values.max(), kx=3, ky=3, s=0)
    for cosmo in COSMOLOGIES:
        da_rd = cosmo.DM(ANISO_Z)[0] / (1 + ANISO_Z) / cosmo.r_d
        h = cosmo.H(ANISO_Z)
        alpha_perp = da_rd / (da_fid / rs_fid)
        alpha_para = (h_fid * rs_fid) / (h * cosmo.r_d)
        like = spline(alpha_perp, alpha_para)[0, 0]
        assert like > 0
        theory = np.array([da_rd, C_KM_S / h / cosmo.r_d])
        assert ds.loglike(theory) == pytest.approx(np.log(like), rel=1e-9, abs=1e-9)
    # a theory where the probability is zero: ln L = -inf (MontePython returns its boundary log-likelihood)
    far = np.array([0.72 * da_fid / rs_fid, C / (h_fid * rs_fid) * 0.72])
    assert ds.loglike(far) == -np.inf
    # the fiducial's D_A/r_d is its D_M / ((1 + z) r_d); the figure draws the grid with its zeros
    from pbuf_data.fit.plots import observable_figure
    from pbuf_data.read.formats import layout
    from test_plots import FIDUCIAL

    expected = [FIDUCIAL.predict("DM_over_rd", np.array([ANISO_Z]))[0] / (1 + ANISO_Z),
                FIDUCIAL.predict("DH_over_rd", np.array([ANISO_Z]))[0]]
    np.testing.assert_allclose(layout("bao_alpha_grid").fiducial_prediction(ds, FIDUCIAL), expected, rtol=1e-14)
    observable_figure(ds, FIDUCIAL)


def test_zeros_need_the_probability_interpolated(tmp_path):
    raw = tmp_path / "raw"
    _aniso_files(raw)
    with pytest.raises(PbufDataError, match=r"-inf.*interpolation.of: likelihood") as info:
        _validated("bao_aniso_toy", _aniso_entry(interpolation={"spline": "cubic", "of": "lnL"}), raw)
    assert "aniso/bao_aniso.dat" in str(info.value) and "line" in str(info.value)


# -- bad input: the file, the line, the check -------------------------------------------------------------


def _lya_copy(raw_dir, tmp_path, mutate=None, aux=None):
    raw = tmp_path / "raw"
    (raw / "lya").mkdir(parents=True)
    source = raw_dir / "bao_boss_dr12_lya_scans"
    lines = (source / "BOSS_DR12_Lya_auto_scan.dat").read_text().splitlines()
    (raw / "lya" / "scan.dat").write_text("\n".join(mutate(lines) if mutate else lines) + "\n")
    (raw / "lya" / "aux.txt").write_text(aux or (source / "BOSS_DR12_scan_aux.txt").read_text())
    files = {"grid": {"path": "lya/scan.dat"}, "aux": {"path": "lya/aux.txt"}}
    entry = _entry(REGISTRY["bao_boss_dr12_lya_auto"], files,
                   dict(REGISTRY["bao_boss_dr12_lya_auto"]["options"]), expected=2)
    return raw, entry


@pytest.mark.parametrize(
    "mutate, match",
    [(lambda ls: ls[:-1], r"not a full 21 x 21 grid: node \(column 2 = 1.5, column 1 = 1.3\) is missing"),
     (lambda ls: ls[:3] + [ls[2]] + ls[4:], r"given twice \(lines 3 and 4\)"),
     (lambda ls: ls[:9] + [ls[9].rsplit(" ", 1)[0] + " -1.0"] + ls[10:], "line 10.*negative delta_chi2"),
     (lambda ls: ls[:9] + [ls[9] + " 7"] + ls[10:], "line 10.*expected 3 columns"),
     (lambda ls: ls[:9] + ["-" + ls[9]] + ls[10:], r"line 10, column 1.*alpha -0.8 is not positive")],
)
def test_a_bad_scan_is_an_error_naming_file_and_line(raw_dir, tmp_path, mutate, match):
    raw, entry = _lya_copy(raw_dir, tmp_path, mutate)
    with pytest.raises(PbufDataError, match=match) as info:
        _validated("bao_lya_bad", entry, raw)
    assert "lya/scan.dat" in str(info.value)


def test_aux_types_and_redshift_are_checked_against_the_entry(raw_dir, tmp_path):
    raw, entry = _lya_copy(raw_dir, tmp_path, aux="# corr_type z type1 type2\ncf 2.33 5 6\n")
    with pytest.raises(PbufDataError, match=r"lya/aux.txt.*line 2.*type codes \[5, 6\]"):
        _validated("bao_lya_bad", entry, raw)
    raw, entry = _lya_copy(raw_dir, tmp_path / "z")
    entry["options"]["z_eff"] = 2.4
    with pytest.raises(PbufDataError, match=r"lya/aux.txt.*gives z = 2.33, options.z_eff = 2.4"):
        _validated("bao_lya_bad", entry, raw)


def test_an_entry_that_does_not_state_its_fiducial_or_redshift_is_refused(raw_dir, tmp_path):
    raw, entry = _lya_copy(raw_dir, tmp_path)
    entry["options"]["axes"][0]["fiducial"] = {"D_M_Mpc": 5800.0}  # no r_s,fid: refused, not assumed
    with pytest.raises(PbufDataError, match=r"D_M_Mpc needs rs_fid_Mpc"):
        _validated("bao_lya_bad", entry, raw)
    raw, entry = _lya_copy(raw_dir, tmp_path / "h")
    entry["options"]["axes"][0]["fiducial"] = {"H_km_s_Mpc": 230.0, "rs_fid_Mpc": 147.0}  # H for a D_M axis
    with pytest.raises(PbufDataError, match=r"DM_over_rd axis is \{value\} or one of \['D_M_Mpc', 'D_A_Mpc'\]"):
        _validated("bao_lya_bad", entry, raw)
    raw, entry = _lya_copy(raw_dir, tmp_path / "name")
    entry["options"]["axes"][0]["fiducial"] = {"value": "transverse_fid"}  # a name, but no fiducial file
    with pytest.raises(PbufDataError, match=r"no 'fiducial' role"):
        _validated("bao_lya_bad", entry, raw)


def test_a_method_column_the_header_does_not_name_is_an_error(registry, raw_dir, tmp_path):
    raw = tmp_path / "raw"
    (raw / "des").mkdir(parents=True)
    source = raw_dir / "bao_des_y3" / "chi2profile_dvdesy3_cosmoplanck18_covcosmolike.csv"
    (raw / "des" / "chi2.csv").write_bytes(source.read_bytes())
    options = {**registry["bao_des_y3"]["options"], "columns": {"alpha": "alpha", "value": "ACF+APX"}}
    entry = _entry(registry["bao_des_y3"], {"table": {"path": "des/chi2.csv"}}, options, expected=1)
    with pytest.raises(PbufDataError, match=r"des/chi2.csv.*line 1.*no column 'ACF\+APX'"):
        _validated("bao_des_bad", entry, raw)


def test_a_fiducial_that_is_not_positive_is_refused(raw_dir, tmp_path):
    raw, entry = _lya_copy(raw_dir, tmp_path)
    entry["options"]["axes"][1]["fiducial"] = {"value": -8.612}
    with pytest.raises(PbufDataError, match=r"fiducial.*-8.612"):
        _validated("bao_lya_bad", entry, raw)
    raw = tmp_path / "aniso_raw"
    _aniso_files(raw)
    data = raw / "aniso" / "bao_boss_aniso.data"
    data.write_text(data.read_text().replace("rsfid = 149.28", "rsfid = 0"))
    with pytest.raises(PbufDataError, match=r"bao_boss_aniso.data.*line 5.*fiducial 'rsfid' = 0.0 is not positive"):
        _validated("bao_aniso_toy", _aniso_entry(), raw)


def test_a_probability_that_is_zero_everywhere_is_refused(tmp_path):
    raw = tmp_path / "raw"
    _aniso_files(raw)
    grid = raw / "aniso" / "bao_aniso.dat"
    header, *rows = grid.read_text().splitlines()
    grid.write_text("\n".join([header, *[r.rsplit(" ", 1)[0] + " 0" for r in rows]]) + "\n")
    with pytest.raises(PbufDataError, match=r"aniso/bao_aniso.dat.*probability is zero on every row"):
        _validated("bao_aniso_toy", _aniso_entry(), raw)


def test_a_fiducial_file_missing_a_name_is_an_error(tmp_path):
    raw = tmp_path / "raw"
    _aniso_files(raw)
    entry = _aniso_entry()
    entry["options"]["axes"][1]["fiducial"]["H_km_s_Mpc"] = "H_fid"
    with pytest.raises(PbufDataError, match=r"aniso/bao_boss_aniso.data.*no fiducial named 'H_fid'"):
        _validated("bao_aniso_toy", entry, raw)


# -- the fiducial forms of the README, and the cubic option against Cobaya's own class -------------------


@pytest.mark.parametrize(
    "observable, spec, expected",
    [("DM_over_rd", {"value": 39.15}, 39.15),
     ("DM_over_rd", {"D_M_Mpc": 5800.0, "rs_fid_Mpc": 147.0}, 5800.0 / 147.0),
     ("DM_over_rd", {"D_A_Mpc": 1616.9, "rs_fid_Mpc": 147.6}, 1.835 * 1616.9 / 147.6),
     ("DA_over_rd", {"D_A_Mpc": 1616.9, "rs_fid_Mpc": 147.6}, 1616.9 / 147.6),
     ("DA_over_rd", {"D_M_Mpc": 5800.0, "rs_fid_Mpc": 147.0}, 5800.0 / 1.835 / 147.0),
     ("DV_over_rd", {"D_V_Mpc": 2100.0, "rs_fid_Mpc": 148.0}, 2100.0 / 148.0),
     ("DH_over_rd", {"H_km_s_Mpc": 96.8, "rs_fid_Mpc": 149.28}, 299792.458 / (96.8 * 149.28))],
)
def test_the_fiducial_forms_of_the_readme(observable, spec, expected):
    from pbuf_data.read.formats import _scan

    assert _scan.fiducial_problem(observable, spec) is None
    assert _scan.fiducial_value(observable, spec, 0.835, {}, "fiducial")[0] == pytest.approx(expected, rel=1e-15)


def test_a_cubic_alpha_table_is_cobayas_prob_dist(raw_dir, tmp_path):
    """The SDSS MGS chi2(alpha) values as an alpha table with spline cubic: Cobaya's sdss_dr7_mgs settings (its
    bao.generic prob_dist on the published file) give the same ln L."""
    from test_layouts import _cobaya_prob_dist

    raw = tmp_path / "raw"
    (raw / "mgs").mkdir(parents=True)
    published = raw_dir / "bao_sdss_mgs" / "sdss_MGS_prob.txt"
    chi2 = np.loadtxt(published)
    alpha = np.linspace(0.8005, 1.1985, chi2.size)
    rows = "".join(f"{a!r},{c!r}\n" for a, c in zip(alpha.tolist(), chi2.tolist()))
    (raw / "mgs" / "mgs.csv").write_text("alpha,chi2\n" + rows)
    fid = 4.29720761315  # cobaya sdss_dr7_mgs.yaml rs_rescale = D_V,fid / r_s,fid
    options = {"table": {"delimiter": "comma"}, "columns": {"alpha": "alpha", "value": "chi2"},
               "observable": "DV_over_rd", "fiducial": {"value": fid}, "z_eff": 0.15, "values": "chi2",
               "interpolation": {"spline": "cubic"}}
    entry = _entry(REGISTRY["bao_des_y3"], {"table": {"path": "mgs/mgs.csv"}}, options, expected=1)
    ds = _validated("bao_mgs_alpha", entry, raw)
    cobaya = _cobaya_prob_dist({"prob_dist": str(published), "prob_dist_bounds": [0.8005, 1.1985], "path": str(raw)})
    for value in (3.6, 4.3171, 4.4669, 4.62555, 5.1):
        assert ds.loglike(np.array([value])) == pytest.approx(float(cobaya.logpdf(np.array([value / fid]))),
                                                              rel=1e-9, abs=1e-9)
    with pytest.raises(PbufDataError, match="outside the likelihood grid"):
        ds.loglike(np.array([1.2 * fid]))
