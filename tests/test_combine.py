"""Combinations: joint data vector and covariance, chi2 = sum of the members', every per-point column kept, and no
sample counted twice."""

from __future__ import annotations

import copy
import itertools
import math
import re

import numpy as np
import pytest
import yaml

from pbuf_data.core.errors import PbufDataError
from pbuf_data.fit.combine import check_combination, combine, likelihood_form
from pbuf_data.read.registry import load_registry

from conftest import PROJECT
from test_labels import COSMOLOGIES, FREE_OFFSET, THEORY, VECTORIZED, readme_chi2
from test_likelihood import _prediction

REAL_NAMES = list(load_registry(PROJECT / "config" / "registry.yaml"))
COSMO = COSMOLOGIES[2]  # H0 64, Omega_m 0.35: not the fiducial of the mocks, not Planck

# Every pair of the real registry that must be refused, with the samples (or relation) the refusal names; every
# other pair may combine. Written from the releases' SOURCES.md and papers, not from the registry.
FORBIDDEN = {
    frozenset(pair): words for pair, words in [
        (("sn_pantheon_plus", "sn_pantheon"), ["pantheon_plus_sn", "pantheon_2018_sn"]),
        (("sn_pantheon_plus", "sn_des5yr"), ["pantheon_plus_sn", "des_sn5yr_sn"]),
        (("sn_pantheon", "sn_des5yr"), ["pantheon_2018_sn", "des_sn5yr_sn"]),
        # Gold-2018's z = 0.02 points are peculiar velocities of low-z SNe Ia the SN compilations hold as distances
        (("sn_pantheon_plus", "rsd_fsigma8"), ["pantheon_plus_sn", "lowz_snia_velocities"]),
        (("sn_pantheon", "rsd_fsigma8"), ["pantheon_2018_sn", "lowz_snia_velocities"]),
        (("sn_des5yr", "rsd_fsigma8"), ["des_sn5yr_sn", "lowz_snia_velocities"]),
        (("bao_boss_dr12", "bao_boss_dr12_fs"), ["'bao_boss_dr12_fs' supersedes 'bao_boss_dr12'"]),
        (("bao_boss_dr12", "rsd_fsigma8"), ["both measure boss_dr12_cmass"]),  # Chuang+2016, z = 0.59
        (("bao_boss_dr12_fs", "rsd_fsigma8"), ["both measure boss_dr12_cmass"]),
        (("bao_6dfgs", "rsd_fsigma8"), ["sixdfgs_galaxies", "sixdfgs_velocities"]),  # Huterer+2017 uses 6dFGSv
        (("bao_sdss_mgs", "rsd_fsigma8"), ["both measure sdss_dr7_mgs", "'bao_sdss_mgs' (chi2 table)"]),
        *(((other, "bao_sdss_mgs"), ["'bao_sdss_mgs' (chi2 table)"]) for other in
          ["sn_pantheon_plus", "sn_pantheon", "sn_des5yr", "bao_boss_dr12", "bao_boss_dr12_fs", "bao_desi_dr1",
           "bao_6dfgs", "cmb_planck2018", "cc_moresco"]),
        # the catalog releases (their SOURCES.md "Overlap")
        (("bao_mp_compilation_2014", "bao_6dfgs"), ["both measure sixdfgs_galaxies"]),
        (("bao_mp_compilation_2014", "bao_sdss_mgs"), ["both measure sdss_dr7_mgs"]),
        (("bao_mp_compilation_2014", "bao_boss_dr12"), ["boss_dr11_lowz", "boss_dr12_lowz", "boss_dr11_cmass", "boss_dr12_cmass"]),
        (("bao_mp_compilation_2014", "bao_boss_dr12_fs"), ["boss_dr11_cmass", "boss_dr12_cmass"]),
        (("bao_mp_compilation_2014", "rsd_fsigma8"), ["sdss_dr7_mgs", "boss_dr11_lowz"]),
        (("bao_mp_compilation_2014", "bao_boss_dr11_cmass_gauss"), ["both measure boss_dr11_cmass"]),
        (("bao_boss_dr11_cmass_gauss", "bao_boss_dr12"), ["boss_dr11_cmass", "boss_dr12_cmass"]),
        (("bao_boss_dr11_cmass_gauss", "bao_boss_dr12_fs"), ["boss_dr11_cmass", "boss_dr12_cmass"]),
        (("bao_boss_dr11_cmass_gauss", "rsd_fsigma8"), ["boss_dr11_cmass", "boss_dr12_cmass"]),
        *(((sn, "sn_union2"), ["union2_sn"]) for sn in ["sn_pantheon_plus", "sn_pantheon", "sn_des5yr", "sn_des5yr_statonly"]),
        (("sn_union2", "rsd_fsigma8"), ["union2_sn", "lowz_snia_velocities"]),
        (("sn_des5yr_statonly", "sn_des5yr"), ["both measure des_sn5yr_sn", "raw file sha256"]),
        (("sn_des5yr_statonly", "sn_pantheon_plus"), ["des_sn5yr_sn"]),
        (("sn_des5yr_statonly", "sn_pantheon"), ["des_sn5yr_sn"]),
        (("sn_des5yr_statonly", "rsd_fsigma8"), ["des_sn5yr_sn", "lowz_snia_velocities"]),
        # the Moresco 2012 H(z) in its two stellar-population models: one sample, two readings of it
        (("cc_hz_moresco2012_bc03", "cc_moresco"), ["both measure cc_moresco2012"]),
        (("cc_hz_moresco2012_mastro", "cc_moresco"), ["both measure cc_moresco2012"]),
        (("cc_hz_moresco2012_bc03", "cc_hz_moresco2012_mastro"), ["both measure cc_moresco2012"]),
    ]
}
PAIRS = list(itertools.combinations(REAL_NAMES, 2))


