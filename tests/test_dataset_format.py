"""The on-disk dataset format: numpy/json readable, exact round trip, deterministic bytes."""

import json
import zipfile

import numpy as np
import pytest

from pbuf_data import Dataset, PbufDataError, load_dataset, read_dataset
from pbuf_data.publish.publication import publish


def _dataset(rng, n=50):
    a = rng.normal(size=(n, n))
    return Dataset(
        name="roundtrip",
        z=rng.uniform(0, 2, n),
        observable=rng.normal(40, 3, n),
        uncertainty=rng.uniform(0.1, 0.2, n),
        covariance=a @ a.T + n * np.eye(n),
        observable_type=np.where(rng.uniform(size=n) > 0.5, "DM_over_rd", "H_times_rd"),
        metadata={"kind": "bao", "units": {"DM_over_rd": "dimensionless"}},
        provenance={"raw_files": []},
        columns={"id": np.array([f"sn{i}" for i in range(n)]), "flag": np.arange(n) % 2},
        aux={"chi2": rng.uniform(size=7)},
    )


def test_exact_float64_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    original = _dataset(rng)
    original.covariance[0, 1] = np.nextafter(original.covariance[0, 1], 1)  # last-ulp detail survives
    original.save(tmp_path / "d.npz", tmp_path / "d.json")
    back = read_dataset(tmp_path / "d.npz", tmp_path / "d.json", verify=True)
    for key in ("z", "observable", "uncertainty", "covariance"):
        assert getattr(back, key).dtype == np.float64
        assert getattr(back, key).tobytes() == getattr(original, key).tobytes()
    assert back.observable_type.tolist() == original.observable_type.tolist()
    assert back.columns["id"].tolist() == original.columns["id"].tolist()
    np.testing.assert_array_equal(back.aux["chi2"], original.aux["chi2"])
    assert back.metadata == original.metadata


def test_readable_with_numpy_and_json_alone(tmp_path):
    _dataset(np.random.default_rng(2)).save(tmp_path / "d.npz", tmp_path / "d.json")
    with np.load(tmp_path / "d.npz", allow_pickle=False) as npz:
        assert {"z", "observable", "uncertainty", "covariance", "observable_type"} <= set(npz.files)
        assert npz["covariance"].shape == (50, 50)
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["format_version"] == 1 and doc["n_points"] == 50


def test_each_member_is_what_numpy_writes_and_the_recorded_sha256_is_the_files(tmp_path, monkeypatch):
    """The archive's members, written as slices of each array's buffer (three slices for the covariance here),
    hold the bytes numpy's own ``write_array`` writes for the array; the sha256 in the document, hashed in a
    thread beside the writing, is coreutils sha256sum's of the archive."""
    import io
    import subprocess

    from pbuf_data.core import archive, integrity

    monkeypatch.setattr(archive, "WRITE_BYTES", 8 * 1000)
    monkeypatch.setattr(integrity.HashingWriter, "THREADED_BYTES", 4096)
    dataset = _dataset(np.random.default_rng(4), n=50)  # a covariance of 20,000 bytes
    dataset.save(tmp_path / "d.npz", tmp_path / "d.json")
    with zipfile.ZipFile(tmp_path / "d.npz") as zf:
        assert zf.testzip() is None  # every member's CRC-32
        for key, array in dataset.arrays().items():
            expected = io.BytesIO()
            np.lib.format.write_array(expected, np.ascontiguousarray(array), allow_pickle=False)
            assert zf.read(f"{key}.npy") == expected.getvalue(), key
    sha256sum = subprocess.run(["sha256sum", tmp_path / "d.npz"], capture_output=True, text=True, check=True)
    assert json.loads((tmp_path / "d.json").read_text())["npz_sha256"] == sha256sum.stdout.split()[0]


def test_same_content_gives_identical_bytes(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        _dataset(np.random.default_rng(3)).save(tmp_path / sub / "d.npz", tmp_path / sub / "d.json")
    assert (tmp_path / "a" / "d.npz").read_bytes() == (tmp_path / "b" / "d.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a" / "d.npz") as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_verify_detects_a_changed_archive(tmp_path):
    _dataset(np.random.default_rng(4)).save(tmp_path / "d.npz", tmp_path / "d.json")
    data = bytearray((tmp_path / "d.npz").read_bytes())
    data[-200] ^= 0xFF
    (tmp_path / "d.npz").write_bytes(bytes(data))
    with pytest.raises(PbufDataError, match="sha256"):
        read_dataset(tmp_path / "d.npz", tmp_path / "d.json", verify=True)


def test_shape_mismatch_is_refused():
    with pytest.raises(PbufDataError, match="covariance has shape"):
        Dataset("bad", [0.1, 0.2], [1, 2], [0.1, 0.1], np.eye(3), ["mu", "mu"])


def test_load_dataset_names_the_missing_dataset(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "config" / "config.yaml").write_text("")
    with pytest.raises(PbufDataError, match="not found"):
        load_dataset("bao_nowhere", root=tmp_path)
    staged = tmp_path / "results" / "real" / "staging"
    dataset = _dataset(np.random.default_rng(5))
    dataset.name = "bao_boss_dr12"
    dataset.save(staged / "bao_boss_dr12.npz", staged / "bao_boss_dr12.json")
    publish(staged / "bao_boss_dr12.npz", staged / "bao_boss_dr12.json", tmp_path / "results" / "real" / "derived")
    with pytest.raises(PbufDataError, match=r"not found in results/real \(run the workflow for it first\) \(did you mean 'bao_boss_dr12'\?\)"):
        load_dataset("bao_bos_dr12", root=tmp_path / "data")  # from a sub-folder too
    assert len(load_dataset("bao_boss_dr12", root=tmp_path / "results" / "real" / "derived")) == 50
