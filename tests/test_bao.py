"""BAO datasets against SOURCES.md reference values and independent numpy reads of the raw files."""

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.read.derive import derive_dataset

RS_FID = 147.78


def test_boss_dr12_linear_rescaling(real, raw_dir):
    boss = real("bao_boss_dr12")
    raw = np.loadtxt(raw_dir / "bao_boss_dr12" / "sdss_DR12Consensus_bao.dat", usecols=(0, 1))
    cov = np.loadtxt(raw_dir / "bao_boss_dr12" / "BAO_consensus_covtot_dM_Hz.txt")
    assert boss.observable_type.tolist() == ["DM_over_rd", "H_times_rd"] * 3
    np.testing.assert_array_equal(boss.z, [0.38, 0.38, 0.51, 0.51, 0.61, 0.61])
    # published numbers: D_M/r_d(0.38) = 1512.39/147.78 = 10.2341 +- 0.16913; H r_d = 81.2087 * 147.78 km/s
    assert boss.observable[0] == pytest.approx(10.2341, abs=5e-5)
    assert boss.uncertainty[0] == pytest.approx(0.16913, abs=5e-5)
    assert boss.observable[1] == pytest.approx(81.2087 * RS_FID, rel=1e-12)
    assert boss.uncertainty[1] == pytest.approx(350.0, abs=0.05)
    jac = np.diag([1 / RS_FID, RS_FID] * 3)
    np.testing.assert_allclose(boss.covariance, jac @ cov @ jac, rtol=1e-14)
    np.testing.assert_allclose(boss.observable, np.diag(jac) * raw[:, 1], rtol=1e-14)
    assert boss.metadata["units"]["H_times_rd"] == "km/s"
    names = [c["name"] for c in boss.provenance["conversions"]]
    assert names == ["divide_by_rs_fid", "multiply_by_rs_fid"]


def test_boss_chi2_is_invariant_under_the_rescaling(real, raw_dir):
    """A linear rescaling leaves any chi2 unchanged: check with an arbitrary model vector."""
    boss = real("bao_boss_dr12")
    raw = np.loadtxt(raw_dir / "bao_boss_dr12" / "sdss_DR12Consensus_bao.dat", usecols=(1,))
    cov = np.loadtxt(raw_dir / "bao_boss_dr12" / "BAO_consensus_covtot_dM_Hz.txt")
    model_raw = raw * np.array([1.01, 0.98, 1.02, 0.99, 1.0, 1.03])
    scale = np.array([1 / RS_FID, RS_FID] * 3)
    r0, r1 = raw - model_raw, boss.observable - scale * model_raw
    assert r1 @ np.linalg.solve(boss.covariance, r1) == pytest.approx(r0 @ np.linalg.solve(cov, r0), rel=1e-10)


def test_desi_dr1_by_labels(real, raw_dir):
    desi = real("bao_desi_dr1")
    cov = np.loadtxt(raw_dir / "bao_desi_dr1" / "desi_2024_gaussian_bao_ALL_GCcomb_cov.txt")
    assert len(desi) == 12
    assert desi.observable_type[0] == "DV_over_rd" and desi.observable[0] == 7.92512927
    assert desi.uncertainty[0] == pytest.approx(0.15074, abs=5e-6)
    assert desi.observable_type[-1] == "DH_over_rd" and desi.uncertainty[-1] == pytest.approx(0.17084, abs=5e-6)
    i = 1  # z = 0.51 DM, DH pair
    corr = desi.covariance[i, i + 1] / np.sqrt(desi.covariance[i, i] * desi.covariance[i + 1, i + 1])
    assert corr == pytest.approx(-0.4454, abs=5e-5)
    np.testing.assert_array_equal(desi.covariance, cov)
    assert list(desi.observable_type).count("DV_over_rd") == 2


def _six_with_label(entry, **label):
    return {**entry, "options": {**entry["options"], "labels": {"rs_over_DV": {"conversion": "none", **label}}}}


def test_6dfgs_camb_by_default_eh98_as_its_own_type(real, registry, raw_dir):
    six = real("bao_6dfgs")
    assert six.observable_type.tolist() == ["rd_over_DV"] and six.z.tolist() == [0.106]
    assert six.observable[0] == pytest.approx(0.32705, abs=5e-6)  # SOURCES.md: 0.336/1.027369826
    assert six.uncertainty[0] == pytest.approx(0.01460, abs=5e-6)
    assert "CAMB" in six.metadata["sound_horizon"] and "converted" in six.metadata["sound_horizon"]
    (record,) = six.provenance["conversions"]
    assert record["name"] == "eh98_to_camb_rd" and "Beutler" in record["citation"]
    assert record["parameters"]["factor"] == 1 / 1.027369826
    published = derive_dataset("bao_6dfgs", _six_with_label(registry["bao_6dfgs"], observable_type="rs_EH98_over_DV"), raw_dir)
    assert published.observable.tolist() == [0.336] and published.uncertainty.tolist() == [0.015]
    assert published.observable_type.tolist() == ["rs_EH98_over_DV"]
    assert "Eisenstein & Hu" in published.metadata["sound_horizon"] and not published.provenance["conversions"]


@pytest.mark.parametrize(
    "label, sound_horizon, message",
    [
        ({"observable_type": "rd_over_DV"}, "eh98", "convert it (eh98_to_camb_rd) or type it ['rs_EH98_over_DV']"),
        ({"observable_type": "rs_EH98_over_DV", "conversion": "eh98_to_camb_rd"}, "eh98", "a CAMB r_d observable type"),
        ({"observable_type": "rs_EH98_over_DV"}, "camb_rd", "use a CAMB r_d observable type"),
        ({"observable_type": "rd_over_DV", "conversion": "eh98_to_camb_rd"}, "camb_rd", "needs options.sound_horizon 'eh98'"),
    ],
)
def test_a_label_in_another_convention_is_converted_or_typed_by_it(registry, raw_dir, label, sound_horizon, message):
    entry = _six_with_label(registry["bao_6dfgs"], **label)
    entry["options"]["sound_horizon"] = sound_horizon
    with pytest.raises(PbufDataError) as failure:
        derive_dataset("bao_6dfgs", entry, raw_dir)
    assert message in str(failure.value) and "bao_6dfgs" in str(failure.value)
    assert "6dfgs_bao_beutler2011_TRANSCRIBED.txt" in str(failure.value)


def test_mgs_gaussian_summary_and_chi2_table(real, registry, raw_dir):
    mgs = real("bao_sdss_mgs")
    assert mgs.observable[0] == pytest.approx(664 / 148.69, rel=1e-9)
    assert mgs.uncertainty[0] == pytest.approx(25 / 148.69, rel=1e-9)
    assert "non-Gaussian" in mgs.metadata["likelihood"]
    assert mgs.aux["chi2"].shape == (399,)
    summary = mgs.metadata["chi2_table"]
    assert summary["alpha_at_minimum"] == pytest.approx(1.0395, abs=1e-9)
    assert summary["DV_over_rd_at_minimum"] == pytest.approx(4.4669, abs=5e-4)
    lo, hi = summary["delta_chi2_1_interval"]
    assert lo == pytest.approx(4.317, abs=0.005) and hi == pytest.approx(4.626, abs=0.005)
    # the chi2 curve summary, as an option
    entry = registry["bao_sdss_mgs"]
    curve = derive_dataset("mgs", {**entry, "options": {**entry["options"], "summary": "chi2_curve"}}, raw_dir)
    assert curve.observable[0] == pytest.approx(4.4669, abs=5e-4)
    assert curve.uncertainty[0] == pytest.approx((hi - lo) / 2)