def _expected_refusal(pair, registry) -> list[str] | None:
    """What the refusal of a pair must name, or None for a pair that may combine."""
    words = FORBIDDEN.get(frozenset(pair))
    tables = [m for m in pair if likelihood_form(registry[m]) != "gaussian"]
    if tables:  # a catalog release (or SDSS MGS) carrying a table or grid likelihood
        words = [*(words or []), *(f"'{m}' ({likelihood_form(registry[m])})" for m in tables)]
    return words


def _theory(ds, cosmo):
    """The README table's theory of every point, from the point's own columns: a column is absent from a point
    where it is empty (NaN or ""), as a combination marks the points of members without it."""
    out = np.empty(len(ds))
    types = ds.observable_type
    for obs in set(types.tolist()) & VECTORIZED:
        sel = types == obs
        out[sel] = THEORY[obs](cosmo, ds.z[sel], {k: np.asarray(v)[sel] for k, v in ds.columns.items()})
    for i in np.flatnonzero(~np.isin(types, list(VECTORIZED))):
        row = {k: v[i] for k, v in ds.columns.items() if not (isinstance(v[i], str) and v[i] == "") and
               not (isinstance(v[i], (float, np.floating)) and math.isnan(v[i]))}
        out[i] = THEORY[types[i]](cosmo, ds.z[i], row)
    return out


def _log_normalization(ds):
    """-(N ln 2 pi + ln det C)/2, minus ln det(E / 2 pi)/2 with a free SN offset (E = 1^T C^-1 1), by numpy."""
    cov = ds.covariance
    value = -0.5 * (len(ds) * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1])
    if set(ds.observable_type.tolist()) & FREE_OFFSET:
        value -= 0.5 * math.log(np.linalg.solve(cov, np.ones(len(ds))).sum() / (2 * math.pi))
    return value


@pytest.fixture(scope="module")
def members(real):
    """chi2 (README table, numpy solve) and normalization of a real dataset at COSMO, computed once."""
    known = {}

    def get(name):
        if name not in known:
            known[name] = (real(name), readme_chi2(real(name), COSMO), _log_normalization(real(name)))
        return known[name]

    return get


def test_the_forbidden_pairs_are_pairs_of_the_registry():
    shipped = {frozenset(p) for p in PAIRS}
    assert set(FORBIDDEN) <= shipped and len(FORBIDDEN) == 41


@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_every_pair_of_real_datasets_combines_exactly_or_is_refused_naming_the_sample(pair, registry, members):
    spec = {"datasets": list(pair)}
    expected = _expected_refusal(pair, registry)
    if expected:
        with pytest.raises(PbufDataError) as info:
            check_combination("pair", spec, registry)
        assert all(word in str(info.value) for word in expected), str(info.value)
        assert "Traceback" not in str(info.value)
        return
    assert check_combination("pair", spec, registry) == []
    (a, chi2_a, norm_a), (b, chi2_b, norm_b) = members(pair[0]), members(pair[1])
    joint = combine("pair", [a, b])
    lik = joint.likelihood()
    theory = _theory(joint, COSMO)  # from the joint's own columns: zHD, zHEL, M_B, omega_m_ref must be there
    assert lik.chi2(theory) == pytest.approx(chi2_a + chi2_b, rel=1e-9, abs=1e-9)
    assert lik.loglike(theory) + lik.log_normalization == pytest.approx(
        -0.5 * (chi2_a + chi2_b) + norm_a + norm_b, rel=1e-9)


