"""Header and CSV options of the table readers: a chi2(alpha) profile picked by column name (DES Y3), SNANA
VARNAMES/SN tables."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.read.derive import derive_dataset

from test_cobaya import COSMOLOGIES, FlatLCDM
from test_matrix_forms import validate_registry

DM_FID = 1616.9 * 1.835 / 147.6  # the CosmoSIS module's fiducial (D_M/r_d)(0.835)


def test_des_y3_profile_reference_values(real):
    ds = real("bao_des_y3")
    x, lnl = ds.aux["table.DM_over_rd"], ds.aux["table.lnL"]
    assert x.size == 4001 and ds.observable_type.tolist() == ["DM_over_rd"] and ds.z.tolist() == [0.835]
    assert (x[0] / DM_FID, -2 * lnl[0]) == (pytest.approx(0.8, rel=1e-15), 115.0970992021177)
    assert (x[-1] / DM_FID, -2 * lnl[-1]) == (pytest.approx(1.199999999999956, rel=1e-15), 133.56750041894193)
    best = int(np.argmax(lnl))
    assert x[best] / DM_FID == pytest.approx(0.9409, abs=1e-9) and -2 * lnl[best] == pytest.approx(93.7507, abs=5e-5)
    assert x[best] == pytest.approx(18.914, abs=5e-4)
    inside = x[-2 * lnl <= -2 * lnl[best] + 1] / DM_FID
    assert (round(inside.min(), 4), round(inside.max(), 4)) == (0.9151, 0.9663)


@pytest.mark.parametrize("column,alpha,chi2", [("ACF", 0.9372, 95.241), ("APS", 0.9423, 92.257)])
def test_des_y3_other_method_columns_by_name(registry, raw_dir, column, alpha, chi2):
    entry = copy.deepcopy(registry["bao_des_y3"])
    entry["options"]["columns"]["value"] = column
    ds = derive_dataset("bao_des_y3", entry, raw_dir)
    best = int(np.argmax(ds.aux["table.lnL"]))
    assert ds.aux["table.DM_over_rd"][best] / DM_FID == pytest.approx(alpha, abs=1e-9)
    assert -2 * ds.aux["table.lnL"][best] == pytest.approx(chi2, abs=5e-4)


def test_des_y3_chi2_equals_the_cosmosis_module(real, raw_dir):
    """CosmoSIS des-y3-bao, written here from its description: alpha = (D_M/r_s) / (1616.9 (1 + 0.835) / 147.6),
    chi2 of column 1 (ACF+APS) by linear interpolation in alpha, clipped at the ends. This dataset interpolates ln L
    by a cubic spline (Cobaya's prob_dist); on the 1e-4 grid the two agree to 1e-6."""
    data = np.loadtxt(raw_dir / "bao_des_y3" / "chi2profile_dvdesy3_cosmoplanck18_covcosmolike.csv", delimiter=",",
                      skiprows=1).T
    ds = real("bao_des_y3")
    for cosmo in COSMOLOGIES:
        model = FlatLCDM(**cosmo)
        dm_over_rd = model.comoving(0.835)[0] / model.rdrag()
        alpha = dm_over_rd / DM_FID
        assert 0.8 < alpha < 1.2
        theirs = np.interp(alpha, data[0], data[1], left=data[1][0], right=data[1][-1])
        assert ds.chi2(np.array([dm_over_rd])) == pytest.approx(theirs, rel=1e-6)


def test_a_value_column_the_header_does_not_name_is_refused(registry, raw_dir):
    entry = copy.deepcopy(registry["bao_des_y3"])
    entry["options"]["columns"]["value"] = "ACF+AP"
    with pytest.raises(PbufDataError, match=r"line 1.*options.columns.value: no column 'ACF\+AP'"):
        derive_dataset("bao_des_y3", entry, raw_dir)


def test_snana_varnames_table(tmp_path):
    """SNANA's keyed layout: VARNAMES names the columns, each SN: line is a row, other keyed lines are skipped."""
    folder = tmp_path / "raw" / "sn_snana"
    folder.mkdir(parents=True)
    rows = [(f"sn{i}", 0.1 + 0.1 * i, 38.0 + i, 0.1 + 0.01 * i) for i in range(5)]
    text = ["# SNANA FITRES", "NVAR: 5", "VARNAMES: CID zHD zHEL MU MUERR",
            *[f"SN: {c} {z!r} {z!r} {m!r} {e!r}" for c, z, m, e in rows], "DOCUMENTATION: none"]
    (folder / "hd.fitres").write_text("\n".join(text) + "\n")
    entry = {"kind": "sn", "format": "sn_table", "title": "toy", "citation": "toy",
             "files": {"table": {"path": "sn_snana/hd.fitres", "allow_unpinned": True}},
             "options": {"table": {"header": "varnames"}, "observable_type": "mu_offset_free",
                         "columns": {"observable": "MU", "uncertainty": "MUERR", "calibrator": None},
                         "carry_columns": [], "selection": {"z_min": 0.0}}}
    validate_registry({"datasets": {"sn_snana": entry}})
    ds = derive_dataset("sn_snana", entry, tmp_path / "raw")
    assert ds.columns["id"].tolist() == [r[0] for r in rows]
    np.testing.assert_array_equal(ds.observable, [r[2] for r in rows])
    np.testing.assert_array_equal(ds.uncertainty, [r[3] for r in rows])
    (folder / "hd.fitres").write_text("\n".join(t for t in text if not t.startswith("VARNAMES")) + "\n")
    with pytest.raises(PbufDataError, match="line 3.*an SN: row before the VARNAMES: line"):
        derive_dataset("sn_snana", entry, tmp_path / "raw")


def test_bao_mean_cov_z_label_value_order_and_bao_table_csv_with_header(tmp_path, registry):
    """The same DESI-like vector written 'z label value' and a 6dFGS-like table as a CSV with a header line."""
    folder = tmp_path / "raw" / "bao_order"
    folder.mkdir(parents=True)
    rows = [(0.51, "DM_over_rs", 13.62), (0.51, "DH_over_rs", 20.98), (0.706, "DM_over_rs", 16.85)]
    (folder / "mean.txt").write_text("# z quantity value\n" + "".join(f"{z} {q} {v}\n" for z, q, v in rows))
    cov = np.array([[0.0635, -0.0685, 0.0], [-0.0685, 0.373, 0.0], [0.0, 0.0, 0.102]])
    (folder / "cov.txt").write_text("\n".join(" ".join(map(repr, r)) for r in cov.tolist()) + "\n")
    entry = {"kind": "bao", "format": "bao_mean_cov", "title": "toy", "citation": "toy",
             "files": {"mean": {"path": "bao_order/mean.txt", "allow_unpinned": True},
                       "covariance": {"path": "bao_order/cov.txt", "allow_unpinned": True}},
             "options": {"columns": {"z": 1, "label": 2, "value": 3},
                         "labels": {"DM_over_rs": {"observable_type": "DM_over_rd"},
                                    "DH_over_rs": {"observable_type": "DH_over_rd"}}}}
    validate_registry({"datasets": {"bao_order": entry}})
    ds = derive_dataset("bao_order", entry, tmp_path / "raw")
    assert ds.observable.tolist() == [13.62, 20.98, 16.85] and ds.z.tolist() == [0.51, 0.51, 0.706]
    assert ds.observable_type.tolist() == ["DM_over_rd", "DH_over_rd", "DM_over_rd"]
    np.testing.assert_array_equal(ds.covariance, cov)

    (folder / "sixdf.csv").write_text("quantity,z,value,sigma\nrs_over_DV,0.106,0.336,0.015\n")
    table = copy.deepcopy(registry["bao_6dfgs"])
    table["files"] = {"table": {"path": "bao_order/sixdf.csv", "allow_unpinned": True}}
    table["options"]["table"] = {"delimiter": "comma", "header": "first_line"}
    table["options"]["columns"] = {"z": "z", "value": "value", "sigma": "sigma", "label": "quantity"}
    validate_registry({"datasets": {"bao_6dfgs": table}})
    six = derive_dataset("bao_6dfgs", table, tmp_path / "raw")
    assert six.observable[0] == pytest.approx(0.336 / 1.027369826, rel=1e-15) and six.z.tolist() == [0.106]


def test_rsd_table_as_a_csv_with_a_header(tmp_path):
    """An fσ8 table with an Omega_m column, written as a CSV with a header line."""
    folder = tmp_path / "raw" / "rsd_csv"
    folder.mkdir(parents=True)
    rows = [(0.067, 0.423, 0.055, 0.27), (0.17, 0.51, 0.06, 0.3), (0.22, 0.42, 0.07, 0.27), (0.35, 0.44, 0.05, 0.25)]
    (folder / "fs8.csv").write_text("z,fs8,sigma,omega_m\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    entry = {"kind": "rsd", "format": "rsd_fsigma8", "title": "toy", "citation": "toy",
             "files": {"table": {"path": "rsd_csv/fs8.csv", "allow_unpinned": True}},
             "options": {"table": {"delimiter": "comma", "header": "first_line"}, "omega_m_ref_column": 4}}
    validate_registry({"datasets": {"rsd_csv": entry}})
    ds = derive_dataset("rsd_csv", entry, tmp_path / "raw")
    assert ds.z.tolist() == [r[0] for r in rows] and ds.observable.tolist() == [r[1] for r in rows]
    assert ds.columns["omega_m_ref"].tolist() == [r[3] for r in rows]
    np.testing.assert_array_equal(ds.covariance, np.diag([r[2] ** 2 for r in rows]))
    (folder / "fs8.csv").write_text("z,fs8,sigma,omega_m\n0.067,0.423,0.055\n")
    with pytest.raises(PbufDataError, match="line 2.*expected 4 columns, found 3"):
        derive_dataset("rsd_csv", entry, tmp_path / "raw")


def test_a_2d_likelihood_grid_as_a_csv_with_named_columns(tmp_path):
    """A 2-D grid read by column names (CSV with a header, columns in another order than x y value) is the same
    likelihood as the plain 'x y value' grid of the same numbers."""
    folder = tmp_path / "raw" / "grid"
    folder.mkdir(parents=True)
    x, y = np.linspace(30.0, 45.0, 7), np.linspace(6.0, 11.0, 6)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    like = np.exp(-0.5 * (((xx - 37.0) / 2.0) ** 2 + ((yy - 8.5) / 0.7) ** 2))
    rows = list(zip(xx.ravel().tolist(), yy.ravel().tolist(), like.ravel().tolist()))
    (folder / "plain.txt").write_text("".join(f"{a!r} {b!r} {v!r}\n" for a, b, v in rows))
    (folder / "named.csv").write_text("L,DH,DM\n" + "".join(f"{v!r},{b!r},{a!r}\n" for a, b, v in rows))
    options = {"observables": ["DM_over_rd", "DH_over_rd"], "z_eff": 2.33, "values": "likelihood"}
    plain = {"kind": "bao", "format": "likelihood_table", "title": "toy", "citation": "toy",
             "files": {"table": {"path": "grid/plain.txt", "allow_unpinned": True}}, "options": dict(options)}
    named = copy.deepcopy(plain)
    named["files"]["table"]["path"] = "grid/named.csv"
    named["options"] |= {"table": {"delimiter": "comma", "header": "first_line"},
                         "columns": {"x": "DM", "y": "DH", "value": "L"}}
    validate_registry({"datasets": {"plain": plain, "named": named}})
    a, b = derive_dataset("plain", plain, tmp_path / "raw"), derive_dataset("named", named, tmp_path / "raw")
    theory = np.array([36.1, 8.9])
    assert b.loglike(theory) == a.loglike(theory) == pytest.approx(-0.5 * ((0.9 / 2.0) ** 2 + (0.4 / 0.7) ** 2), abs=2e-3)
