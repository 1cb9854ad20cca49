"""Hostile result trees: ``load_dataset`` opens only files inside its tree named by a document of the dataset
asked for, and bounds every array before allocating it; ``verify`` never follows a link out of the tree and
covers the files beside the published data (figures, staging, backup record)."""

import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import PROJECT

from pbuf_data import PbufDataError
from pbuf_data.core.archive import MAX_INFLATED_BYTES
from pbuf_data.core.integrity import verify_tree
from pbuf_data.core.layout import Tree
from pbuf_data.model.dataset import Dataset, load_dataset
from pbuf_data.publish.publication import publish
from pbuf_data.operate.steps import export as export_step, manifest
from pbuf_data.publish.sidecars import record, verify_other_files


def _dataset(name, offset=0.0):
    z = np.array([0.1, 0.5, 1.0])
    return Dataset(name=name, z=z, observable=z * 3000 + offset, uncertainty=np.array([10.0, 20.0, 30.0]),
                   covariance=np.diag([100.0, 400.0, 900.0]), observable_type=np.array(["DM_over_rd"] * 3),
                   metadata={"kind": "bao", "format": "bao_mean_cov", "title": name}, provenance={"raw_files": []})


@pytest.fixture
def tree(tmp_path):
    """A result tree with two published datasets, ``alpha`` and ``beta``."""
    derived = tmp_path / "tree" / "derived"
    derived.mkdir(parents=True)
    for name, offset in (("alpha", 0.0), ("beta", 5.0)):
        staged = tmp_path / "staging"
        staged.mkdir(exist_ok=True)
        _dataset(name, offset).save(staged / f"{name}.npz", staged / f"{name}.json")
        publish(staged / f"{name}.npz", staged / f"{name}.json", derived)
    return tmp_path / "tree"