def test_gold2018_keeps_its_alcock_paczynski_factor_and_sn_their_redshifts_in_a_combination(real, registry):
    """Gold-2018 + Pantheon+ (allowed with a reason): the joint chi2 applies each fsigma8 point's AP factor from the
    joint's omega_m_ref column and each SN's zHEL; without them it would differ from the sum."""
    spec = {"datasets": ["sn_pantheon_plus", "rsd_fsigma8"], "allow_overlap": [
        {"pair": ["rsd_fsigma8", "sn_pantheon_plus"], "reason": "velocities and distances treated as independent"}]}
    allowed = check_combination("sn_rsd", spec, registry)
    assert allowed == [{"pair": ["rsd_fsigma8", "sn_pantheon_plus"], "samples": ["pantheon_plus_sn ~ lowz_snia_velocities"],
                        "reason": "velocities and distances treated as independent"}]
    sn, rsd = real("sn_pantheon_plus"), real("rsd_fsigma8")
    joint = combine("sn_rsd", [sn, rsd], allowed)
    np.testing.assert_array_equal(joint.columns["omega_m_ref"][len(sn):], rsd.columns["omega_m_ref"])
    assert np.isnan(joint.columns["omega_m_ref"][: len(sn)]).all()
    np.testing.assert_array_equal(joint.columns["zHEL"][: len(sn)], sn.columns["zHEL"])
    np.testing.assert_array_equal(joint.columns["M_B"][: len(sn)], sn.columns["M_B"])
    assert joint.columns["reference"][len(sn)] == "Huterer:2016uyq" and joint.columns["id"][0] == sn.columns["id"][0]
    expected = readme_chi2(sn, COSMO) + readme_chi2(rsd, COSMO)
    assert joint.chi2(_theory(joint, COSMO)) == pytest.approx(expected, rel=1e-9)
    without_ap = _theory(joint, COSMO)
    without_ap[len(sn):] = COSMO.fsigma8(rsd.z)  # what a combination without omega_m_ref would give
    assert abs(joint.chi2(without_ap) - expected) > 0.1
    assert joint.metadata["columns"]["omega_m_ref"] == "from rsd_fsigma8; NaN elsewhere"
    assert joint.provenance["allowed_overlaps"] == allowed


def test_a_combination_keeps_its_columns_through_the_dataset_files(real, tmp_path):
    from pbuf_data.model.dataset import read_dataset

    joint = combine("sn_bao", [real("sn_des5yr"), real("bao_desi_dr1")])
    joint.save(tmp_path / "sn_bao.npz", tmp_path / "sn_bao.json")
    back = read_dataset(tmp_path / "sn_bao.npz", tmp_path / "sn_bao.json")
    assert set(back.columns) == {"member", "kind", "id", "zHD", "zHEL", "IDSURVEY", "zCMB", "label", "sigma_published"}
    np.testing.assert_array_equal(back.columns["zHEL"][:1829], real("sn_des5yr").columns["zHEL"])
    assert back.columns["label"][1829] == "DV_over_rs" and back.columns["label"][0] == ""


def test_desi_dr1_with_boss_dr12_is_one_block_diagonal_dataset(real, registry):
    spec = {"datasets": ["bao_desi_dr1", "bao_boss_dr12", "sn_pantheon_plus"]}
    assert check_combination("bao_sn", spec, registry) == []
    members = [real(n) for n in spec["datasets"]]
    joint = combine("bao_sn", members)
    assert len(joint) == sum(len(m) for m in members)
    np.testing.assert_array_equal(joint.covariance[:12, :12], members[0].covariance)
    np.testing.assert_array_equal(joint.covariance[12:18, 12:18], members[1].covariance)
    assert not joint.covariance[:12, 12:].any() and not joint.covariance[12:18, 18:].any()
    expected = sum(m.chi2(_prediction(m)) for m in members)  # the SN member marginalizes its own offset
    assert joint.chi2(_prediction(joint)) == pytest.approx(expected, rel=1e-10)
    assert joint.columns["member"].tolist().count("bao_boss_dr12") == 6


