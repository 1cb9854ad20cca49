"""Publication: versioned archives, one-rename switches, and nothing published lost when a write fails."""

import copy
import errno
import hashlib
import os

import numpy as np
import pytest

from pbuf_data import PbufDataError, load_dataset
from pbuf_data.model.dataset import Dataset
from pbuf_data.publish.publication import publish


def _dataset(scale=1.0):
    n = 4
    rng = np.random.default_rng(7)
    a = rng.normal(size=(n, n))
    return Dataset(
        name="bao_test",
        z=np.linspace(0.1, 0.7, n),
        observable=np.linspace(5.0, 9.0, n) * scale,
        uncertainty=np.full(n, 0.2),
        covariance=a @ a.T + n * np.eye(n),
        observable_type=["DM_over_rd"] * n,
        metadata={"kind": "bao"},
        provenance={"raw_files": []},
    )


def _stage(tmp_path, dataset, tag):
    staging = tmp_path / f"staging-{tag}"
    staging.mkdir()
    dataset.save(staging / f"{dataset.name}.npz", staging / f"{dataset.name}.json")
    return staging / f"{dataset.name}.npz", staging / f"{dataset.name}.json"


def _published_bytes(root):
    folder = root / "results" / "real" / "derived"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "project"
    (root / "results" / "real" / "derived").mkdir(parents=True)
    return root


def test_publish_switches_versions_and_keeps_two(tmp_path, root):
    folder = root / "results" / "real" / "derived"
    versions = []
    for i, scale in enumerate([1.0, 1.01, 1.02]):
        npz, doc = _stage(tmp_path, _dataset(scale), i)
        files = publish(npz, doc, folder)
        sha = hashlib.sha256(npz.read_bytes()).hexdigest()
        versions.append(f".versions/bao_test-{sha[:16]}.npz")
        assert files == {versions[-1]: sha, "bao_test.npz": sha,
                         "bao_test.json": hashlib.sha256((folder / "bao_test.json").read_bytes()).hexdigest()}
        loaded = load_dataset("bao_test", root=root, verify=True)
        np.testing.assert_array_equal(loaded.observable, np.linspace(5.0, 9.0, 4) * scale)
        with np.load(folder / "bao_test.npz") as plain:  # numpy alone sees the same archive
            np.testing.assert_array_equal(plain["observable"], loaded.observable)
        assert (folder / "bao_test.npz").read_bytes() == npz.read_bytes() == (folder / versions[-1]).read_bytes()
    # the current and the previous version stay, older ones go
    assert sorted(p.name for p in (folder / ".versions").iterdir()) == sorted(v.split("/")[1] for v in versions[1:])
    assert sorted(p.name for p in folder.iterdir()) == [".versions", "bao_test.json", "bao_test.npz"]


def test_staged_archive_that_differs_from_its_document_is_not_published(tmp_path, root):
    npz, doc = _stage(tmp_path, _dataset(), "a")
    publish(npz, doc, root / "results" / "real" / "derived")
    before = _published_bytes(root)
    npz2, doc2 = _stage(tmp_path, _dataset(1.05), "b")
    data = bytearray(npz2.read_bytes())
    data[300] ^= 1
    npz2.write_bytes(bytes(data))
    with pytest.raises(PbufDataError, match="sha256"):
        publish(npz2, doc2, root / "results" / "real" / "derived")
    assert _published_bytes(root) == before


def test_document_naming_a_foreign_archive_is_refused(tmp_path, root):
    npz, doc = _stage(tmp_path, _dataset(), "a")
    publish(npz, doc, root / "results" / "real" / "derived")
    path = root / "results" / "real" / "derived" / "bao_test.json"
    path.write_text(path.read_text().replace('"npz_file": ".versions/bao_test-', '"npz_file": "../../bao_test-'))
    with pytest.raises(PbufDataError, match="is not this dataset's archive"):
        load_dataset("bao_test", root=root)


def _count_fsyncs(tmp_path, monkeypatch):
    root = tmp_path / "count"
    (root / "results" / "real" / "derived").mkdir(parents=True)
    npz, doc = _stage(tmp_path, _dataset(), "count")
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    publish(npz, doc, root / "results" / "real" / "derived")
    monkeypatch.setattr(os, "fsync", real)
    return len(calls)


def test_disk_full_at_any_fsync_leaves_the_published_copy(tmp_path, root, monkeypatch):
    """ENOSPC injected at each fsync of a republication in turn: the published bytes stay, readable."""
    n_fsyncs = _count_fsyncs(tmp_path, monkeypatch)
    assert n_fsyncs >= 4  # versioned copy, plain copy, document, and the folder after each rename
    folder = root / "results" / "real" / "derived"
    original = _dataset()
    npz, doc = _stage(tmp_path, original, "first")
    publish(npz, doc, folder)
    changed = copy.deepcopy(original)
    changed.observable = changed.observable * 1.01
    npz2, doc2 = _stage(tmp_path, changed, "second")
    real = os.fsync
    # the failures before the document's rename (the published copy must not change at all)
    for fail_at in range(4):
        before = _published_bytes(root)
        calls = []

        def failing(fd):
            calls.append(fd)
            if len(calls) == fail_at + 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd)

        monkeypatch.setattr(os, "fsync", failing)
        with pytest.raises(PbufDataError, match="No space left on device"):
            publish(npz2, doc2, folder)
        monkeypatch.setattr(os, "fsync", real)
        after = _published_bytes(root)
        for name in ("bao_test.json", "bao_test.npz"):
            assert after[name] == before[name], (fail_at, name)
        loaded = load_dataset("bao_test", root=root, verify=True)
        np.testing.assert_array_equal(loaded.observable, original.observable)
        with np.load(folder / "bao_test.npz") as plain:
            np.testing.assert_array_equal(plain["observable"], original.observable)
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    # and the republication succeeds once the disk has room again
    publish(npz2, doc2, folder)
    np.testing.assert_array_equal(load_dataset("bao_test", root=root, verify=True).observable, changed.observable)