def _outside(tmp_path):
    """A valid dataset pair outside the tree, at /.../evil.{npz,json}: what must never be read."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    _dataset("evil", 1e6).save(folder / "evil.npz", folder / "evil.json")
    return folder / "evil"


# -- names and documents -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ABS", "../../x", "a/b", "alpha\n", ""])
def test_a_name_that_is_not_a_dataset_name_is_refused(tree, tmp_path, name):
    evil = _outside(tmp_path)
    for asked in (name, str(evil)):
        with pytest.raises(PbufDataError, match="is not a dataset name") as info:
            load_dataset(asked, root=tree)
        assert info.value.check == "name"


@pytest.mark.parametrize("verify", [False, True])
@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_a_document_naming_a_path_is_refused_unread(tree, tmp_path, where, verify):
    evil = _outside(tmp_path)
    path = tree / "derived" / "alpha.json"
    document = json.loads(path.read_text())
    document["name"] = str(evil) if where == "absolute" else os.path.relpath(evil, tree / "derived")
    del document["npz_file"]  # the archive would then be <name>.npz: the outside file
    path.write_text(json.dumps(document))
    with pytest.raises(PbufDataError, match="is not a dataset name: not read") as info:
        load_dataset("alpha", root=tree, verify=verify)
    assert info.value.dataset == "alpha" and info.value.file == str(path)


def test_a_document_of_another_dataset_in_its_place_is_refused(tree):
    shutil.copy(tree / "derived" / "beta.json", tree / "derived" / "alpha.json")
    with pytest.raises(PbufDataError, match="the document is of dataset 'beta', not of 'alpha'"):
        load_dataset("alpha", root=tree, verify=True)
    assert load_dataset("beta", root=tree, verify=True).observable[0] == pytest.approx(305.0)


@pytest.mark.parametrize("which", ["document", "archive"])
def test_a_link_out_of_the_tree_is_not_opened(tree, tmp_path, which):
    evil = _outside(tmp_path)
    if which == "document":
        target = tree / "derived" / "alpha.json"
        target.unlink()
        target.symlink_to(evil.with_suffix(".json"))
    else:
        member = json.loads((tree / "derived" / "alpha.json").read_text())["npz_file"]
        target = tree / "derived" / member
        target.unlink()
        target.symlink_to(evil.with_suffix(".npz"))
    with pytest.raises(PbufDataError, match="leads out of the derived folder") as info:
        load_dataset("alpha", root=tree)
    assert info.value.check == "path"


# -- sizes bounded before allocation ------------------------------------------------------------------------------

def _archive_with(tree, name, write_members):
    """Replace a published archive by one written by ``write_members(zipfile)``; its document names it."""
    document = json.loads((tree / "derived" / f"{name}.json").read_text())
    path = tree / "derived" / document["npz_file"]
    path.unlink()
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        write_members(zf)
    return path


def _header(shape, descr="<f8") -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_an_array_header_larger_than_its_member_is_refused_before_allocating(tree):
    def members(zf):
        for key, value in _dataset("alpha").arrays().items():
            with zf.open(f"{key}.npy", "w") as fh:
                if key == "z":  # 2^20 x 2^20 float64 declared (8 TiB), 24 bytes held
                    fh.write(_header((1 << 20, 1 << 20)) + np.zeros(3).tobytes())
                else:
                    np.lib.format.write_array(fh, value)

    path = _archive_with(tree, "alpha", members)
    with pytest.raises(PbufDataError, match=r"declares a 1048576x1048576 float64 array \(8796093022208 bytes\) but "
                                            r"holds 24 bytes") as info:
        load_dataset("alpha", root=tree)
    assert info.value.file == str(path)


def test_a_compressed_archive_is_read_when_small(tree):
    def members(zf):
        for key, value in _dataset("alpha").arrays().items():
            with zf.open(zipfile.ZipInfo(f"{key}.npy"), "w") as fh:
                np.lib.format.write_array(fh, value)

    def deflated(zf):
        zf.compression = zipfile.ZIP_DEFLATED
        members(zf)

    _archive_with(tree, "alpha", deflated)
    np.testing.assert_array_equal(load_dataset("alpha", root=tree).observable, [300.0, 1500.0, 3000.0])


def test_a_deflated_member_inflating_to_3_gib_is_refused_unread(tree):
    """A 3 MiB deflated member of 3 GiB (a zip bomb): refused from the sizes the zip directory declares."""
    n = 3 * (1 << 30) // 8
    header = _header((n,))

    def bomb(zf):
        zf.compression = zipfile.ZIP_DEFLATED
        zf.compresslevel = 1
        for key, value in _dataset("alpha").arrays().items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                if key != "covariance_diagonal":
                    np.lib.format.write_array(fh, value)
                    continue
                fh.write(header)
                block = bytes(1 << 24)
                left = n * 8
                while left:
                    fh.write(block[:min(left, len(block))])
                    left -= min(left, len(block))

    path = _archive_with(tree, "alpha", bomb)
    assert path.stat().st_size < 16 << 20  # deflated: a few MiB
    with zipfile.ZipFile(path) as zf:
        assert sum(m.file_size for m in zf.infolist()) > 3 << 30
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PbufDataError, match=f"more than the {MAX_INFLATED_BYTES} read from a compressed archive"):
        load_dataset("alpha", root=tree)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 << 10  # KiB: nothing inflated


# -- verify and links ------------------------------------------------------------------------------------------------

@pytest.fixture
def project_tree(tmp_path, monkeypatch):
    """A project-like folder with one result tree whose manifest lists two published datasets."""
    root = tmp_path / "project"
    t = Tree("real")
    (root / t.staging).mkdir(parents=True)
    (root / t.derived).mkdir(parents=True)
    monkeypatch.chdir(root)
    for name in ("alpha", "beta"):
        _dataset(name).save(Path(t.staged(name, "npz")), Path(t.staged(name, "json")))
        record([t.staged(name, "npz"), t.staged(name, "json")], t.staged_sums(name))  # as the derive step does
        publish(t.staged(name, "npz"), t.staged(name, "json"), t.derived)
    manifest(t)
    assert verify_tree(root, t).ok
    return root, t


def test_verify_never_opens_a_listed_file_that_became_a_link_out_of_the_tree(project_tree, tmp_path):
    root, t = project_tree
    secret = tmp_path / "secret.txt"
    secret.write_text("outside content")
    secret.chmod(0)  # were it opened, the read would fail; were it hashed, its sha256 would be reported
    target = root / t.derived / "alpha.json"
    target.unlink()
    target.symlink_to(secret)
    report = verify_tree(root, t)
    assert not report.ok and not report.corrupted
    assert f"{t.derived}/alpha.json: {t.derived}/alpha.json is a symbolic link; published files are regular files " \
           "(not followed, not read)" in report.problems
    secret.chmod(0o600)


def test_verify_never_follows_a_linked_folder(project_tree, tmp_path):
    root, t = project_tree
    outside = tmp_path / "outside"
    shutil.copytree(root / t.derived / ".versions", outside)
    shutil.rmtree(root / t.derived / ".versions")
    (root / t.derived / ".versions").symlink_to(outside)
    report = verify_tree(root, t)
    assert not report.ok
    assert any(p.endswith(f"{t.derived}/.versions is a symbolic link; published files are regular files "
                          "(not followed, not read)") for p in report.problems)
    assert report.corrupted == [] and report.missing == []


def test_verify_does_not_block_on_a_fifo_listed_in_the_manifest(project_tree):
    root, t = project_tree
    target = root / t.derived / "alpha.json"
    target.unlink()
    os.mkfifo(target)
    report = verify_tree(root, t)  # would block forever on open() without O_NONBLOCK
    assert f"{t.derived}/alpha.json is not a regular file (not read)" in report.problems


# -- the files beside the published data --------------------------------------------------------------------------

def _flip(path: Path, offset: int = -10):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_bit_flips_in_staging_figures_and_backup_record_are_detected(project_tree):
    root, t = project_tree
    (root / t.report("alpha", "json")).parent.mkdir(parents=True, exist_ok=True)
    (root / t.report("alpha", "json")).write_text(json.dumps({"dataset": "alpha", "kind": "bao", "verdict": "passed",
                                                              "state": "published", "n_points": 3, "n_errors": 0,
                                                              "n_warnings": 0, "checks": []}))
    (root / t.plots).mkdir(parents=True)
    outputs = [t.plot("alpha", "observable"), t.plot("alpha", "correlation"), t.plot("alpha", "validation", "html"),
               t.plot("alpha", "provenance", "html"), t.plot("alpha", "document", "json")]
    (root / t.state).mkdir(parents=True)
    fiducial = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
    export_step(t, "alpha", fiducial, t.export_receipt("alpha"), *outputs)  # the exports, then the figures
    Path(t.backup_record).parent.mkdir(parents=True)
    Path(t.backup_record).write_text(json.dumps({"snapshot": "x.json", "files": 3}) + "\n")
    record([t.backup_record], t.backup_record_sums)
    clean = verify_other_files(root, t)
    assert clean.ok and clean.checked == 5 + 2 * 2 + 1, clean.lines()
    expected = subprocess.run(["sha256sum", "-c", t.figures_sums("alpha")], cwd=root, capture_output=True, text=True)
    assert expected.returncode == 0, expected.stdout  # the sums are sha256sum's own format
    for victim in (t.plot("alpha", "observable"), t.staged("beta", "json"), t.backup_record):
        _flip(root / victim)
    report = verify_other_files(root, t)
    assert sorted(p for p, _, _ in report.corrupted) == sorted(
        [t.plot("alpha", "observable"), t.staged("beta", "json"), t.backup_record])
    # staging is scratch: a deleted staged file is a note; a deleted figure is missing
    (root / t.staged("alpha", "npz")).unlink()
    (root / t.plot("alpha", "correlation")).unlink()
    report = verify_other_files(root, t)
    assert report.missing == [t.plot("alpha", "correlation")]
    assert any(n.startswith(f"{t.staged('alpha', 'npz')}: listed in") for n in report.notes)
    # Snakemake removes an export job's outputs, its receipt and figures, before it runs: a job that died before its
    # step began leaves the figures' sums without the figures; the receipt's absence says so
    (root / t.export_receipt("alpha")).unlink()
    report = verify_other_files(root, t)
    assert report.missing == [] and t.plot("alpha", "observable") in [p for p, _, _ in report.corrupted]
    assert f"{t.plot('alpha', 'correlation')}: listed in {t.figures_sums('alpha')} but deleted (its export job did " \
           "not finish: the next run makes it again)" in report.notes


def test_files_without_sums_are_named_not_passed_silently(project_tree):
    root, t = project_tree
    (root / t.plots).mkdir(parents=True)
    (root / t.plot("alpha", "observable")).write_bytes(b"\x89PNG old figure")
    report = verify_other_files(root, t)
    assert report.ok
    assert report.unchecked[0] == f"{t.plot('alpha', 'observable')}: no sums (written before they existed or by an " \
                                  "interrupted job; the next run that rewrites them records them)"
    assert report.unchecked[1].startswith(f"{t.logs}/ (logs")
    assert report.notes == []


# -- raw files -----------------------------------------------------------------------------------------------------

def test_an_unpinned_hard_link_to_an_outside_file_is_refused_unquoted(registry, writable_raw, tmp_path):
    """A hard link in the raw folder to a file outside it (allow_unpinned): refused before its content is parsed,
    so no error message quotes a line of it."""
    from pbuf_data.read.derive import derive_dataset

    secret = tmp_path / "secret.txt"
    secret.write_text("# z value\nSECRET-TOKEN-4711 not a number\n")
    entry = json.loads(json.dumps(registry["bao_6dfgs"]))
    del entry["files"]["table"]["sha256"]
    entry["files"]["table"]["allow_unpinned"] = True
    target = writable_raw / entry["files"]["table"]["path"]
    target.unlink()
    os.link(secret, target)
    with pytest.raises(PbufDataError, match="unpinned raw file has 2 hard links") as info:
        derive_dataset("bao_6dfgs", entry, writable_raw)
    assert "SECRET" not in str(info.value) and info.value.check == "hard link"
    target.unlink()
    shutil.copy(secret, target)  # a copy of its own: parsed, and the parse error may then quote it
    with pytest.raises(PbufDataError) as info:
        derive_dataset("bao_6dfgs", entry, writable_raw)
    assert info.value.check != "hard link"


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_manifest_or_sums_file_that_is_a_fifo_or_a_link_is_reported_without_blocking(project_tree, tmp_path, kind):
    root, t = project_tree
    for path in (root / t.derived_manifest, root / t.staged_sums("alpha")):
        kept = tmp_path / f"kept-{path.name}"
        shutil.move(path, kept)
        if kind == "fifo":
            os.mkfifo(path)  # no writer: a blocking open would wait for ever
        else:
            path.symlink_to(kept)
    why = "not a regular file (a folder, FIFO or device)" if kind == "fifo" else "it is a symbolic link (not followed)"
    assert any(f"cannot read the manifest: {why}" in p for p in verify_tree(root, t).problems)
    assert any(f"cannot read the manifest: {why}" in p for p in verify_other_files(root, t).problems)


@pytest.mark.workflow
def test_after_a_run_verify_checks_the_figures_staging_and_backup_record(project):
    """A finished real run: every figure, staged file and the backup record are covered by sums; a bit flip in
    each is reported by ``pbuf-data verify`` (and fails certification's verification the same way)."""
    t = Tree("real")
    report = verify_other_files(project, t)
    assert report.ok and len(report.unchecked) == 1 and report.unchecked[0].startswith(f"{t.logs}/")
    figures = [p for p in (project / t.plots).iterdir() if p.is_file()]
    staged = [p for p in (project / t.staging).iterdir() if p.is_file() and p.suffix != ".sha256"]
    assert figures and staged and report.checked == len(figures) + len(staged) + 1
    victims = [t.plot("cc_moresco", "observable"), t.staged("bao_desi_dr1", "npz"), t.backup_record]
    for rel in victims:
        _flip(project / rel, 200)
    proc = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(project), "verify"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1
    assert sorted(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("CORRUPTED")) == sorted(victims)
