"""Daily use: one verdict per run, previews that agree by content, --config values as the schema types them,
a missing raw folder said once, the API leaving the tree consistent, a command line that behaves like one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from conftest import N_REAL, PROJECT, Workflow, cli
from pbuf_data.core import layout
from pbuf_data.core.logs import KEEP_SUMMARIES, write_processing_summary
from pbuf_data.operate.ops import check_health

pytestmark = pytest.mark.workflow


def _status(root, cfg_raw):
    proc = cli(root, "status", "--raw-dir", str(cfg_raw), "--json")
    assert proc.returncode == 0, proc.stderr
    return {name: reasons for name, reasons in json.loads(proc.stdout).items() if reasons}


def _derive_jobs(workflow, raw):
    return workflow.jobs("--config", f"raw_dir={raw}").get("derive_dataset", 0)


def test_staleness_is_by_content_and_both_previews_agree(real_run, tmp_path):
    """cp -r (same bytes, new times), move, touch: nothing to redo; a changed byte: its dataset only; an option
    change: its dataset only — in `snakemake -n` and in `pbuf-data status` alike."""
    workflow, raw, cfg = real_run
    copy = tmp_path / "raw-copy"
    shutil.copytree(raw, copy, copy_function=shutil.copy)  # new modification times
    later = time.time() + 60
    for path in copy.rglob("*"):
        os.utime(path, (later, later))
    assert workflow.jobs("--config", f"raw_dir={copy}") == {} and _status(workflow.root, copy) == {}
    moved = tmp_path / "moved" / "raw"
    moved.parent.mkdir()
    copy.rename(moved)
    assert workflow.jobs("--config", f"raw_dir={moved}") == {} and _status(workflow.root, moved) == {}
    table = moved / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))
    jobs = workflow.jobs("--config", f"raw_dir={moved}")
    assert jobs.get("derive_dataset") == 1 and jobs.get("export_dataset") == 1
    stale = _status(workflow.root, moved)
    assert list(stale) == ["cc_moresco"] and "raw file cc_moresco/HzTable_MM_BC32.txt changed" in stale["cc_moresco"][0]
    table.write_text(table.read_text().replace("0.07 69.5 19.6", "0.07 69.0 19.6"))  # back: nothing to redo
    assert workflow.jobs("--config", f"raw_dir={moved}") == {} and _status(workflow.root, moved) == {}
    path = workflow.root / "config" / "registry.yaml"
    registry = yaml.safe_load(path.read_text())
    registry["datasets"]["cc_moresco"]["options"]["systematics"] = ["IMF", "mod"]
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    assert _derive_jobs(workflow, moved) == 1
    said = "option systematics changed: ['IMF', 'mod_ooo'] -> ['IMF', 'mod']"
    assert _status(workflow.root, moved) == {"cc_moresco": [said]}
    # the dry run names the option with both values in one short line; no line of it runs to thousands of
    # characters (Snakemake's own reason shows a digest of the job's parameters, long file lists are cut)
    preview = workflow.run("-n", "--config", f"raw_dir={moved}")
    lines = (preview.stdout + preview.stderr).splitlines()
    assert f"pbuf-data: cc_moresco: {said}" in lines
    assert len([line for line in lines if "reason: Params have changed" in line]) == 1  # the derive job's
    assert max(map(len, lines)) <= 300, max(lines, key=len)
    verbose = workflow.run("-n", "--verbose", "--config", f"raw_dir={moved}")
    assert max(map(len, (verbose.stdout + verbose.stderr).splitlines())) > 300  # --verbose: whole file lists
    config = workflow.root / "config" / "config.yaml"
    text = config.read_text()
    assert "condition_warn: 1.0e+10" in text
    config.write_text(text.replace("condition_warn: 1.0e+10", "condition_warn: 1.0e+9", 1))  # a configuration change
    assert _derive_jobs(workflow, moved) == N_REAL
    stale = _status(workflow.root, moved)
    assert len(stale) == N_REAL and all("validation thresholds changed in config: condition_warn 10000000000.0 -> "
                                        "1000000000.0" in reasons for reasons in stale.values())


def test_config_values_from_the_command_line_take_the_schemas_types(workflow):
    proc = workflow.run("-n", "--config", "retrieve=false", "max_raw_bytes={cmb: 2000000}", "--quiet", "rules", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = workflow.run("-n", "--config", "retrieve=maybe", check=False)
    assert bad.returncode != 0 and "config 'retrieve': 'maybe' is not boolean: write true or false" in bad.stdout + bad.stderr
    number = workflow.run("-n", "--config", "max_raw_bytes={cmb: 2MB}", check=False)
    assert "config 'max_raw_bytes.cmb': '2MB' is not integer: write a whole number such as 2000000" in number.stdout + number.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_missing_raw_folder_is_one_message_before_anything_runs(project, tmp_path):
    before = {str(p): p.stat().st_mtime_ns for p in (project / "results").rglob("*")}
    missing = tmp_path / "typo" / "raw"
    proc = Workflow(project).run("--cores", "1", "--config", f"raw_dir={missing}", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"raw folder {missing} does not exist" in output, output
    assert "Traceback" not in output and "download" not in output.replace("To download every raw file", "")
    assert len(output.splitlines()) < 15
    assert {str(p): p.stat().st_mtime_ns for p in (project / "results").rglob("*")} == before


def test_a_run_ends_with_one_verdict_block_and_a_snapshot_of_what_it_published(real_run):
    """Issue 30 item 1 and issue 31 case 9: one dataset fails, another is republished: the verdict names both,
    the run prints tens of lines, not hundreds, and a snapshot holds the republished dataset."""
    workflow, raw, cfg = real_run
    root = workflow.root
    snapshots = root / "data/backups/snapshots"
    before = sorted(snapshots.glob("*/*.json"))
    table = raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))  # breaks its pin
    proc = workflow.run("--cores", "2", "--config", cfg, "--forcerun", "results/real/state/bao_6dfgs.json", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and len(output.splitlines()) < 80, output
    verdict = output[output.index("pbuf-data: verdict for results/real/"):].splitlines()
    assert verdict[0] == (f"pbuf-data: verdict for results/real/: {N_REAL - 1} of {N_REAL} published "
                          f"(1 derived by this run, {N_REAL - 2} as before), 1 failed, 0 not run")
    assert verdict[1].startswith("  cc_moresco: failed derive: dataset 'cc_moresco' (file 'cc_moresco/HzTable_MM_BC32.txt'")
    assert verdict[1].endswith("; previous copy kept (log: results/real/logs/derive/cc_moresco.log)")
    assert "check 'sha256 pin'" in (root / "results/real/logs/derive/cc_moresco.log").read_text()
    assert verdict[2] == "  derived by this run: bao_6dfgs"
    assert "Select jobs to execute" not in output and "localrule" not in output
    after = sorted(snapshots.glob("*/*.json"))
    assert len(after) == len(before) + 1
    newest = json.loads(after[-1].read_text())
    documents = {e["path"]: e["sha256"] for e in newest["files"]}
    import hashlib

    assert documents["results/real/derived/bao_6dfgs.json"] == hashlib.sha256(
        (root / "results/real/derived/bao_6dfgs.json").read_bytes()).hexdigest()
    assert cli(root, "verify").returncode == 0
    full = workflow.run("--cores", "1", "--config", cfg, "--verbose", "--forcerun", "results/real/state/bao_6dfgs.json",
                        check=False)
    assert "localrule" in full.stdout + full.stderr or "rule derive_dataset" in full.stdout + full.stderr  # one flag away


def test_prepare_dataset_leaves_verify_and_certify_passing(project, raw_dir):
    from pbuf_data import prepare_dataset

    dataset = prepare_dataset("bao_desi_dr1", force=True, root=project)
    assert len(dataset) == 12
    verify = cli(project, "verify")
    assert verify.returncode == 0, verify.stdout
    proc = cli(project, "certify", "--raw-dir", str(raw_dir))
    report_file = proc.stdout.strip().rsplit("report: ", 1)[1].rstrip(")")
    checks = {c["check"]: c["passed"] for c in json.loads(Path(report_file).read_text())["checks"]}
    assert checks["manifest_verified"] and checks["backups_present_and_verified"] and checks["datasets_derived_and_validated"]


def test_the_command_line_behaves_like_one(project, tmp_path):
    done = cli(project, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"pbuf-data {version('pbuf-data')}"
    before, after = cli(project, "--corpus", "real", "verify"), cli(project, "verify", "--corpus", "real")
    assert before.returncode == after.returncode == 0 and before.stdout == after.stdout
    root_after = subprocess.run([sys.executable, "-m", "pbuf_data", "verify", "--root", str(project)], capture_output=True,
                                text=True, cwd=tmp_path)
    assert root_after.returncode == 0 and root_after.stdout == before.stdout
    for args in (("status", "--json"), ("verify", "--json"), ("trends", "--json")):
        proc = cli(project, *args)
        json.loads(proc.stdout)  # only JSON on stdout
    outside = subprocess.run([sys.executable, "-m", "pbuf_data", "health"], capture_output=True, text=True, cwd=tmp_path)
    assert outside.returncode == 2 and "not a pbuf-data project" in json.loads(outside.stdout)["error"]
    unknown = cli(project, "trends", "--corpus", "nosuch")
    assert unknown.returncode == 2 and "no result tree results/nosuch/" in unknown.stderr and unknown.stdout == ""
    usage = cli(project, "verify", "--no-such-option")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_health_alerts_on_sustained_load_only(project, monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 100.0)  # a moment's peak
    monkeypatch.setattr(os, "getloadavg", lambda: (4.0 * psutil.cpu_count(), 0.1, 0.1))  # one busy minute
    limits = {"memory_percent": 100, "disk_percent": 100, "cpu_percent": 90, "log_file_mb": 1000}
    quiet = check_health(project, layout.Tree("real"), limits | {"cpu_window_minutes": 15}, cpu_interval=0)
    assert "cpu" not in quiet["alert_kinds"] and quiet["system_resources"]["cpu_percent"] == 100.0
    busy = check_health(project, layout.Tree("real"), limits | {"cpu_window_minutes": 1}, cpu_interval=0)
    assert "cpu" in busy["alert_kinds"] and "over 1 min" in busy["alerts"][busy["alert_kinds"].index("cpu")]


def test_processing_summaries_and_the_audit_log_rotate(tmp_path):
    from pbuf_data.core.logs import AUDIT_KEEP, ROTATE_BYTES, audit_operation

    for i in range(KEEP_SUMMARIES + 5):
        write_processing_summary({"dataset": "cc_moresco", "run": i}, tmp_path)
    write_processing_summary({"dataset": "cc_moresco_b", "run": 0}, tmp_path)  # a name sharing the prefix: its own
    kept = sorted((tmp_path / "transformations").glob("cc_moresco_processing_summary_*.json"))
    assert len(kept) == KEEP_SUMMARIES and json.loads(kept[0].read_text())["run"] == 5
    assert len(list((tmp_path / "transformations").glob("cc_moresco_b_processing_summary_*.json"))) == 1
    audit = tmp_path / "audit.jsonl"
    audit.write_text("x" * (ROTATE_BYTES + 1) + "\n")
    audit_operation(tmp_path, "restore", {"snapshot": "s.json"})
    assert (tmp_path / "audit.jsonl.1").stat().st_size > ROTATE_BYTES and AUDIT_KEEP >= 10
    assert json.loads(audit.read_text())["operation"] == "restore"


def test_a_copied_project_gets_its_own_backup_identity(tmp_path):
    """Issue 31 case 10: `cp -a A B`, both backing up into one store: neither deletes the other's snapshots."""
    from test_backup import TREE, backup, make_project

    from pbuf_data.publish.backup import list_snapshots, project_id

    store = tmp_path / "shared" / "backups"
    a = make_project(tmp_path / "a")
    first = backup(a, store)
    b = tmp_path / "b"
    shutil.copytree(a, b, symlinks=True)  # cp -a: the identity is copied too
    assert project_id(b, TREE) == project_id(a, TREE)
    b_first = backup(b, store, keep=1)
    assert project_id(b, TREE) != project_id(a, TREE) == first["project"]
    assert json.loads((b / TREE.project / "identity.json").read_text())["copied_from"] == first["project"]
    backup(a, store, keep=1)
    backup(a, store, keep=1)
    assert [p.name for p in list_snapshots(store, b, TREE, project_id(b, TREE))] == [b_first["snapshot"]]
    moved = tmp_path / "moved-a"
    a.rename(moved)  # a move keeps its identity
    again = backup(moved, store)
    assert again["project"] == first["project"]


def test_readme_datasets_table_is_what_a_run_publishes(project):
    """Every dataset a real run publishes, with its point count, is a row of the README's table, and only those."""
    text = (PROJECT / "README.md").read_text()
    table = text[text.index("## Datasets"):text.index("Conversions are linear")]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = int(cells[3])
    summary = json.loads((project / "results/real/validation/summary.json").read_text())
    published = {name: item["n_points"] for name, item in summary["datasets"].items() if item["state"] == "published"}
    assert len(published) == N_REAL and rows == published


def test_readme_commands_exist():
    """Every `pbuf-data <command>` the README and the operations guide name is a command of the CLI."""
    import re

    from pbuf_data.operate.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for doc in ("README.md", "docs/OPERATIONS.md"):
        named = set(re.findall(r"pbuf-data ([a-z]+)\b", (PROJECT / doc).read_text())) - {"data"}
        assert named <= commands, (doc, named - commands)
    assert "stop" in commands and "pbuf-data run" not in (PROJECT / "README.md").read_text()
