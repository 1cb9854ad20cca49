"""Publication: versioned archives, one-rename switches, and nothing published lost when a write fails."""

import copy
import errno
import hashlib
import json
import os

import numpy as np
import pytest

from pbuf_data import PbufDataError, load_dataset
from pbuf_data.model.dataset import Dataset
from pbuf_data.publish import publication
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


@pytest.mark.parametrize("trusted", [True, False], ids=["staged-here", "staged-elsewhere"])
def test_the_versioned_archive_is_the_staged_file_only_when_this_process_wrote_it(tmp_path, root, monkeypatch, trusted):
    """Staged by this process and unchanged since: the versioned archive is a hard link to the staged file and
    <name>.npz a copy of it (a file of its own); staged elsewhere: both are copies, hashed as copied. Every
    published archive has the sha256 its document records (coreutils sha256sum)."""
    import subprocess

    if not trusted:
        monkeypatch.setattr(publication, "known_sha256", lambda where: None)
    folder = root / "results" / "real" / "derived"
    npz, doc = _stage(tmp_path, _dataset(), "a")
    publish(npz, doc, folder)
    document = json.loads((folder / "bao_test.json").read_text())
    versioned, plain = folder / document["npz_file"], folder / "bao_test.npz"
    assert versioned.samefile(npz) == trusted
    assert not plain.samefile(npz) and not plain.samefile(versioned)
    sums = subprocess.run(["sha256sum", versioned, plain], capture_output=True, text=True, check=True).stdout.split()
    assert sums[0] == sums[2] == document["npz_sha256"]
    assert oct(versioned.stat().st_mode & 0o777) == oct(plain.stat().st_mode & 0o777) == "0o644"


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
    """(fsyncs of a publication, those before its document's rename)."""
    root = tmp_path / "count"
    (root / "results" / "real" / "derived").mkdir(parents=True)
    npz, doc = _stage(tmp_path, _dataset(), "count")
    calls, before_document = [], []
    real, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (str(b).endswith("bao_test.json") and before_document.append(len(calls)),
                                                     replace(a, b))[1])
    publish(npz, doc, root / "results" / "real" / "derived")
    monkeypatch.setattr(os, "fsync", real)
    monkeypatch.setattr(os, "replace", replace)
    return len(calls), before_document[0]


@pytest.mark.parametrize("trusted", [True, False], ids=["staged-here", "staged-elsewhere"])
def test_disk_full_at_any_fsync_leaves_the_published_copy(tmp_path, root, monkeypatch, trusted):
    """ENOSPC injected at each fsync of a republication in turn: the published bytes stay, readable. Both ways of
    publishing: the staged archive written by this process (its digest trusted: the versioned file a hard
    link, the plain copy made by the kernel) and one written elsewhere (its bytes hashed as they are copied)."""
    if not trusted:
        monkeypatch.setattr(publication, "known_sha256", lambda where: None)
    n_fsyncs, before_document = _count_fsyncs(tmp_path, monkeypatch)
    # the plain copy, the .versions folder (and the versioned copy when hashed), the document; then the folder
    # after each rename
    assert before_document == (3 if trusted else 4) and n_fsyncs >= before_document + 2
    folder = root / "results" / "real" / "derived"
    original = _dataset()
    npz, doc = _stage(tmp_path, original, "first")
    publish(npz, doc, folder)
    changed = copy.deepcopy(original)
    changed.observable = changed.observable * 1.01
    npz2, doc2 = _stage(tmp_path, changed, "second")
    real = os.fsync
    # the failures before the document's rename (the published copy must not change at all)
    for fail_at in range(before_document):
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


def test_a_staged_archive_replaced_before_its_link_is_not_published(tmp_path, root, monkeypatch):
    """The hard link is made by path: a file renamed over the staged path after its digest was checked is not
    the file checked, and is refused; the published copy stays."""
    folder = root / "results" / "real" / "derived"
    npz, doc = _stage(tmp_path, _dataset(), "a")
    publish(npz, doc, folder)
    before = _published_bytes(root)
    changed = copy.deepcopy(_dataset())
    changed.observable = changed.observable * 1.01
    npz2, doc2 = _stage(tmp_path, changed, "b")
    intruder = tmp_path / "intruder.npz"
    intruder.write_bytes(b"not the checked archive")
    real_link = os.link

    def replaced_first(src, dst):
        os.replace(intruder, npz2)
        return real_link(src, dst)

    monkeypatch.setattr(publication.os, "link", replaced_first)
    with pytest.raises(PbufDataError, match="replaced while it was published"):
        publish(npz2, doc2, folder)
    assert _published_bytes(root) == before
    assert not [p for p in folder.rglob("*.tmp")]


@pytest.mark.parametrize("how", ["links refused", "copy stops short"])
def test_where_links_are_refused_or_the_kernel_copy_stops_short_the_files_are_whole(tmp_path, root, monkeypatch, how):
    """Without hard links (EPERM) the versioned archive is a copy; a copy_file_range that returns 0 before the end
    (some filesystems do) is finished through this process. Either way every published archive has the
    document's sha256 (coreutils sha256sum)."""
    import subprocess

    if how == "links refused":
        monkeypatch.setattr(publication.os, "link", lambda *a: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    else:
        real_copy = os.copy_file_range
        monkeypatch.setattr(publication.os, "copy_file_range",
                            lambda src, dst, count, offset: real_copy(src, dst, min(count, 1000), offset) if offset == 0 else 0)
    folder = root / "results" / "real" / "derived"
    npz, doc = _stage(tmp_path, _dataset(), "a")
    publish(npz, doc, folder)
    document = json.loads((folder / "bao_test.json").read_text())
    versioned, plain = folder / document["npz_file"], folder / "bao_test.npz"
    assert versioned.samefile(npz) == (how != "links refused")
    sums = subprocess.run(["sha256sum", versioned, plain], capture_output=True, text=True, check=True).stdout.split()
    assert sums[0] == sums[2] == document["npz_sha256"]
