"""Releases added by a registry entry alone, against the reference values of SOURCES.md."""

from __future__ import annotations

import numpy as np
import pytest


def test_boss_dr12_final_consensus_is_one_mixed_vector(real):
    ds = real("bao_boss_dr12_fs")
    assert ds.observable_type.tolist() == ["DM_over_rd", "H_times_rd", "fsigma8"] * 3
    np.testing.assert_allclose(ds.z, np.repeat([0.38, 0.51, 0.61], 3))
    assert ds.observable[0] == pytest.approx(1518.36 / 147.78, rel=1e-12)  # 10.27446
    assert ds.uncertainty[0] == pytest.approx(0.15132, abs=5e-6)
    assert ds.observable[1] == pytest.approx(81.5095 * 147.78, rel=1e-12)  # 12045.47 km/s
    assert ds.uncertainty[1] == pytest.approx(281.58, abs=5e-3)
    assert ds.observable[2] == 0.49749 and ds.uncertainty[2] == pytest.approx(0.045095, abs=5e-7)
    assert ds.observable[8] == 0.436148 and ds.uncertainty[8] == pytest.approx(0.034435, abs=5e-7)
    corr = ds.covariance / np.outer(ds.uncertainty, ds.uncertainty)
    assert corr[0, 1] == pytest.approx(0.2280, abs=5e-5)
    assert corr[1, 2] == pytest.approx(0.3249, abs=5e-5)
    assert np.count_nonzero(corr[:3, 3:]) > 0  # the redshift bins stay correlated: one covariance
    assert np.linalg.eigvalsh(ds.covariance).min() > 0


def test_pantheon_2018_lcparam_layout(real):
    """'#'-prefixed header naming 19 columns over rows of 18 fields; mb with M free; statistical errors only."""
    ds = real("sn_pantheon")
    assert len(ds) == 1048 and len(set(ds.columns["id"].tolist())) == 1048
    assert set(ds.observable_type.tolist()) == {"m_b_corr"} and ds.likelihood().marginalize_offset
    first = (ds.columns["id"][0], ds.z[0], ds.columns["zHEL"][0], ds.observable[0], ds.uncertainty[0])
    assert first == ("03D1au", 0.50349, 0.504299, 22.93445, 0.12605)
    assert (ds.columns["id"][-1], ds.z[-1], ds.columns["zHEL"][-1], ds.observable[-1], ds.uncertainty[-1]) == (
        "SCP06C0", 1.092, 1.093202, 24.63835, 0.26405)
    assert (ds.z.min(), ds.z.max(), ds.uncertainty.min(), ds.uncertainty.max()) == (0.01012, 2.26, 0.0854, 0.45085)
    np.testing.assert_array_equal(ds.covariance, np.diag(ds.uncertainty**2))
    assert "correlations are missing" in ds.metadata["covariance"]["warning"]


def test_des_sn5yr_csv_layout(real):
    ds = real("sn_des5yr")
    assert len(ds) == 1829 and len(set(ds.columns["id"].tolist())) == 1829
    assert set(ds.observable_type.tolist()) == {"mu_offset_free"} and ds.likelihood().marginalize_offset
    assert (ds.columns["id"][0], ds.columns["zCMB"][0], ds.z[0], ds.columns["zHEL"][0], ds.observable[0],
            ds.uncertainty[0]) == ("1246275", 0.24605, 0.24605, 0.24651, 40.5938, 0.0968)
    assert (ds.columns["id"][-1], ds.z[-1], ds.columns["zHEL"][-1], ds.observable[-1], ds.uncertainty[-1]) == (
        "iPTF17dz", 0.09293, 0.09200, 38.3430, 0.2873)
    assert (ds.z.min(), ds.z.max()) == (0.02509, 1.12132)
    assert set(ds.columns["IDSURVEY"].astype(int).tolist()) == {5, 10, 63, 64, 65, 66, 150}
    assert ds.uncertainty.max() == pytest.approx(449.6, abs=0.05)  # de-weighted SNe are data, not an error


def test_lcparam_with_a_covariance_takes_sigma_from_it(tmp_path, registry):
    """An lcparam file whose dmb is 0 (all uncertainty in the covariance), by registry entry alone."""
    import copy

    from pbuf_data.read.derive import derive_dataset

    rows = ["#name zcmb zhel dz mb dmb x1 dx1 color dcolor 3rdvar d3rdvar cov_m_s cov_m_c cov_s_c set ra dec biascor"]
    rng = np.random.default_rng(3)
    n = 5
    for i in range(n):
        rows.append(f"sn{i} {0.1 * (i + 1)} {0.1 * (i + 1) + 1e-4} 0 {20 + i} 0 0 0 0 0 0 0 0 0 0 0 0 0")
    a = rng.normal(size=(n, n)) * 0.05
    cov = a @ a.T + 0.01 * np.eye(n)
    folder = tmp_path / "raw" / "sn_toy"
    folder.mkdir(parents=True)
    (folder / "lcparam.txt").write_text("\n".join(rows) + "\n")
    (folder / "covmat.txt").write_text(f"{n}\n" + "\n".join(repr(float(v)) for v in cov.ravel()) + "\n")
    entry = copy.deepcopy(registry["sn_pantheon"])
    entry["expected_points"] = n
    entry["files"] = {"table": {"path": "sn_toy/lcparam.txt", "allow_unpinned": True},
                      "covariance": {"path": "sn_toy/covmat.txt", "allow_unpinned": True}}
    entry["options"]["covariance"] = {"layout": "counted", "gives": "covariance", "scale": 1}
    ds = derive_dataset("sn_toy", entry, tmp_path / "raw")
    np.testing.assert_allclose(ds.covariance, cov, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ds.uncertainty, np.sqrt(np.diag(cov)), rtol=1e-15)
    np.testing.assert_array_equal(ds.observable, 20 + np.arange(n))


def test_des_sn5yr_deweighted_points_warn_but_pass_validation(real):
    """SOURCES.md: MUERR_FINAL up to 449.6 mag de-weights unlikely SNe Ia; that is data (a warning), while an
    error bar beyond ten times the physical range (sigma = 1e150) is not a measurement (an error)."""
    from pbuf_data.publish.validation import validate_dataset

    report = validate_dataset(real("sn_des5yr"), expected_points=1829)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["verdict"] == "passed with warnings"
    assert checks["uncertainty_range[mu_offset_free]"]["verdict"] == "warn"
    assert checks["uncertainty_range[mu_offset_free]"]["value"] == pytest.approx(449.6, abs=0.05)
