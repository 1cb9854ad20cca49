"""Which tree, built from what, written by whom: the tree's record of its registry and raw folder, the one writer
lock of a project, commands that refuse a mismatched corpus or an ambiguous tree, backups of copied projects and a
moved store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import N_REAL, PROJECT, Workflow, cli

SRC = str(PROJECT / "src")
pytestmark = pytest.mark.workflow


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and "logs" not in p.relative_to(folder).parts}


def test_the_tree_records_what_it_was_built_from(project, raw_dir):
    record = json.loads((project / "results/real/project/tree.json").read_text())
    assert record == {"corpus": "real", "mock": False, "registry": ["config/registry.yaml"], "raw_dir": str(raw_dir)}


def test_prune_of_the_real_tree_without_a_raw_folder_uses_its_own_registry(project, raw_dir):
    """Issue 31 case 5: `prune --corpus real --apply` with no raw_dir configured removed every real file."""
    config = yaml.safe_load((project / "config/config.yaml").read_text())
    assert not config["raw_dir"]  # nothing configured: only the tree knows its raw folder
    before = files_of(project / "results/real")
    proc = cli(project, "prune", "--corpus", "real", "--apply")
    assert proc.returncode == 0 and "nothing to prune" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"corpus 'real': results in results/real/, raw folder {raw_dir}")
    assert files_of(project / "results/real") == before
    assert cli(project, "verify").returncode == 0


def test_a_run_with_another_registry_is_refused_before_any_job(project, raw_dir):
    """Issue 31 case 6: a tree built from the real registry never receives mock datasets (and the other way)."""
    workflow = Workflow(project)
    before = files_of(project / "results/real")
    proc = workflow.run("--cores", "1", "--config", "corpus=real", "raw_dir=", check=False)  # raw folder from the record
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not list((project / "results/real/derived").glob("mock_*"))
    # a tree recorded as built from the mock surveys refuses a raw folder, and the other way round
    mock_tree = project / "results/mock/project"
    mock_tree.mkdir(parents=True)
    (mock_tree / "tree.json").write_text(json.dumps({"corpus": "mock", "mock": True, "registry": ["config/registry_mock.yaml"],
                                                     "raw_dir": "data/mock/raw"}))
    refused = workflow.run("--cores", "1", "--config", "corpus=mock", f"raw_dir={raw_dir}", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "results/mock/ was built from registry config/registry_mock.yaml and mock surveys" in output
    assert "Traceback" not in output and not (project / "results/mock/derived").exists()
    resumed = cli(project, "resume", "--corpus", "mock", "--raw-dir", str(raw_dir))
    assert resumed.returncode == 1 and "refusing to mix them" in resumed.stderr
    assert files_of(project / "results/real") == before


def test_prune_with_a_configured_subset_keeps_the_other_registered_datasets(project, raw_dir):
    """Issue 31 case 7: `datasets: [cc_moresco]` derives only one, and prune must not remove the ten others."""
    path = project / "config/config.yaml"
    path.write_text(path.read_text().replace("datasets: []", "datasets: [cc_moresco]", 1))
    assert "datasets: [cc_moresco]" in path.read_text()
    before = files_of(project / "results/real")
    proc = cli(project, "prune", "--raw-dir", str(raw_dir), "--apply")
    assert proc.returncode == 0 and "nothing to prune" in proc.stdout, proc.stdout + proc.stderr
    assert files_of(project / "results/real") == before
    assert len(list((project / "results/real/derived").glob("*.json"))) == N_REAL


def test_commands_not_told_a_corpus_name_the_trees(project):
    shutil.copytree(project / "results/real", project / "results/dr2")  # a second tree (same record but its name)
    record = json.loads((project / "results/dr2/project/tree.json").read_text())
    (project / "results/dr2/project/tree.json").write_text(json.dumps(record | {"corpus": "dr2"}))
    for command in ("restore", "prune"):
        proc = cli(project, command)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "several result trees: dr2 (raw folder" in proc.stderr and "real (raw folder" in proc.stderr
        assert "--corpus NAME" in proc.stderr and "Traceback" not in proc.stderr
    status = cli(project, "status", "--json")
    trees = json.loads(status.stdout)["trees"]  # only JSON on stdout
    assert sorted(trees) == ["dr2", "real"] and all(not any(reasons.values()) for reasons in trees.values())


def _hold_lock(root: Path, command: str) -> subprocess.Popen:
    code = (f"from pbuf_data.publish import writer; writer.acquire('.', {command!r}); print('held', flush=True); "
            "import time; time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_every_writer_waits_for_the_one_holding_the_lock(project, raw_dir):
    """Issue 31 case 12: runs of `pbuf-data reprocess` and of the API are seen by restore, prune, resume and
    Snakemake runs (they take one lock); the refusal names the PID and the command."""
    holder = _hold_lock(project, "pbuf-data reprocess cc_moresco")
    try:
        before = files_of(project / "results/real")
        for args in (("restore",), ("prune", "--apply"), ("resume",), ("reprocess", "cc_moresco")):
            proc = cli(project, *args)
            assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
            assert f"a run is in progress here (pid {holder.pid}): pbuf-data reprocess cc_moresco" in proc.stderr, args
        run = Workflow(project).run("--cores", "1", "--forcerun", "results/real/state/cc_moresco.json", check=False)
        assert run.returncode != 0 and f"(pid {holder.pid})" in run.stdout + run.stderr
        assert files_of(project / "results/real") == before
        status = cli(project, "status")
        assert f"a run is in progress in this project: pid {holder.pid}" in status.stdout
        health = json.loads(cli(project, "health", "--cpu-interval", "0.01").stdout)
        assert health["workflow"]["run_in_progress"]["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: the lock is free at once (the kernel released it), nothing to clean
    assert "in progress" not in cli(project, "status").stdout


def test_stop_ends_this_projects_run_and_nothing_else(workflow):
    """A run started here is stopped by `pbuf-data stop`; a process that merely looks like a run (same folder,
    'snakemake' in its command line) is left alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "snakemake"], cwd=workflow.root)
    run = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=workflow.root,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "in progress" not in (status := cli(workflow.root, "status")).stdout:
            assert time.monotonic() < deadline and run.poll() is None, status.stdout
            time.sleep(0.5)
        assert f"pid {run.pid}: snakemake --cores 1" in status.stdout
        stop = cli(workflow.root, "stop")
        assert stop.returncode == 0 and f"stopping pid {run.pid}" in stop.stdout, stop.stdout + stop.stderr
        assert run.wait(timeout=60) != 0
        assert bystander.poll() is None  # not ours: still running
        assert cli(workflow.root, "stop").stdout.strip() == "no run in progress in this project"
    finally:
        for proc in (run, bystander):
            proc.kill()
            proc.wait()
    resumed = cli(workflow.root, "resume", "--cores", "2")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert cli(workflow.root, "verify").returncode == 0


