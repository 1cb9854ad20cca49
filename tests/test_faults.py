"""Faults around a run: a restore killed between two folder renames, a full disk during the exports, an
aggregate log that cannot be written. Each ends with the tree whole and verify true, and no published job
reported failed."""

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_project
from pbuf_data.core import logs
from pbuf_data.core.layout import Tree
from pbuf_data.operate.joblog import run_step
from pbuf_data.publish.verify import verify_project

REAL = Tree("real")


def _digest(root: Path, tree: Tree) -> str:
    """Every file of the published folders and the manifests, with its path."""
    digest = hashlib.sha256()
    for unit in (*tree.watched, tree.manifests):
        for path in sorted((root / unit).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def _pbuf(root, *args, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(root), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


# -- an aggregate log that cannot be written ------------------------------------------------------------------------

def test_a_read_only_processing_log_does_not_fail_a_published_job(tmp_path, monkeypatch, capsys):
    real_open = open

    def refuse_processing_log(path, *args, **kwargs):
        if Path(path).name == "processing.log":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logs, "open", refuse_processing_log, raising=False)
    result = run_step(tmp_path / "job.log", lambda: "published", logs_dir=Path(REAL.logs), dataset="cc_moresco",
                      rule="derive_dataset")
    assert result == "published"  # the job succeeds: its work is done and recorded in the audit trail
    err = capsys.readouterr().err
    assert "WARNING: " in err and "processing.log" in err and "Read-only file system" in err
    audit = (tmp_path / REAL.logs / "audit.jsonl").read_text()
    assert '"status": "success"' in audit and '"dataset": "cc_moresco"' in audit
    assert "WARNING" in (tmp_path / "job.log").read_text()


# -- a restore killed between two folder renames ------------------------------------------------------------------

KILL_BETWEEN_RENAMES = (
    "import os, pbuf_data.publish.restore as r\n"
    "real = os.replace\n"
    "def replace(a, b):\n"
    "    if str(a).endswith('new/results/real/manifests'): os._exit(9)\n"  # derived swapped in, manifests aside
    "    real(a, b)\n"
    "r.os.replace = replace\n"
    "r.restore('.', r.layout.Tree('real'), 'data/backups')\n"
)


@pytest.mark.workflow
def test_resume_finishes_a_restore_killed_between_two_folder_renames(real_run):
    workflow, raw, cfg = real_run
    root = workflow.root
    clean = _digest(root, REAL)
    damaged = root / REAL.derived / "cc_moresco.json"
    damaged.write_bytes(damaged.read_bytes().replace(b'"cc_moresco"', b'"cc_moresc0"', 1))
    proc = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert not (root / REAL.manifests).exists()  # mixed: the manifests are neither old nor new
    # a run refuses to publish into the mixed tree, in one message
    refused = workflow.run("--cores", "1", "--config", cfg, check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout + refused.stderr
    assert "a restore was interrupted while swapping folders" in refused.stdout + refused.stderr
    assert not (root / REAL.manifests).exists()
    resumed = _pbuf(root, "resume", "--raw-dir", str(raw))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "finished the interrupted restore of " in resumed.stdout
    assert _digest(root, REAL) == clean and not list((root / REAL.base).glob(".restore-*"))
    assert verify_project(root, REAL, backup_dir="data/backups").ok


# -- a full disk during the exports -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mock_run(tmp_path_factory):
    """One finished run of the embedded default (mock surveys), copied by each test."""
    workflow = copy_project(tmp_path_factory.mktemp("mock-run") / "project")
    workflow.run("--cores", "2")
    return workflow.root


def _republishing_copy(mock_run: Path, root: Path, seed: int, **copy) -> None:
    """A copy of the finished mock run at ``root`` whose mock_cc_moresco (seed 32) is generated with ``seed``: the
    next run republishes that dataset with new content."""
    shutil.copytree(mock_run, root, symlinks=True, **copy)
    registry = root / "config" / "registry_mock.yaml"
    registry.write_text(registry.read_text().replace("mock: { seed: 32 }", f"mock: {{ seed: {seed} }}", 1))


def _mount_tmpfs(folder: Path, kib: int) -> None:
    """A tmpfs of ``kib`` KiB mounted on ``folder`` (root only: the test is skipped otherwise)."""
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")


def _run_filling_the_disk(root: Path, disk: Path) -> tuple[int, int, str]:
    """Start a run in ``root``, fill ``disk`` as soon as its first job is marked started, and wait for the run:
    (its exit status, the KiB left on the disk once filled, its output)."""
    state = root / ".snakemake"
    run = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=root,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while run.poll() is None and not any((state / "incomplete").glob("*")):
        time.sleep(0.005)
    with contextlib.suppress(OSError), open(disk / "filler", "wb", buffering=0) as filler:
        while True:  # until ENOSPC (unbuffered: every page is taken)
            filler.write(b"\0" * 4096)
    full = subprocess.run(["df", "--output=avail", str(disk)], capture_output=True, text=True).stdout.split()[-1]
    out = run.communicate(timeout=900)[0]
    (disk / "filler").unlink()
    return run.returncode, int(full), out


@pytest.mark.workflow
def test_a_full_disk_during_the_exports_leaves_verify_true(mock_run, tmp_path):
    """A dataset republished with new content, then the exports' folder fills up: the run fails naming the file,
    and verify knows every file that was republished or exported beside the failure (a full 'exports' tmpfs:
    needs root, skipped otherwise)."""
    root = tmp_path / "project"
    _republishing_copy(mock_run, root, 35)
    tree = Tree("mock")
    exports = root / tree.exports
    kept = tmp_path / "exports"
    shutil.copytree(exports, kept)
    used = sum(4 * -(-p.stat().st_size // 4096) for p in kept.iterdir())  # KiB in 4 KiB pages, as tmpfs counts
    _mount_tmpfs(exports, used + 4)
    try:
        for path in kept.iterdir():
            shutil.copy2(path, exports / path.name)
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=root, capture_output=True,
                              text=True, timeout=900)
        report = verify_project(root, tree)
    finally:
        subprocess.run(["umount", str(exports)], capture_output=True)
    assert proc.returncode != 0 and "No space left on device" in proc.stdout + proc.stderr
    assert report.ok, report.lines()
    assert "mock_cc_moresco" in (root / tree.derived_manifest).read_text()


@pytest.mark.workflow
def test_a_read_only_derived_folder_fails_publication_in_one_message(mock_run, tmp_path):
    """A dataset to republish into a derived/ on a read-only bind mount (needs root, skipped otherwise): its job
    fails naming the file, not as an internal error, and the summary says 'failed publication'."""
    root = tmp_path / "project"
    _republishing_copy(mock_run, root, 36)
    tree = Tree("mock")
    derived = root / tree.derived
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", str(derived), str(derived)],
                                           capture_output=True).returncode != 0:
        pytest.skip("a bind mount needs root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(derived)], check=True, capture_output=True)
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=root, capture_output=True,
                              text=True, timeout=900)
    finally:
        subprocess.run(["umount", str(derived)], capture_output=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "internal error" not in out
    assert "mock_cc_moresco" in out and "Read-only file system" in out
    summary = (root / tree.summary_txt).read_text()
    assert re.search(r"mock_cc_moresco +failed publication .*Read-only file system.*the previously published copy is "
                     r"kept", summary), summary
    assert all(p.read_bytes() == (mock_run / p.relative_to(root)).read_bytes() for p in derived.rglob("*") if p.is_file())
    assert verify_project(root, tree).ok


@pytest.mark.workflow
@pytest.mark.parametrize("previous", ["published", "none"])
def test_a_disk_filling_during_a_run_stops_it_in_one_message(mock_run, tmp_path, previous):
    """Snakemake's state folder .snakemake/ on a tmpfs that passes the start check and is filled up as soon as
    the first job is marked started (needs root, skipped otherwise), in a run that republishes a dataset of
    a published tree (Snakemake's records are rewritten in place) or in a first run (every record is new,
    whose failure ended in two error blocks and no onerror): the run stops with one message naming the
    folder, not Snakemake's traceback, the onerror handlers still run (verdict block), and verify finds
    every published file intact, what was published before byte for byte; the next run finishes the work."""
    root = tmp_path / "project"
    if previous == "published":
        _republishing_copy(mock_run, root, 37, ignore=shutil.ignore_patterns("log"))
    else:
        copy_project(root)
    tree = Tree("mock")
    state = root / ".snakemake"
    kept = tmp_path / "state"
    state.mkdir(exist_ok=True)
    shutil.move(state, kept)
    state.mkdir()
    files = [p for p in kept.rglob("*") if p.is_file()]
    used = sum(4 * -(-p.stat().st_size // 4096) for p in files) + 4 * sum(1 for p in kept.rglob("*") if p.is_dir())
    _mount_tmpfs(state, used + 256)
    try:
        shutil.copytree(kept, state, symlinks=True, dirs_exist_ok=True)
        returncode, full, out = _run_filling_the_disk(root, state)
        after = tmp_path / "after"
        shutil.copytree(state, after, symlinks=True)
    finally:
        subprocess.run(["umount", str(state)], capture_output=True)
    assert returncode != 0 and "Traceback" not in out, out
    assert full == 0, full  # the folder was full while the run went on
    lines = [line for line in out.splitlines() if "No space left on device" in line]
    assert len(lines) == 1 and lines[0].startswith(".snakemake: No space left on device "), out
    assert "pbuf-data: verdict for results/mock/" in out  # onerror ran
    checked = _pbuf(root, "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = verify_project(root, tree)
    assert report.ok, report.lines()
    if previous == "published":  # what was published before and not republished is byte for byte the same
        for path in (root / tree.derived).rglob("*"):
            if path.is_file() and "mock_cc_moresco" not in path.name:
                assert path.read_bytes() == (mock_run / path.relative_to(root)).read_bytes(), path
    # with room again, the next run finishes the work (a job without its record is run again) and verify agrees
    shutil.copytree(after, state, symlinks=True, dirs_exist_ok=True)
    again = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=root, capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert verify_project(root, tree).ok
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n"], cwd=root, capture_output=True, text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_a_job_log_that_cannot_be_flushed_does_not_fail_a_published_job(tmp_path, monkeypatch, capsys):
    """A job in Snakemake's process (``command`` given) whose own log's last lines cannot be flushed (a full
    disk): the job's outcome stands, with no traceback out of the log's closing."""
    def no_space(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logging.FileHandler, "flush", no_space)
    result = run_step(tmp_path / "job.log", lambda: "published", logs_dir=Path(REAL.logs), dataset="cc_moresco",
                      rule="derive_dataset", command="python3 scripts/derive_dataset.py")
    assert result == "published"
    audit = (tmp_path / REAL.logs / "audit.jsonl").read_text()
    assert '"status": "success"' in audit and '"dataset": "cc_moresco"' in audit


@pytest.mark.workflow
def test_a_project_disk_filling_during_a_run_ends_without_a_traceback(mock_run, tmp_path):
    """The whole project (results, raw mock files, .snakemake/) on a tmpfs filled up as soon as the first job
    of a republishing run is marked started (needs root, skipped otherwise): the jobs and Snakemake's state
    writes fail naming the disk's files, no traceback, and verify finds what was published intact."""
    disk = tmp_path / "disk"
    disk.mkdir()
    root = disk / "project"
    paths = [p for p in mock_run.rglob("*") if "log" not in p.relative_to(mock_run).parts[:2]]
    used = sum(4 * -(-p.stat().st_size // 4096) if p.is_file() else 4 for p in paths)  # KiB, as tmpfs counts
    _mount_tmpfs(disk, used + 1024)
    try:
        _republishing_copy(mock_run, root, 38, ignore=shutil.ignore_patterns("log"))
        returncode, full, out = _run_filling_the_disk(root, disk)
        checked = _pbuf(root, "verify")
        report = verify_project(root, Tree("mock"))
        unchanged = [p for p in (root / Tree("mock").derived).rglob("*") if p.is_file()
                     and p.read_bytes() != (mock_run / p.relative_to(root)).read_bytes()]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
    assert returncode != 0 and "Traceback" not in out and "internal error" not in out, out
    assert full < 64 and "No space left on device" in out, out  # filled (a job may free a page meanwhile)
    assert checked.returncode == 0 and report.ok, checked.stdout + checked.stderr
    assert unchanged == []  # the run stopped before the dataset to republish was published
