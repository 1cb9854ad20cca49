"""Manifests, verify, backups and restore — including the operations document's corruption drill."""

import hashlib
import json
import os
import subprocess

import pytest

from conftest import N_REAL, Workflow, cli

pytestmark = pytest.mark.workflow


def flip_byte(path, offset=300):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted([*(root / "data").rglob("*"), *(root / "results").rglob("*")]):
        if path.is_file() and "logs" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_manifest_is_accepted_by_sha256sum(project):
    proc = subprocess.run(["sha256sum", "-c", "results/real/manifests/derived.sha256"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # per dataset npz, its versioned archive, json, report json, report txt; summary json, txt; and the exports
    listed = (project / "results/real/manifests/derived.sha256").read_text().splitlines()
    exports = [line for line in listed if "  results/real/exports/" in line]
    assert len(exports) >= 2 * N_REAL  # at least each dataset's Cobaya YAML and SACC file
    assert proc.stdout.count(": OK") == len(listed) == N_REAL * 5 + 2 + len(exports)
    snapshot = newest_snapshot(project)
    proc = subprocess.run(["sha256sum", "-c", snapshot.name + ".sha256"], cwd=snapshot.parent, capture_output=True, text=True)
    assert proc.returncode == 0
    files = {e["path"]: e for e in json.loads(snapshot.read_text())["files"]}
    assert "config/registry.yaml" in files and "results/real/manifests/derived.sha256" in files
    sn = files["results/real/derived/sn_pantheon_plus.npz"]
    blob = project / "data" / "backups" / "blobs" / sn["sha256"][:2] / f"{sn['sha256']}.zst"
    content = subprocess.run(["zstd", "-dc", str(blob)], capture_output=True, check=True).stdout
    assert hashlib.sha256(content).hexdigest() == sn["sha256"] and len(content) == sn["size"]
    assert content == (project / "results/real/derived/sn_pantheon_plus.npz").read_bytes()


def newest_snapshot(root):
    return sorted((root / "data" / "backups" / "snapshots").glob("*/*.json"))[-1]


def sn_blob(root):
    sha = hashlib.sha256((root / "results/real/derived/sn_pantheon_plus.npz").read_bytes()).hexdigest()
    return root / "data" / "backups" / "blobs" / sha[:2] / f"{sha}.zst"


def test_clean_tree_verifies(project, raw_dir):
    proc = cli(project, "verify", "--raw-dir", str(raw_dir))
    assert proc.returncode == 0, proc.stdout
    assert "verify OK" in proc.stdout


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda r: flip_byte(r / "results/real/derived/bao_desi_dr1.npz"), "CORRUPTED  results/real/derived/bao_desi_dr1.npz"),
        (lambda r: flip_byte(r / "results/real/validation/cc_moresco.txt", 5), "CORRUPTED  results/real/validation/cc_moresco.txt"),
        (lambda r: (r / "results/real/derived/rsd_fsigma8.json").unlink(), "MISSING    results/real/derived/rsd_fsigma8.json"),
        (lambda r: (r / "results/real/derived/stray.npz").write_bytes(b"x"), "EXTRA      results/real/derived/stray.npz"),
        (lambda r: flip_byte(sn_blob(r), 1000), "CORRUPTED"),
        (lambda r: flip_byte(newest_snapshot(r), 100), "CORRUPTED"),
        (lambda r: (r / "results/real/manifests/derived.sha256").write_text("garbage\n"), "PROBLEM"),
        # planted in the published folders: a folder, a FIFO, a hidden file, an unlisted versioned archive
        (lambda r: (r / "results/real/derived/planted").mkdir(), "results/real/derived/planted is a folder"),
        (lambda r: os.mkfifo(r / "results/real/validation/planted.txt"), "results/real/validation/planted.txt is not a regular file"),
        (lambda r: (r / "results/real/derived/.hidden.npz").write_bytes(b"x"), "EXTRA      results/real/derived/.hidden.npz"),
        (lambda r: (r / "results/real/derived/.versions/x-0000000000000000.npz").write_bytes(b"x"),
         "EXTRA      results/real/derived/.versions/x-0000000000000000.npz"),
        (lambda r: (r / "results/real/exports/bao_desi_dr1.sacc.fits").write_bytes(b"x"), "CORRUPTED  results/real/exports/bao_desi_dr1.sacc.fits"),
    ],
)
def test_verify_catches_every_injected_fault(project, damage, expected):
    damage(project)
    proc = cli(project, "verify")
    assert proc.returncode == 1
    assert expected in proc.stdout, proc.stdout