def _with(registry, tmp_path, entries: dict) -> dict:
    """The real registry and more entries, loaded (validated, samples checked) as an extra registry file."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"datasets": entries}))
    return load_registry(PROJECT / "config" / "registry.yaml", extra)


def test_desi_dr2_with_desi_dr1_is_refused_naming_the_superseding_relation(registry, tmp_path):
    """The README's DESI DR2 entry (a new release added by the registry alone) supersedes DR1."""
    text = (PROJECT / "README.md").read_text().split("## Adding a dataset", 1)[1]
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    block = re.sub(r"url: <[^>]*>", "url: https://example.org/dr2", re.sub(r"sha256: <[^>]*>", "sha256: " + "a" * 64, block))
    dr2 = yaml.safe_load(block)["datasets"]["bao_desi_dr2"]
    assert dr2["supersedes"] == ["bao_desi_dr1"] and "desi_dr2_lrg" in dr2["samples"]
    reg = _with(registry, tmp_path, {"bao_desi_dr2": dr2})
    spec = {"datasets": ["bao_desi_dr1", "bao_desi_dr2"], "allow_overlap": [
        {"pair": ["bao_desi_dr1", "bao_desi_dr2"], "reason": "a reason does not lift supersedes"}]}
    with pytest.raises(PbufDataError, match="'bao_desi_dr2' supersedes 'bao_desi_dr1' .*allow_overlap does not lift"):
        check_combination("desi", spec, reg)
    # and a later release superseding DR2 is refused with DR1 too (a chain of releases)
    dr3 = dict(copy.deepcopy(dr2), supersedes=["bao_desi_dr2"], samples=["desi_dr2_bgs"])
    reg = _with(registry, tmp_path, {"bao_desi_dr2": dr2, "bao_desi_dr3": dr3})
    with pytest.raises(PbufDataError, match="'bao_desi_dr3' supersedes 'bao_desi_dr1'"):
        check_combination("desi", {"datasets": ["bao_desi_dr3", "bao_boss_dr12", "bao_desi_dr1"]}, reg)
    assert check_combination("desi", {"datasets": ["bao_desi_dr2", "bao_boss_dr12"]}, reg) == []


def test_gold2018_with_an_eboss_dr16_quasar_entry_is_refused_naming_the_dr14_quasars(registry, tmp_path):
    qso = copy.deepcopy(registry["bao_desi_dr1"])
    qso.update(title="eBOSS DR16 QSO BAO", samples=["eboss_dr16_qso"])
    for spec in qso["files"].values():
        spec.update(path=spec["path"].replace("desi_dr1", "eboss_dr16_qso"), sha256="1" * 64)
    reg = _with(registry, tmp_path, {"bao_eboss_dr16_qso": qso})
    with pytest.raises(PbufDataError) as info:
        check_combination("growth", {"datasets": ["rsd_fsigma8", "bao_eboss_dr16_qso", "cc_moresco"]}, reg)
    message = str(info.value)
    assert "'rsd_fsigma8' and 'bao_eboss_dr16_qso'" in message and "eboss_dr14_qso and eboss_dr16_qso" in message
    assert "cc_moresco" not in message.split("twice", 1)[1]  # the member that overlaps none is not named


def test_the_same_release_under_another_name_is_refused(registry):
    reg = dict(registry)
    reg["bao_desi_dr1_copy"] = copy.deepcopy(registry["bao_desi_dr1"])
    with pytest.raises(PbufDataError) as info:
        check_combination("twice", {"datasets": ["bao_desi_dr1", "bao_desi_dr1_copy"]}, reg)
    message = str(info.value)
    assert "'bao_desi_dr1' and 'bao_desi_dr1_copy'" in message and "raw file sha256" in message
    assert "desi_dr1_lrg" in message
    allowed = check_combination("twice", {"datasets": ["bao_desi_dr1", "bao_desi_dr1_copy"], "allow_overlap": [
        {"pair": ["bao_desi_dr1_copy", "bao_desi_dr1"], "reason": "closure test of the combination code"}]}, reg)
    assert allowed[0]["reason"] == "closure test of the combination code"
    assert allowed[0]["pair"] == ["bao_desi_dr1", "bao_desi_dr1_copy"]


