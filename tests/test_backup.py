"""The backup store, restore and verify on small project trees (no workflow run): deduplication, project
identity, crafted snapshots, kills at chosen points. Hashes are checked with sha256sum and zstd."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.core.integrity import write_manifest
from pbuf_data.core.layout import Tree
from pbuf_data.publish.backup import RECORD, blob_path, create_backup, list_snapshots, project_id
from pbuf_data.publish.restore import restore
from pbuf_data.publish.verify import verify_project

TREE = Tree("real")  # the config of make_project says corpus: real
MANIFEST = TREE.derived_manifest
CONFIG = ["config/config.yaml"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def make_project(root: Path, seed: int = 0, big: int = 2 << 20) -> Path:
    """A published tree as the workflow leaves it: datasets, reports, their manifest, the configuration."""
    rng = __import__("random").Random(seed)
    files = {
        "results/real/derived/sn.npz": rng.randbytes(big),
        "results/real/derived/sn.json": json.dumps({"name": "sn", "seed": seed}).encode(),
        "results/real/derived/bao.npz": rng.randbytes(4000),
        "results/real/derived/bao.json": b'{"name": "bao"}',
        "results/real/validation/sn.txt": b"passed\n",
        "results/real/validation/bao.txt": b"passed\n",
        "config/config.yaml": f"corpus: real\nbackup: {{dir: data/backups, keep: 10}}\nseed: {seed}\n".encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "Snakefile").write_text("# a project folder: Snakefile and config/config.yaml\n")
    write_manifest(sorted(r for r in files if r.startswith("results/")), MANIFEST, root)
    return root


def backup(root, store="data/backups", keep=10):
    return create_backup(root, TREE, store, CONFIG, keep)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[:2] == ("data", "backups") or rel.parts[:3] == ("results", "real", "project") or (
                len(rel.parts) > 2 and rel.parts[2].startswith((".restore-", "restore-kept", "logs"))) or rel.parts[0] == ".snakemake":
            continue  # the store, the identity, what a restore keeps beside the tree, its audit record, the writer lock
        digest.update(str(rel).encode() + (b"->" + os.readlink(path).encode() if path.is_symlink() else b""))
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def store_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in store.rglob("*") if p.is_file())


def flip(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 1
    path.write_bytes(bytes(data))


@pytest.fixture
def proj(tmp_path):
    root = make_project(tmp_path / "proj")
    backup(root)
    return root


# -- the store -----------------------------------------------------------------------------------

def test_ten_unchanged_backups_cost_less_than_two(tmp_path):
    root = make_project(tmp_path / "p")
    backup(root)
    one = store_bytes(root / "data/backups")
    for _ in range(9):
        backup(root)
    ten = store_bytes(root / "data/backups")
    assert len(list_snapshots(root / "data/backups", root, TREE, project_id(root, TREE))) == 10
    assert ten < 2 * one, (one, ten)
    members = [root / MANIFEST, *(root / r for r in CONFIG), *root.glob("results/real/[dv]*/*")]
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in members}
    assert len(distinct) == 7  # 8 files, two reports alike: each content stored once
    assert {p.name.removesuffix(".zst") for p in (root / "data/backups/blobs").glob("*/*.zst")} == distinct


def test_store_is_checked_by_sha256sum_and_zstd(proj):
    store = proj / "data/backups"
    blobs = sorted(store.glob("blobs/*/*.zst"))
    assert blobs
    for blob in blobs:
        content = subprocess.run(["zstd", "-dc", str(blob)], capture_output=True, check=True).stdout
        out = subprocess.run(["sha256sum"], input=content, capture_output=True, check=True).stdout.decode()
        assert out.split()[0] == blob.name.removesuffix(".zst")
    folder = next((store / "snapshots").iterdir())
    check = subprocess.run("sha256sum -c *.sha256", shell=True, cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == 1, check.stdout + check.stderr
    record = subprocess.run(["sha256sum", "-c", str(proj / TREE.project / RECORD)], cwd=folder, capture_output=True, text=True)
    assert record.returncode == 0, record.stdout + record.stderr


def test_retention_prunes_snapshots_then_unreferenced_blobs(tmp_path):
    root = make_project(tmp_path / "p")
    shas = []
    for i in range(5):
        (root / "results/real/derived/bao.npz").write_bytes(f"version {i}".encode())
        write_manifest(sorted(str(p.relative_to(root)) for p in root.glob("results/real/[dv]*/*")), MANIFEST, root)
        shas.append(hashlib.sha256(f"version {i}".encode()).hexdigest())
        backup(root, keep=3)
    store = root / "data/backups"
    assert len(list_snapshots(store, root, TREE, project_id(root, TREE))) == 3
    present = {p.name.removesuffix(".zst") for p in store.glob("blobs/*/*.zst")}
    assert not set(shas[:2]) & present and set(shas[2:]) <= present
    assert len((root / TREE.project / RECORD).read_text().splitlines()) == 3
    assert verify_project(root, TREE, backup_dir="data/backups").ok


def test_corrupted_file_is_not_backed_up(proj):
    flip(proj / "results/real/derived/bao.npz")
    with pytest.raises(PbufDataError, match="not backing up corrupted data"):
        backup(proj)
    assert len(list_snapshots(proj / "data/backups", proj, TREE, project_id(proj, TREE))) == 1


def test_verify_finds_damaged_blobs_and_snapshots(proj):
    store = proj / "data/backups"
    sn = hashlib.sha256((proj / "results/real/derived/sn.npz").read_bytes()).hexdigest()
    flip(blob_path(store, sn), 5000)
    report = verify_project(proj, TREE, backup_dir="data/backups")
    assert not report.ok and [c[0] for c in report.corrupted] == [str(blob_path(store, sn))]
    assert report.parts["published"].ok and not report.parts["backups"].ok
    blob_path(store, sn).unlink()
    assert verify_project(proj, TREE, backup_dir="data/backups").missing == [str(blob_path(store, sn))]


# -- project identity ---------------------------------------------------------------------------------

def test_two_projects_share_one_store_and_stay_separate(tmp_path):
    store = tmp_path / "shared-disk" / "backups"
    a, b = make_project(tmp_path / "a", seed=1), make_project(tmp_path / "b", seed=2)
    b_first = backup(b, store)
    for _ in range(3):
        backup(a, store, keep=1)  # A prunes its own only
    assert project_id(a, TREE) != project_id(b, TREE)
    assert len(list_snapshots(store, a, TREE, project_id(a, TREE))) == 1
    assert [p.name for p in list_snapshots(store, b, TREE, project_id(b, TREE))] == [b_first["snapshot"]]
    assert verify_project(b, TREE, backup_dir=store).ok  # B's blobs survived A's pruning
    b_digest = tree_digest(b)
    flip(b / "results/real/derived/sn.npz")
    restore(b, TREE, store)
    assert tree_digest(b) == b_digest  # B got B's data back, not A's
    a_name = list_snapshots(store, a, TREE, project_id(a, TREE))[0].name
    with pytest.raises(PbufDataError, match="no snapshot .* of this project"):
        restore(b, TREE, store, a_name)
    listing = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(b), "backups", "--backup-dir", str(store)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC})
    assert listing.returncode == 0 and b_first["snapshot"] in listing.stdout and a_name not in listing.stdout
    assert "other projects in this store (not listed, never touched): 1" in listing.stdout


def test_a_project_that_lost_its_data_adopts_its_snapshots(tmp_path):
    store = tmp_path / "disk2"
    root = make_project(tmp_path / "p")
    backup(root, store)
    pid, clean = project_id(root, TREE), tree_digest(root)
    shutil.rmtree(root / "results")
    with pytest.raises(PbufDataError, match=f"projects in this store: {pid}.*pass --project ID"):
        restore(root, TREE, store)
    result = restore(root, TREE, store, project=pid)
    assert "sidecars" in result["trusted"] and tree_digest(root) == clean and project_id(root, TREE) == pid


@pytest.mark.parametrize("inside", ["results/real/derived", "results/real/derived/.versions", "results/real/validation/b", "results/real/manifests", "results/real/staging/x", "results/real/project", "results", ".", "config"])
def test_backup_dir_inside_the_data_tree_is_refused(proj, inside):
    with pytest.raises(PbufDataError, match=r"check 'backup.dir'.*overlaps"):
        backup(proj, inside)
    with pytest.raises(PbufDataError, match="overlaps"):
        restore(proj, TREE, inside)
    assert not verify_project(proj, TREE, backup_dir=inside).ok


# -- restore --------------------------------------------------------------------------------------

def test_restore_brings_back_exactly_the_published_tree(proj):
    clean = tree_digest(proj)
    mtimes = {p: p.stat().st_mtime_ns for p in proj.glob("results/real/[dmv]*/*")}
    flip(proj / "results/real/derived/sn.npz")
    (proj / "results/real/validation/bao.txt").unlink()
    (proj / "results/real/derived/stray.npz").write_bytes(b"x")
    result = restore(proj, TREE, "data/backups")
    assert result["restored"] == ["results/real/derived", "results/real/manifests", "results/real/validation"]
    assert tree_digest(proj) == clean
    assert result["kept"] == ["results/real/derived/stray.npz"]  # a user's file: named and kept, not deleted
    assert (proj / result["kept_in"] / "results/real/derived/stray.npz").read_bytes() == b"x"
    assert not list((proj / TREE.base).glob(".restore-*"))
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in (proj / "results/real/derived").iterdir())
    assert {p: p.stat().st_mtime_ns for p in proj.glob("results/real/[dmv]*/*")} == mtimes  # Snakemake sees what it wrote
    assert verify_project(proj, TREE, backup_dir="data/backups").ok


def test_restore_replaces_a_planted_folder_link_without_following_it(proj):
    clean = tree_digest(proj)
    shutil.rmtree(proj / "results/real/validation")
    (proj / "results/real/validation").symlink_to("..")
    restore(proj, TREE, "data/backups")
    assert (proj / "results/real/validation").is_dir() and not (proj / "results/real/validation").is_symlink()
    assert not (proj / "sn.txt").exists() and not (proj / "results/real/sn.txt").exists() and not (proj / "results/sn.txt").exists()
    assert tree_digest(proj) == clean


def _tamper(root, change, *, fix_record=True):
    """Rewrite the newest snapshot with ``change``; also its sidecar (and the project's record: full write access)."""
    store = root / "data/backups"
    path = list_snapshots(store, root, TREE, project_id(root, TREE))[-1]
    snapshot = json.loads(path.read_text())
    change(snapshot, store)
    data = (json.dumps(snapshot, indent=1) + "\n").encode()
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    Path(f"{path}.sha256").write_text(f"{digest}  {path.name}\n")
    if fix_record:
        (root / TREE.project / RECORD).write_text(f"{digest}  {path.name}\n")


def _add_blob(store, content: bytes) -> str:
    import zstandard

    sha = hashlib.sha256(content).hexdigest()
    blob_path(store, sha).parent.mkdir(parents=True, exist_ok=True)
    blob_path(store, sha).write_bytes(zstandard.ZstdCompressor().compress(content))
    return sha


def _replace_blob(store, entry):
    import zstandard

    blob_path(store, entry["sha256"]).write_bytes(zstandard.ZstdCompressor().compress(bytes(entry["size"])))


def _member(snapshot, path):
    return next(e for e in snapshot["files"] if e["path"] == path)


def _add_member(path, content=b"evil", **fields):
    def change(snapshot, store):
        snapshot["files"].append({"path": path, "sha256": _add_blob(store, content), "size": len(content), "mode": "0644",
                                  "mtime_ns": 0, **fields})
    return change


CRAFTED = {
    "symlink member": (lambda s, st: _member(s, "results/real/derived/bao.json").update(mode="120777"), "not a regular file"),
    "fifo member": (lambda s, st: _member(s, "results/real/derived/bao.json").update(mode="010644"), "not a regular file"),
    "link fields": (_add_member("results/real/derived/x.npz", type="symlink", target=".."), "regular files only"),
    "dotdot name": (_add_member("results/real/derived/../../escaped.txt"), "leaves its folder"),
    "absolute name": (_add_member("/tmp/escaped.txt"), "not a relative path"),
    "outside known folders": (_add_member("results/real/logs/planted.log"), "outside the folders a restore writes"),
    "unlisted member": (_add_member("results/real/derived/planted.npz"), "members the manifest does not list \\['results/real/derived/planted.npz'\\]"),
    "blob differs from its hash": (lambda s, st: _replace_blob(st, _member(s, "results/real/derived/bao.npz")), "does not match the snapshot"),
    "member differs from manifest": (lambda s, st: _member(s, "results/real/derived/bao.npz").update(sha256=_add_blob(st, bytes(4000))),
                                     "disagree: .*different sha256 \\['results/real/derived/bao.npz'\\]"),
    "size bomb": (lambda s, st: _member(s, "results/real/derived/bao.npz").update(size=10), "does not match the snapshot"),
    "listed twice": (lambda s, st: s["files"].append(dict(_member(s, "results/real/derived/bao.npz"))), "listed twice"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_snapshot_is_refused_and_nothing_changes(proj, case):
    change, message = CRAFTED[case]
    _tamper(proj, change)
    flip(proj / "results/real/derived/sn.npz")  # damage that a restore would repair
    before = tree_digest(proj)
    with pytest.raises(PbufDataError, match=message):
        restore(proj, TREE, "data/backups")
    assert tree_digest(proj) == before
    assert not list((proj / TREE.base).glob(".restore-*")) and not (proj.parent / "escaped.txt").exists()


def test_consistent_snapshot_that_the_project_did_not_write_is_refused(proj):
    """Member, manifest blob and sidecar replaced consistently: only the project's own record tells."""
    def swap_dataset(snapshot, store):
        new = b"forged dataset"
        entry = _member(snapshot, "results/real/derived/bao.npz")
        entry.update(sha256=_add_blob(store, new), size=len(new))
        manifest = "".join(f"{e['sha256']}  {e['path']}\n" for e in sorted(snapshot["files"], key=lambda e: e["path"])
                           if e["path"].startswith("results/") and e["path"] != MANIFEST).encode()
        _member(snapshot, MANIFEST).update(sha256=_add_blob(store, manifest), size=len(manifest))

    _tamper(proj, swap_dataset, fix_record=False)
    before = tree_digest(proj)
    with pytest.raises(PbufDataError, match="tampered"):
        restore(proj, TREE, "data/backups")
    assert tree_digest(proj) == before
    assert not verify_project(proj, TREE, backup_dir="data/backups").ok


# -- kills at chosen points -------------------------------------------------------------------------

def _run_killed(code: str, root: Path) -> None:
    """Run ``code`` in a fresh interpreter that dies (os._exit, as SIGKILL: no cleanup) where the code says."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC})
    assert proc.returncode == 9, proc.stdout + proc.stderr


def test_kill_between_folder_renames_is_finished_by_the_next_restore(proj):
    clean = tree_digest(proj)
    flip(proj / "results/real/derived/sn.npz")
    (proj / "results/real/validation/sn.txt").write_text("changed\n")
    _run_killed(
        "import os, pbuf_data.publish.restore as r\n"
        "real = os.replace\n"
        "def replace(a, b):\n"
        "    if str(a).endswith('new/results/real/manifests'): os._exit(9)\n"  # derived swapped in, manifests moved aside: mixed
        "    real(a, b)\n"
        "r.os.replace = replace\n"
        "r.restore('.', r.layout.Tree('real'), 'data/backups')\n",
        proj,
    )
    mixed = verify_project(proj, TREE, backup_dir="data/backups")
    assert not mixed.ok and any("interrupted while swapping" in p for p in mixed.problems)
    assert not (proj / "results/real/manifests").exists()
    finish = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(proj), "restore"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    newest = list_snapshots(proj / "data/backups", proj, TREE, project_id(proj, TREE))[-1].name
    assert finish.returncode == 0 and f"finished the interrupted restore of {newest}" in finish.stdout, finish.stdout + finish.stderr
    assert "verify OK" in finish.stdout
    assert tree_digest(proj) == clean and not list((proj / TREE.base).glob(".restore-*"))
    assert verify_project(proj, TREE, backup_dir="data/backups").ok


def test_kill_before_the_swap_changes_nothing_and_the_leftover_goes(proj):
    flip(proj / "results/real/derived/sn.npz")
    before = tree_digest(proj)
    _run_killed(
        "import os, pbuf_data.publish.restore as r\n"
        "def die(*a, **k): os._exit(9)\n"
        "r.write_text = die\n"  # the journal write: everything staged, nothing swapped
        "r.restore('.', r.layout.Tree('real'), 'data/backups')\n",
        proj,
    )
    assert tree_digest(proj) == before and list((proj / TREE.base).glob(".restore-*"))
    report = verify_project(proj, TREE, backup_dir="data/backups")
    assert any("leftover of a restore" in n for n in report.notes)
    restore(proj, TREE, "data/backups")
    assert not list((proj / TREE.base).glob(".restore-*")) and verify_project(proj, TREE).ok


@pytest.mark.parametrize("point", [".json.sha256", RECORD])
def test_kill_after_writing_a_snapshot_leaves_verify_passing(proj, point):
    first = list_snapshots(proj / "data/backups", proj, TREE, project_id(proj, TREE))
    _run_killed(
        "import os, pbuf_data.publish.backup as b\n"
        "real = b.write_text\n"
        "def write_text(path, text):\n"
        f"    if str(path).endswith({point!r}): os._exit(9)\n"
        "    real(path, text)\n"
        "b.write_text = write_text\n"
        f"b.create_backup('.', b.layout.Tree('real'), 'data/backups', {CONFIG!r}, 10)\n",
        proj,
    )
    report = verify_project(proj, TREE, backup_dir="data/backups")
    assert report.ok, report.lines()
    assert any("unconfirmed snapshot" in n for n in report.notes)
    assert list_snapshots(proj / "data/backups", proj, TREE, project_id(proj, TREE)) == first  # restore would use the last confirmed one
    result = backup(proj)
    assert len(result["cleaned"]) >= 1
    assert not verify_project(proj, TREE, backup_dir="data/backups").notes


def test_restore_with_config_puts_back_the_configuration_files_only(proj):
    config = proj / "config/config.yaml"
    original = config.read_bytes()
    config.write_text("edited: true\n")
    (proj / "config/README.md").write_text("not in any snapshot\n")
    restore(proj, TREE, "data/backups")
    assert config.read_text() == "edited: true\n"  # without --with-config the configuration stays
    restore(proj, TREE, "data/backups", with_config=True)
    assert config.read_bytes() == original and (proj / "config/README.md").exists()


def test_restore_is_refused_while_a_run_holds_the_writer_lock(proj):
    flip(proj / "results/real/derived/sn.npz")
    before = tree_digest(proj)
    # a run holds the project's writer lock, as every run does from its onstart
    holder = "from pbuf_data.publish import writer; writer.acquire('.', 'snakemake --cores 2'); print('held', flush=True); import time; time.sleep(60)"
    run = subprocess.Popen([sys.executable, "-c", holder], cwd=proj, stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": SRC})
    assert run.stdout.readline().strip() == "held"
    try:
        proc = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(proj), "restore"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": SRC})
    finally:
        run.kill()
        run.wait()
    assert proc.returncode == 1 and f"a run is in progress here (pid {run.pid}): snakemake --cores 2" in proc.stderr
    assert tree_digest(proj) == before


def test_damaged_record_and_journal_give_clear_errors(proj):
    (proj / TREE.project / RECORD).write_text("not a checksum line\n")
    report = verify_project(proj, TREE, backup_dir="data/backups")
    assert not report.ok and any(f"file '{proj / TREE.project / RECORD}', line 1, check 'manifest format'" in p for p in report.problems)
    with pytest.raises(PbufDataError, match="manifest format"):
        restore(proj, TREE, "data/backups")
    (proj / TREE.base / ".restore-x").mkdir()
    (proj / TREE.base / ".restore-x/journal.json").write_text("{truncated")
    with pytest.raises(PbufDataError, match="check 'restore journal'.*unreadable journal"):
        restore(proj, TREE, "data/backups")