def test_corruption_drill_verify_restore_verify(project, raw_dir):
    """Operations document, data-corruption response: detect, restore from backup, verify."""
    clean = tree_digest(project)
    flip_byte(project / "results" / "real" / "derived" / "sn_pantheon_plus.npz", 12345)
    before = cli(project, "verify")
    assert before.returncode == 1 and "results/real/derived/sn_pantheon_plus.npz" in before.stdout
    restored = cli(project, "restore")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "verify OK" in restored.stdout
    assert cli(project, "verify").returncode == 0
    assert tree_digest(project) == clean
    assert not list((project / "results" / "real").glob(".restore-*"))
    assert Workflow(project).jobs("--config", f"raw_dir={raw_dir}") == {}  # restored as written: nothing to redo


def test_corrupted_backup_is_refused_and_nothing_changes(project):
    flip_byte(project / "results" / "real" / "derived" / "cc_moresco.npz")
    blob = sn_blob(project)
    flip_byte(blob, 2000)
    before = tree_digest(project)
    proc = cli(project, "restore")
    assert proc.returncode == 1
    assert "does not match the snapshot" in proc.stderr and blob.name in proc.stderr and "Traceback" not in proc.stderr
    assert tree_digest(project) == before
    snapshot = newest_snapshot(project)
    flip_byte(snapshot, 50)
    before = tree_digest(project)
    proc = cli(project, "restore", snapshot.name)
    assert proc.returncode == 1 and "corrupted or tampered with" in proc.stderr and snapshot.name in proc.stderr
    assert tree_digest(project) == before and not list((project / "results" / "real").glob(".restore-*"))


def test_unchanged_backups_of_the_real_corpus_share_their_blobs(project):
    from pbuf_data.core.errors import PbufDataError
    from pbuf_data.core.layout import Tree
    from pbuf_data.publish.backup import create_backup, list_snapshots, project_id

    tree = Tree("real")

    backups = project / "data" / "backups"
    one = sum(p.stat().st_size for p in backups.rglob("*") if p.is_file())
    config = [e["path"] for e in json.loads(newest_snapshot(project).read_text())["files"] if e["path"].startswith("config/")]
    for _ in range(9):  # as the workflow's backup rule does after each run that changed nothing
        record = create_backup(project, tree, "data/backups", config, keep=10)
        assert record["new_blobs"] == 0
    ten = sum(p.stat().st_size for p in backups.rglob("*") if p.is_file())
    assert ten < 2 * one
    # README: about 1 MB for the first snapshot of the real corpus, about 44 kB (its index) for each further one
    assert 0.9e6 < one < 1.2e6, one
    assert 35e3 < (ten - one) / 9 < 55e3, (ten - one) / 9
    members = json.loads(newest_snapshot(project).read_text())["files"]
    distinct = {hashlib.sha256((project / e["path"]).read_bytes()).hexdigest() for e in members}
    assert {p.name.removesuffix(".zst") for p in backups.glob("blobs/*/*.zst")} == distinct  # each content once
    assert len(list_snapshots(backups, project, tree, project_id(project, tree))) == 10
    flip_byte(project / "results" / "real" / "derived" / "bao_6dfgs.json", 10)
    with pytest.raises(PbufDataError, match="not backing up corrupted data"):
        create_backup(project, tree, "data/backups", [], keep=2)
    assert len(list_snapshots(backups, project, tree, project_id(project, tree))) == 10
    assert not list(backups.rglob(".*.tmp"))