def test_an_entry_without_samples_joins_only_with_a_reason_for_each_pair(registry):
    reg = dict(registry)
    reg["cc_unnamed"] = {k: v for k, v in copy.deepcopy(registry["cc_moresco"]).items() if k != "samples"}
    for spec in reg["cc_unnamed"]["files"].values():
        spec["sha256"] = "2" * 64
    spec = {"datasets": ["cc_unnamed", "bao_desi_dr1", "cmb_planck2018"]}
    with pytest.raises(PbufDataError) as info:
        check_combination("c", spec, reg)
    message = str(info.value)
    assert "'cc_unnamed' names no survey samples" in message
    assert "'cc_unnamed' and 'bao_desi_dr1' share one" in message and "'cc_unnamed' and 'cmb_planck2018' share one" in message
    reasons = [{"pair": ["cc_unnamed", m], "reason": "different tracers"} for m in ("bao_desi_dr1", "cmb_planck2018")]
    with pytest.raises(PbufDataError, match="'cc_unnamed' and 'cmb_planck2018'"):
        check_combination("c", {**spec, "allow_overlap": reasons[:1]}, reg)
    allowed = check_combination("c", {**spec, "allow_overlap": reasons}, reg)
    assert [a["samples"] for a in allowed] == [["unknown: 'cc_unnamed' names no samples"]] * 2


def test_gold2018_with_boss_dr12_is_refused_as_the_registry_declares(registry):
    """Gold-2018 holds BOSS DR12 CMASS fsigma8 points (Chuang+2016): the registry says so, and the combination is
    refused."""
    with pytest.raises(PbufDataError, match="'rsd_fsigma8' and 'bao_boss_dr12' both measure boss_dr12_cmass"):
        check_combination("c", {"datasets": ["rsd_fsigma8", "bao_boss_dr12"]}, registry)


def test_unknown_member_suggests_the_nearest_name(registry):
    with pytest.raises(PbufDataError, match="did you mean 'bao_desi_dr1'"):
        check_combination("c", {"datasets": ["bao_desi_dr", "bao_boss_dr12"]}, registry)


def test_tables_and_grids_are_refused_before_any_job_in_one_message(mock_registry):
    spec = {"datasets": ["mock_bao_elg_table", "mock_bao_desi_dr1", "mock_bao_lya_grid"]}
    with pytest.raises(PbufDataError) as info:
        check_combination("c", spec, mock_registry)
    message = str(info.value)
    assert ("'mock_bao_elg_table' (likelihood table or grid) and 'mock_bao_lya_grid' (likelihood table or grid) are "
            "not Gaussian") in message
    assert "joint ln L = sum" in message and message.count("combination 'c'") == 1


def test_a_table_likelihood_is_not_joined_as_a_gaussian(real):
    with pytest.raises(PbufDataError, match="bao_sdss_mgs.*table_1d"):
        combine("c", [real("bao_sdss_mgs"), real("bao_boss_dr12")])


def test_the_readme_combination_is_accepted_and_its_chi2_is_the_sum(registry, real):
    text = (PROJECT / "README.md").read_text()
    block = text.split("```yaml\ncombinations:", 1)[1].split("```", 1)[0]
    ((name, spec),) = yaml.safe_load("combinations:" + block)["combinations"].items()
    assert check_combination(name, spec, registry) == []
    members = [real(m) for m in spec["datasets"]]
    joint = combine(name, members)
    assert joint.chi2(_theory(joint, COSMO)) == pytest.approx(sum(readme_chi2(m, COSMO) for m in members), rel=1e-9)


def test_mock_surveys_are_refused_as_the_releases_they_imitate(mock_registry, registry):
    with pytest.raises(PbufDataError, match="'mock_rsd_fsigma8' and 'mock_bao_boss_dr12' both measure boss_dr12_cmass"):
        check_combination("c", {"datasets": ["mock_rsd_fsigma8", "mock_bao_boss_dr12"]}, mock_registry)
    for mock, real in [("mock_bao_desi_dr1", "bao_desi_dr1"), ("mock_sn_pantheon_plus", "sn_pantheon_plus"),
                       ("mock_rsd_fsigma8", "rsd_fsigma8"), ("mock_cc_moresco", "cc_moresco")]:
        assert mock_registry[mock]["samples"] == registry[real]["samples"]