def test_restore_and_prune_leave_audit_records(project, raw_dir):
    registry = project / "config/registry.yaml"
    data = yaml.safe_load(registry.read_text())
    del data["datasets"]["bao_6dfgs"]
    registry.write_text(yaml.safe_dump(data, sort_keys=False))
    assert cli(project, "prune", "--apply").returncode == 0
    (project / "results/real/derived/notes.txt").write_text("my notes\n")  # a user's file where a restore swaps
    restored = cli(project, "restore", "--corpus", "real")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "kept 1 files the workflow did not write" in restored.stdout and "results/real/derived/notes.txt" in restored.stdout
    kept = list((project / "results/real/restore-kept").rglob("notes.txt"))
    assert len(kept) == 1 and kept[0].read_text() == "my notes\n"
    records = [json.loads(line) for line in (project / "results/real/logs/audit.jsonl").read_text().splitlines()]
    operations = [r for r in records if "operation" in r]
    assert [r["operation"] for r in operations] == ["prune", "restore"]
    assert sorted(operations[0]["removed"]) == ["bao_6dfgs"] and operations[0]["registry"] == ["config/registry.yaml"]
    assert operations[1]["kept"] == ["results/real/derived/notes.txt"] and operations[1]["snapshot"].endswith(".json")


def test_moving_the_backup_store_keeps_verify_true(project, tmp_path):
    """Issue 31 case 11: moving backup.dir to another disk, by the documented command."""
    target = tmp_path / "other-disk" / "backups"
    listed = cli(project, "backups").stdout
    moved = cli(project, "backups", "--move-to", str(target))
    assert moved.returncode == 0 and "moved the snapshots of real (" in moved.stdout, moved.stdout + moved.stderr
    config = yaml.safe_load((project / "config/config.yaml").read_text())
    assert config["backup"]["dir"] == str(target)
    assert not list((project / "data/backups/snapshots").glob("*/*.json"))  # nothing of ours left behind
    verify = cli(project, "verify")
    assert verify.returncode == 0 and "verify OK" in verify.stdout, verify.stdout
    assert cli(project, "backups").stdout.split("\n", 2)[2] == listed.split("\n", 2)[2]  # the same snapshots, checked
    (project / "results/real/derived/cc_moresco.npz").write_bytes(b"damaged")
    restored = cli(project, "restore")
    assert restored.returncode == 0 and "verify OK" in restored.stdout, restored.stdout + restored.stderr


def test_a_requeued_finished_job_republishes_nothing_unchanged(project):
    """Issue 31 case 13: a finished derive job run again (a cluster's requeue) on the same inputs: the published
    files stay byte for byte, so verify stays true although nothing after it ran (no new manifest)."""
    before = files_of(project / "results/real/derived")
    proc = Workflow(project).run("--cores", "1", "--forcerun", "results/real/state/cc_moresco.json",
                                 "--until", "derive_dataset")
    assert proc.returncode == 0
    log = (project / "results/real/logs/publish/cc_moresco.log").read_text()
    assert "equal to its published copy but for the time of derivation: nothing republished" in log
    assert files_of(project / "results/real/derived") == before
    verify = cli(project, "verify")
    assert verify.returncode == 0, verify.stdout


def test_a_mock_tree_is_taken_as_recorded_even_when_data_raw_holds_releases(tmp_path):
    """A tree recorded as built from the mock surveys, under a corpus name of its own, stays a mock tree for the
    commands that act on every tree (verify, status), although data/raw now holds a release."""
    from pbuf_data.operate.project import Project

    root = tmp_path / "project"
    shutil.copytree(PROJECT / "config", root / "config")
    shutil.copy(PROJECT / "Snakefile", root / "Snakefile")
    Project(root, {**yaml.safe_load((root / "config" / "config.yaml").read_text()), "corpus": "mock2"}).record_tree()
    (root / "data" / "raw" / "cc_moresco").mkdir(parents=True)
    (root / "data" / "raw" / "cc_moresco" / "HzTable_MM_BC32.txt").write_text("0.07 69.0 19.6\n")
    tree = Project.for_tree(root, "mock2")
    assert tree.use_mock and not tree.default_raw and tree.registry_files == ["config/registry_mock.yaml"]
    assert not Project.open(root).use_mock  # a project not told a corpus takes the releases of data/raw
