"""CMB priors, cosmic chronometers and fsigma8 against SOURCES.md and independent computations."""

import re
import shutil

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.read.derive import derive_dataset


def test_planck_priors_from_inverse_covariance(real, raw_dir):
    cmb = real("cmb_planck2018")
    assert cmb.observable_type.tolist() == ["R", "l_A", "omega_b_h2"]
    np.testing.assert_array_equal(cmb.observable, [1.750235, 301.4707, 0.02235976])
    np.testing.assert_allclose(cmb.uncertainty, [0.004621, 0.08886, 0.0001491], rtol=2e-4)
    corr = cmb.covariance / np.outer(cmb.uncertainty, cmb.uncertainty)
    np.testing.assert_allclose([corr[0, 1], corr[0, 2], corr[1, 2]], [0.4634, -0.6598, -0.3273], atol=5e-5)
    invcov = np.loadtxt(raw_dir / "cmb_planck2018" / "chen2019_planck2018_lcdm_invcov_TRANSCRIBED.txt")
    np.testing.assert_allclose(cmb.covariance @ invcov, np.eye(3), atol=1e-9)


def test_planck_priors_from_table_correlation_agree(registry, raw_dir):
    entry = registry["cmb_planck2018"]
    table = derive_dataset("cmb", {**entry, "options": {**entry["options"], "covariance_from": "correlation"}}, raw_dir)
    np.testing.assert_allclose(table.uncertainty, [0.0046, 0.090, 0.00015])
    inverse = derive_dataset("cmb", entry, raw_dir)
    # the two published forms agree to the rounding of Table 1 (a few per cent)
    np.testing.assert_allclose(table.uncertainty, inverse.uncertainty, rtol=0.02)
    with_ns = {**entry, "expected_points": 4, "options": {**entry["options"], "covariance_from": "correlation", "parameters": ["R", "l_A", "omega_b_h2", "n_s"]}}
    four = derive_dataset("cmb", with_ns, raw_dir)
    assert four.covariance[0, 3] / (0.0046 * 0.0043) == pytest.approx(-0.74)


def test_cosmic_chronometers_moresco_covariance(real, raw_dir):
    cc = real("cc_moresco")
    table = np.loadtxt(raw_dir / "cc_moresco" / "HzTable_MM_BC32.txt")
    assert len(cc) == 32
    assert (cc.z[0], cc.observable[0], cc.columns["sigma_published"][0]) == (0.07, 69.0, 19.6)
    assert (cc.z[-1], cc.observable[-1]) == (1.965, 186.5)
    assert cc.covariance[0, 0] == pytest.approx(431.022, abs=5e-4)
    assert cc.covariance[0, 1] == pytest.approx(42.7148, abs=5e-4)
    assert cc.covariance[31, 31] == pytest.approx(2559.345, abs=5e-3)
    assert np.linalg.eigvalsh(cc.covariance).min() == pytest.approx(18.2, abs=0.05)
    # independent construction with numpy from the raw files
    syst = np.loadtxt(raw_dir / "cc_moresco" / "data_MM20.dat")
    z, h, s = table.T
    expected = np.diag(s**2)
    for col in (1, 4):  # IMF, mod_ooo
        x = h * np.interp(z, syst[:, 0], syst[:, col]) / 100
        expected += np.outer(x, x)
    np.testing.assert_allclose(cc.covariance, expected, rtol=1e-13)


def test_cosmic_chronometers_as_a_csv_with_named_columns_by_entry_alone(registry, raw_dir, tmp_path):
    """The CC table in the generic table vocabulary: a CSV with a header of other names, columns reordered."""
    entry = registry["cc_moresco"]
    rows = [line.split() for line in (raw_dir / "cc_moresco" / "HzTable_MM_BC32.txt").read_text().splitlines() if line.strip()]
    (tmp_path / "cc_csv").mkdir()
    (tmp_path / "cc_csv" / "hz.csv").write_text("err_H,redshift,H_kms\r\n" + "\r\n".join(f"{s}, {z},{h}" for z, h, s in rows))
    shutil.copy(raw_dir / "cc_moresco" / "data_MM20.dat", tmp_path / "cc_csv" / "data_MM20.dat")
    csv = {**entry, "files": {"table": {"path": "cc_csv/hz.csv", "allow_unpinned": True},
                              "systematics": {"path": "cc_csv/data_MM20.dat", "allow_unpinned": True}},
           "options": {**entry["options"], "table": {"delimiter": "comma", "header": "first_line", "header_extra_names": 0},
                       "columns": {"z": "redshift", "value": "H_kms", "sigma": "err_H"}}}
    mine, published = derive_dataset("cc_csv", csv, tmp_path), derive_dataset("cc", entry, raw_dir)
    np.testing.assert_array_equal(mine.z, np.array([float(r[0]) for r in rows]))
    for key in ("z", "observable", "uncertainty", "covariance"):
        np.testing.assert_array_equal(getattr(mine, key), getattr(published, key))
    wrong = {**csv, "options": {**csv["options"], "columns": {"z": "redshift", "value": "H", "sigma": "err_H"}}}
    with pytest.raises(PbufDataError, match=r"cc_csv/hz.csv', line 1.*options.columns.value: no column 'H'"):
        derive_dataset("cc_csv", wrong, tmp_path)


def test_cosmic_chronometers_recipe_selectable(registry, raw_dir):
    entry = registry["cc_moresco"]
    diag = derive_dataset("cc", {**entry, "options": {**entry["options"], "systematics": []}}, raw_dir)
    np.testing.assert_array_equal(diag.covariance, np.diag(diag.columns["sigma_published"] ** 2))
    conservative = derive_dataset("cc", {**entry, "options": {**entry["options"], "systematics": ["IMF", "mod"]}}, raw_dir)
    default = derive_dataset("cc", entry, raw_dir)
    assert conservative.covariance[0, 0] > default.covariance[0, 0]


def test_fsigma8_blocks_and_omega_m_ref(real, raw_dir):
    rsd = real("rsd_fsigma8")
    assert len(rsd) == 22
    assert (rsd.z[0], rsd.observable[0], rsd.uncertainty[0]) == (0.02, 0.428, 0.0465)
    assert (rsd.z[-1], rsd.observable[-1], rsd.uncertainty[-1]) == (1.944, 0.364, 0.106)
    np.testing.assert_allclose(np.diag(rsd.covariance)[12:15], [0.0064, 0.003969, 0.005184])
    assert rsd.covariance[12, 13] == 0.00257 and rsd.covariance[13, 14] == 0.00254 and rsd.covariance[12, 14] == 0
    np.testing.assert_allclose(np.diag(rsd.covariance)[18:22], [0.030976, 0.009801, 0.0049, 0.011236])
    assert rsd.covariance[18, 19] == pytest.approx(0.0089176032)
    # outside the blocks the points are independent
    mask = np.ones((22, 22), bool)
    mask[12:15, 12:15] = mask[18:22, 18:22] = False
    np.fill_diagonal(mask, False)
    assert not rsd.covariance[mask].any()
    # Omega_m,ref column read independently from the LaTeX table
    rows = [l for l in (raw_dir / "rsd_fsigma8" / "Table_with_the_data.txt").read_text().splitlines() if re.match(r"^\d", l)]
    np.testing.assert_array_equal(rsd.columns["omega_m_ref"], [float(r.split("&")[3]) for r in rows])
    assert rsd.columns["reference"][-1] == "Zhao:2018jxv"
