"""A row holding a 2-D Gaussian (two values, their sigmas, a correlation coefficient, r_s,fid): BOSS DR11 CMASS."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.read.derive import derive_dataset

from test_cobaya import C, COSMOLOGIES, FlatLCDM, _cobaya_chi2s
from test_matrix_forms import validate_registry

ROW = "CMASS\t0.57\t1421\t20\t96.8\t3.4\t0.539\t149.28"


def test_dr11_cmass_reference_values(real):
    ds = real("bao_boss_dr11_cmass_gauss")
    assert ds.observable_type.tolist() == ["DA_over_rd", "H_times_rd"] and ds.z.tolist() == [0.57, 0.57]
    assert ds.observable[0] == pytest.approx(9.51902, abs=5e-6) and ds.uncertainty[0] == pytest.approx(0.13398, abs=5e-6)
    assert ds.observable[1] == pytest.approx(14450.3, abs=0.05)
    assert C / (ds.observable[1]) == pytest.approx(20.7464, abs=5e-5)  # D_H/r_d of SOURCES.md
    assert ds.observable[0] * 1.57 == pytest.approx(14.94487, abs=5e-6)  # D_M/r_d
    # C[0,1] = 0.539 * 20 * 3.4 = 36.652 before the conversion by r_s,fid (1/149.28 and 149.28: unchanged)
    assert ds.covariance[0, 1] == pytest.approx(36.652, rel=1e-12)
    assert np.sqrt(ds.covariance[1, 1]) == pytest.approx(3.4 * 149.28, rel=1e-12)


def _theory(ds, model):
    rd = model.rdrag()
    dm = model.comoving(ds.z)
    return np.where(ds.observable_type == "DA_over_rd", dm / (1 + ds.z) / rd, model.hubble(ds.z) * rd)


def test_chi2_equals_cobaya_bao_generic_on_the_release_numbers(real, tmp_path):
    """Cobaya's bao.generic given the row's numbers as written (DA_over_rs 1421, Hz_rs 96.8, the 2 x 2 covariance
    from the sigmas and rho) and rs_fid = 149.28: its r_s is then r_d / 149.28, the release's scaling."""
    (tmp_path / "mean.txt").write_text("0.57 1421 DA_over_rs\n0.57 96.8 Hz_rs\n")
    (tmp_path / "cov.txt").write_text(f"400 {0.539 * 20 * 3.4!r}\n{0.539 * 20 * 3.4!r} {3.4**2!r}\n")
    block = {"cmass": {"class": "pbuf_data.fit.cobaya_theory.BaoGeneric", "path": str(tmp_path), "measurements_file": "mean.txt",
                       "cov_file": "cov.txt", "rs_fid": 149.28}}
    theirs = _cobaya_chi2s(tmp_path, block, COSMOLOGIES)
    ds = real("bao_boss_dr11_cmass_gauss")
    for cosmo, expected in zip(COSMOLOGIES, theirs):
        assert ds.chi2(_theory(ds, FlatLCDM(**cosmo))) == pytest.approx(expected, rel=1e-9)


def test_montepython_reader_is_the_same_form_without_its_normalization(real):
    """MontePython's bao_boss_aniso_gauss_approx sums x^2 + y^2 - 2 rho x y of the normalized residuals (written
    here from its code's description): (1 - rho^2) times the bivariate Gaussian chi2 this dataset gives."""
    ds = real("bao_boss_dr11_cmass_gauss")
    for cosmo in COSMOLOGIES:
        model = FlatLCDM(**cosmo)
        rd = model.rdrag()
        da, hubble = model.comoving(0.57)[0] / 1.57, float(model.hubble(0.57))
        x = (da / rd * 149.28 - 1421) / 20
        y = (hubble * rd / 149.28 - 96.8) / 3.4
        montepython = x * x + y * y - 2 * 0.539 * x * y
        assert ds.chi2(_theory(ds, model)) * (1 - 0.539**2) == pytest.approx(montepython, rel=1e-9)


def _toy(tmp_path, text, options):
    folder = tmp_path / "raw" / "bao_pair"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "row.txt").write_text(text)
    entry = {"kind": "bao", "format": "bao_correlated_pair", "title": "toy", "citation": "toy",
             "files": {"table": {"path": "bao_pair/row.txt", "allow_unpinned": True}}, "options": options}
    validate_registry({"datasets": {"bao_pair": entry}})
    return derive_dataset("bao_pair", entry, tmp_path / "raw")


def test_rs_fid_from_the_entry_two_rows_block_diagonal_and_bad_rows(tmp_path, registry):
    options = copy.deepcopy(registry["bao_boss_dr11_cmass_gauss"]["options"])
    options["columns"] = {"rs_fid": None}
    options["rs_fid"] = 149.28
    ds = _toy(tmp_path, "A 0.57 1421 20 96.8 3.4 0.539\nB 0.32 981 20 79.0 5.0 -0.2\n", copy.deepcopy(options))
    assert len(ds) == 4 and ds.covariance[0, 2] == 0 and ds.covariance[2, 3] == pytest.approx(-0.2 * 20 * 5.0)
    with pytest.raises(PbufDataError, match=r"line 1, column 7.*correlation coefficient 1.2 is not in \(-1, 1\)"):
        _toy(tmp_path, "A 0.57 1421 20 96.8 3.4 1.2\n", copy.deepcopy(options))
    del options["rs_fid"]
    with pytest.raises(PbufDataError, match="rs_fid"):  # a conversion by r_s,fid with no r_s,fid anywhere
        _toy(tmp_path, "A 0.57 1421 20 96.8 3.4 0.5\n", options)
    with pytest.raises(PbufDataError, match="given twice"):
        _toy(tmp_path, ROW + "\n", dict(registry["bao_boss_dr11_cmass_gauss"]["options"], rs_fid=147.0))
