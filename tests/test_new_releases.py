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
