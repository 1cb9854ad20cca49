"""Pantheon+ against the reference values of SOURCES.md and an independent pandas read."""

import numpy as np
import pandas as pd
import pytest

from pbuf_data.read.derive import derive_dataset


@pytest.fixture(scope="module")
def release(raw_dir):
    return pd.read_csv(raw_dir / "sn_pantheon_plus" / "Pantheon+SH0ES.dat", sep=r"\s+")


def test_cosmology_sample_size_and_values(real, release):
    sn = real("sn_pantheon_plus")
    assert len(sn) == 1590  # N(zHD > 0.01), Brout+2022 cosmology sample
    expected = release[release.zHD > 0.01]
    np.testing.assert_array_equal(sn.z, expected.zHD.to_numpy())
    np.testing.assert_array_equal(sn.observable, expected.MU_SH0ES.to_numpy())
    np.testing.assert_array_equal(sn.uncertainty, expected.MU_SH0ES_ERR_DIAG.to_numpy())
    assert set(sn.observable_type) == {"mu"}
    assert sn.metadata["units"]["mu"] == "mag"


def test_duplicate_light_curves_are_kept(real, release):
    sn = real("sn_pantheon_plus")
    ids = sn.columns["id"].tolist()
    assert len(set(ids)) < len(ids)
    assert len(set(ids)) == release[release.zHD > 0.01].CID.nunique()


def test_diagonal_covariance_is_declared(real):
    sn = real("sn_pantheon_plus")
    np.testing.assert_array_equal(np.diag(sn.covariance), sn.uncertainty**2)
    assert np.count_nonzero(sn.covariance - np.diag(np.diag(sn.covariance))) == 0
    assert sn.metadata["covariance"]["source"] == "diagonal"
    assert "systematic correlations are missing" in sn.metadata["covariance"]["warning"]


@pytest.mark.parametrize(
    "calibrators, expected",
    [("as_selected", 1590), ("include", 1657), ("exclude", 1580)],
)
def test_selections_from_config(registry, raw_dir, calibrators, expected):
    entry = {**registry["sn_pantheon_plus"], "expected_points": None}
    entry["options"] = {**entry["options"], "selection": {"z_min": 0.01, "z_max": None, "calibrators": calibrators}}
    assert len(derive_dataset("sn", entry, raw_dir)) == expected


def test_corrected_magnitudes_with_sh0es_offset(registry, raw_dir):
    entry = {**registry["sn_pantheon_plus"], "expected_points": None}
    entry["options"] = {**entry["options"], "observable_type": "m_b_corr", "columns": dict(entry["options"]["columns"])}
    entry["options"]["columns"].pop("observable", None)
    entry["options"]["columns"].pop("uncertainty", None)
    sn_m = derive_dataset("sn", entry, raw_dir)
    entry_all = {**entry, "options": {**entry["options"], "selection": {"z_min": 0.0, "z_max": None, "calibrators": "include"}}}
    full = derive_dataset("sn", entry_all, raw_dir)
    assert len(full) == 1701
    assert full.z[0] == 0.00122 and full.observable[0] == 9.74571  # first row, 2011fe
    assert full.columns["id"][-1] == "colfax" and full.z[-1] == 2.26137
    assert int(full.columns["IS_CALIBRATOR"].sum()) == 77
    mu = derive_dataset("sn", {**registry["sn_pantheon_plus"], "expected_points": None}, raw_dir)
    np.testing.assert_allclose(mu.observable - sn_m.observable, 19.253, atol=1e-4)  # M_B = -19.253


def test_sentinels_are_not_numbers(real):
    ceph = real("sn_pantheon_plus").columns["CEPH_DIST"]
    assert np.isnan(ceph).any() and not (ceph == -9).any()


@pytest.mark.parametrize("n, keep", [(1, 0.0), (2, 0.5), (9, 0.5), (300, 0.93), (300, 0.1), (64, 1.0)])
def test_in_place_subselection_equals_fancy_indexing(n, keep):
    from pbuf_data.model.matrix import take_square

    rng = np.random.default_rng(n)
    matrix = rng.standard_normal((n, n))
    index = np.flatnonzero(rng.uniform(size=n) < keep) if keep < 1 else np.arange(n)
    expected = matrix[np.ix_(index, index)].copy()
    taken = take_square(matrix, index)
    assert taken.shape == expected.shape and np.array_equal(taken, expected)
    assert np.shares_memory(taken, matrix) or taken.size == 0  # no second N x N array
