"""Malformed raw files: a clear PbufDataError naming dataset, file and line/column/check."""

import copy

import numpy as np
import pytest

from pbuf_data import PbufDataError
from pbuf_data.read.derive import derive_dataset


def _replace_line(lineno, new):
    def mutate(text):
        lines = text.split("\n")
        lines[lineno - 1] = new
        return "\n".join(lines)

    return mutate


def _replace_token(lineno, col, new):
    def mutate(text):
        lines = text.split("\n")
        fields = lines[lineno - 1].split()
        fields[col - 1] = new
        lines[lineno - 1] = " ".join(fields)
        return "\n".join(lines)

    return mutate


def _drop_column(name):
    def mutate(text):
        lines = text.split("\n")
        idx = lines[0].split().index(name)
        return "\n".join(" ".join(f for i, f in enumerate(l.split()) if i != idx) for l in lines)

    return mutate


CASES = [
    # dataset, role, mutation, fragments the message must contain
    ("sn_pantheon_plus", "table", _drop_column("MU_SH0ES"), ["missing column 'MU_SH0ES'", "line 1"]),
    ("sn_pantheon_plus", "table", _replace_token(5, 11, "abc"), ["line 5", "'abc' is not a number", "MU_SH0ES"]),
    ("sn_pantheon_plus", "table", _replace_token(7, 3, "nan"), ["line 7", "non-finite", "zHD"]),
    ("sn_pantheon_plus", "table", _replace_token(9, 12, "-0.2"), ["line 9", "not positive"]),
    ("sn_pantheon_plus", "table", _replace_token(9, 3, "-9"), ["line 9", "sentinel", "zHD"]),
    ("sn_pantheon_plus", "table", lambda t: t.replace("\n", "\n1 2 3\n", 1), ["line 2", "expected 47 columns, found 3"]),
    ("sn_pantheon_plus", "table", lambda t: "", ["file is empty"]),
    ("bao_boss_dr12", "mean", _replace_token(3, 2, "inf"), ["line 3", "column 2", "non-finite"]),
    ("bao_boss_dr12", "mean", _replace_token(2, 3, "bao_Hz"), ["line 2", "unknown quantity label 'bao_Hz'"]),
    ("bao_boss_dr12", "covariance", lambda t: "\n".join(t.split("\n")[:5]), ["expected a 6x6 matrix, found 5 rows"]),
    ("bao_boss_dr12", "covariance", _replace_line(2, "1 2 3"), ["line 2", "row 2 of a 6x6 matrix has 3 values"]),
    ("bao_desi_dr1", "mean", lambda t: t + "0.3 1.0\n", ["expected 3 columns, found 2"]),
    ("bao_6dfgs", "table", _replace_token(13, 3, "-0.015"), ["line 13", "not positive"]),
    ("bao_sdss_mgs", "chi2_table", _replace_line(10, " 1.0 2.0"), ["line 10", "expected 1 column"]),
    ("cmb_planck2018", "inverse_covariance", _replace_token(5, 1, "-94392.3971"), ["not positive definite"]),
    ("cmb_planck2018", "mean", _replace_token(5, 2, "1.75x"), ["line 5", "'1.75x' is not a number"]),
    ("cc_moresco", "table", _replace_token(4, 3, "0"), ["line 4", "not positive"]),
    ("cc_moresco", "systematics", lambda t: t.replace("mod_ooo", "mod_xxx"), ["columns ['mod_ooo'] not in the header"]),
    ("cc_moresco", "systematics", _replace_line(4, "0.05 0.47 7.40 14.23 6.98"), ["line 4", "redshifts must increase"]),
    ("rsd_fsigma8", "table", _replace_token(3, 2, "0.3.1"), ["line 3", "'0.3.1' is not a number"]),
    ("rsd_fsigma8", "sdss", lambda t: t.rsplit("\r\n", 1)[0], ["expected a 4x4 matrix, found 3 rows"]),
    ("rsd_fsigma8", "reference_table", lambda t: t.replace("0.428 & 0.0465", "0.429 & 0.0465"), ["line 8", "differs from line 1"]),
    ("rsd_fsigma8", "wigglez", lambda t: t + "\n0.0 0.0 0.0", ["expected a 3x3 matrix, found 4 rows"]),
    ("rsd_fsigma8", "wigglez", lambda t: t + "\u00e9", ["line 3", "column 3", "is not a number"]),
]


@pytest.fixture
def unpinned(registry):
    entries = copy.deepcopy(registry)
    for entry in entries.values():
        for spec in entry["files"].values():
            spec.pop("sha256", None)
            spec["allow_unpinned"] = True
    return entries


@pytest.mark.parametrize("name, role, mutate, fragments", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_malformed_file_is_reported_precisely(unpinned, writable_raw, name, role, mutate, fragments):
    path = writable_raw / unpinned[name]["files"][role]["path"]
    path.write_bytes(mutate(path.read_bytes().decode()).encode())
    with pytest.raises(PbufDataError) as err:
        derive_dataset(name, unpinned[name], writable_raw)
    message = str(err.value)
    assert f"dataset '{name}'" in message
    assert unpinned[name]["files"][role]["path"] in message
    for fragment in fragments:
        assert fragment in message, message


def test_non_utf8_bytes_name_the_line(unpinned, writable_raw):
    path = writable_raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    data = path.read_bytes().split(b"\n")
    data[6] = b"0.199 75 \xff\xfe"
    path.write_bytes(b"\n".join(data))
    with pytest.raises(PbufDataError, match=r"line 7.*utf-8|line 7, check 'utf-8'"):
        derive_dataset("cc_moresco", unpinned["cc_moresco"], writable_raw)


def test_binary_junk_is_refused(unpinned, writable_raw):
    path = writable_raw / "bao_desi_dr1" / "desi_2024_gaussian_bao_ALL_GCcomb_cov.txt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(PbufDataError, match="bao_desi_dr1"):
        derive_dataset("bao_desi_dr1", unpinned["bao_desi_dr1"], writable_raw)


def test_pin_mismatch_names_both_hashes(registry, writable_raw):
    path = writable_raw / "bao_6dfgs" / "6dfgs_bao_beutler2011_TRANSCRIBED.txt"
    path.write_text(path.read_text().replace("0.336", "0.337"))
    with pytest.raises(PbufDataError) as err:
        derive_dataset("bao_6dfgs", registry["bao_6dfgs"], writable_raw)
    assert registry["bao_6dfgs"]["files"]["table"]["sha256"] in str(err.value)
    assert "check 'sha256 pin'" in str(err.value)


def test_missing_file_and_size_limit(registry, writable_raw):
    (writable_raw / "bao_6dfgs" / "6dfgs_bao_beutler2011_TRANSCRIBED.txt").unlink()
    with pytest.raises(PbufDataError, match="missing"):
        derive_dataset("bao_6dfgs", registry["bao_6dfgs"], writable_raw)
    with pytest.raises(PbufDataError, match="above the limit of 100"):
        derive_dataset("cc_moresco", registry["cc_moresco"], writable_raw, max_bytes=100)


def test_wrong_point_count_is_refused(registry, raw_dir):
    entry = {**registry["bao_desi_dr1"], "expected_points": 13}
    with pytest.raises(PbufDataError, match="expected_points"):
        derive_dataset("bao_desi_dr1", entry, raw_dir)
