"""Combinations: joint data vector and covariance, chi2 = sum of the members', and no sample counted twice."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pbuf_data.combine import check_combination, combine
from pbuf_data.errors import PbufDataError

from test_likelihood import _prediction


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


def test_the_same_release_under_another_name_is_refused(registry):
    reg = dict(registry)
    reg["bao_desi_dr1_copy"] = copy.deepcopy(registry["bao_desi_dr1"])
    with pytest.raises(PbufDataError) as info:
        check_combination("twice", {"datasets": ["bao_desi_dr1", "bao_desi_dr1_copy"]}, reg)
    message = str(info.value)
    assert "'bao_desi_dr1'" in message and "'bao_desi_dr1_copy'" in message and "raw file sha256" in message
    allowed = check_combination("twice", {"datasets": ["bao_desi_dr1", "bao_desi_dr1_copy"], "allow_overlap": [
        {"pair": ["bao_desi_dr1_copy", "bao_desi_dr1"], "reason": "closure test of the combination code"}]}, reg)
    assert allowed[0]["reason"] == "closure test of the combination code"
    assert allowed[0]["pair"] == ["bao_desi_dr1", "bao_desi_dr1_copy"]


def test_gold2018_with_boss_dr12_is_refused_as_the_registry_declares(registry):
    """Gold-2018 holds BOSS CMASS fsigma8 points: the registry says so, and the combination is refused."""
    with pytest.raises(PbufDataError, match="'rsd_fsigma8' and 'bao_boss_dr12' both measure boss_cmass_galaxies"):
        check_combination("c", {"datasets": ["rsd_fsigma8", "bao_boss_dr12"]}, registry)


def test_unknown_member_suggests_the_nearest_name(registry):
    with pytest.raises(PbufDataError, match="did you mean 'bao_desi_dr1'"):
        check_combination("c", {"datasets": ["bao_desi_dr", "bao_boss_dr12"]}, registry)


def test_a_table_likelihood_is_not_joined_as_a_gaussian(real):
    with pytest.raises(PbufDataError, match="bao_sdss_mgs.*table_1d"):
        combine("c", [real("bao_sdss_mgs"), real("bao_boss_dr12")])
