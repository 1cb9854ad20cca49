"""Operations: logs and audit trail, trends, health, certification, security, Python API, recovery."""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import N_REAL, Workflow, cli
from pbuf_data import PbufDataError, load_dataset, prepare_dataset, prepare_datasets
from pbuf_data.core.logs import append_lines, processing_trends

pytestmark = pytest.mark.workflow


# -- logs ------------------------------------------------------------------------------------------

def test_every_job_is_logged_and_audited(finished_run, registry):
    logs = finished_run / "results" / "real" / "logs"
    lines = (logs / "processing.log").read_text().splitlines()
    # every dataset x (derive-validate-publish, export with its figures) + summary + manifest + backup
    assert len(lines) == N_REAL * 2 + 3 and all(" SUCCESS " in line for line in lines)
    audit = [json.loads(line) for line in (logs / "audit.jsonl").read_text().splitlines()]
    assert len(audit) == len(lines)
    derive = {a["dataset"]: a for a in audit if a["rule"] == "derive_dataset"}
    assert set(derive) == set(registry)
    cc = derive["cc_moresco"]
    pins = {spec["sha256"] for spec in registry["cc_moresco"]["files"].values()}
    assert set(cc["inputs"].values()) == pins
    assert set(cc["outputs"]) == {"results/real/state/cc_moresco.json"}
    assert {"time", "user", "host", "software"} <= set(cc) and cc["software"]["snakemake"] == "9.27.1"
    summaries = list((logs / "transformations").glob("sn_pantheon_plus_processing_summary_*.json"))
    summary = json.loads(summaries[0].read_text())
    assert summary["points_in"] == 1701 and summary["points_out"] == 1590 and summary["status"] == "success"
    assert summary["peak_memory_mb"] > 10 and summary["warnings"]


def test_software_versions_are_read_once_and_handed_out_as_copies():
    import numpy
    import snakemake

    from pbuf_data.core.logs import software_versions

    first = software_versions()
    assert first["numpy"] == numpy.__version__ and first["snakemake"] == snakemake.__version__
    first["numpy"] = "changed by a caller"
    assert software_versions()["numpy"] == numpy.__version__


def _append_many(args):
    path, worker = args
    for i in range(200):
        append_lines(path, [json.dumps({"worker": worker, "i": i, "pad": "x" * 300})], rotate_bytes=None)


def test_parallel_appends_stay_well_formed(tmp_path):
    path = tmp_path / "audit.jsonl"
    # spawned, not forked: a fork of this multi-threaded process (pytest-xdist's threads, Snakemake's run in
    # it by other tests) can copy a lock another thread holds, and the child then waits for it forever
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        pool.map(_append_many, [(path, w) for w in range(8)])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 1600
    assert {(r["worker"], r["i"]) for r in records} == {(w, i) for w in range(8) for i in range(200)}


def test_aggregate_log_rotates_by_size(tmp_path):
    path = tmp_path / "processing.log"
    for i in range(100):
        append_lines(path, [f"line {i:03d} " + "x" * 90], rotate_bytes=2000, keep=3)
    kept = [path, Path(f"{path}.1"), Path(f"{path}.2"), Path(f"{path}.3")]
    assert all(p.exists() for p in kept) and not Path(f"{path}.4").exists()
    assert all(p.stat().st_size <= 2000 + 100 for p in kept)
    assert path.read_text().splitlines()[-1].startswith("line 099")


def test_trends_match_the_summaries(project):
    logs = project / "results" / "real" / "logs"
    source = next((logs / "transformations").glob("bao_6dfgs_*.json"))
    extra = json.loads(source.read_text()) | {"processing_duration": 2.5, "peak_memory_mb": 500.0, "status": "failed"}
    (source.parent / "bao_6dfgs_processing_summary_29990101T000000.json").write_text(json.dumps(extra))
    trends = processing_trends(logs)
    first = json.loads(source.read_text())
    assert trends["bao_6dfgs"]["runs"] == 2 and trends["bao_6dfgs"]["failures"] == 1
    assert trends["bao_6dfgs"]["max_duration_s"] == 2.5
    assert trends["bao_6dfgs"]["mean_peak_memory_mb"] == pytest.approx((first["peak_memory_mb"] + 500) / 2)
    out = cli(project, "trends")
    assert out.returncode == 0 and "bao_6dfgs" in out.stdout


# -- health and certification -------------------------------------------------------------------

def _set_config(root, **blocks):
    path = root / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for key, value in blocks.items():
        config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_health_exit_codes(project):
    _set_config(project, health={"memory_percent": 100, "disk_percent": 100, "cpu_percent": 100, "log_file_mb": 100})
    healthy = cli(project, "health", "--cpu-interval", "0.1")
    assert healthy.returncode == 0, healthy.stdout
    report = json.loads(healthy.stdout)
    assert report["system_resources"]["disk_path"] == str((project / "results" / "real").resolve())
    assert set(report["log_file_sizes"]) >= {"processing.log", "audit.jsonl"}
    _set_config(project, health={"memory_percent": 0, "disk_percent": 0, "cpu_percent": 100, "log_file_mb": 0.000001})
    alerts = cli(project, "health", "--cpu-interval", "0.1")
    assert alerts.returncode == 1
    kinds = json.loads(alerts.stdout)["alert_kinds"]
    assert {"memory", "disk", "logs"} <= set(kinds)
    (project / "config" / "config.yaml").write_text("raw_dir: [unclosed\n")
    broken = cli(project, "health")
    assert broken.returncode == 2 and "error" in json.loads(broken.stdout)


def _certify(root, raw_dir):
    proc = cli(root, "certify", "--raw-dir", str(raw_dir))
    report_file = proc.stdout.strip().rsplit("report: ", 1)[1].rstrip(")")
    report = json.loads(Path(report_file if Path(report_file).is_absolute() else root / report_file).read_text())
    return proc.returncode, {c["check"]: c["passed"] for c in report["checks"]}, report


def test_certification_passes_on_a_clean_installation(project, raw_dir):
    code, checks, report = _certify(project, raw_dir)
    assert code == 0 and report["certification_status"] == "CERTIFIED", checks
    assert len(checks) == 8 and all(checks.values())


def _break_raw(root, raw):
    path = raw / "bao_6dfgs" / "6dfgs_bao_beutler2011_TRANSCRIBED.txt"
    path.write_text(path.read_text() + "\n# edited\n")


BREAKERS = {
    "config_schema": lambda root, raw: _set_config(root, backup={"dir": "data/backups", "keep": 0}),
    "raw_files_match_pins": _break_raw,
    "datasets_derived_and_validated": lambda root, raw: (root / "results/real/validation/cc_moresco.json").write_text(
        json.dumps({"verdict": "failed"})
    ),
    "manifest_verified": lambda root, raw: (root / "results/real/derived/extra.txt").write_text("stray"),
    "backups_present_and_verified": lambda root, raw: [p.unlink() for p in (root / "data/backups/blobs").glob("*/*.zst")],
    "no_world_writable_files": lambda root, raw: os.chmod(root / "results/real/derived/bao_6dfgs.json", 0o666),
    "log_sizes": lambda root, raw: _set_config(
        root, health={"memory_percent": 100, "disk_percent": 100, "cpu_percent": 100, "log_file_mb": 0.000001}
    ),
    "health": lambda root, raw: _set_config(
        root, health={"memory_percent": 0, "disk_percent": 100, "cpu_percent": 100, "log_file_mb": 100}
    ),
}


@pytest.mark.parametrize("check", sorted(BREAKERS))
def test_certification_fails_when_one_check_is_broken(project, writable_raw, check):
    BREAKERS[check](project, writable_raw)
    code, checks, report = _certify(project, writable_raw)
    assert code == 1 and report["certification_status"] == "FAILED"
    assert checks[check] is False


# -- input security -------------------------------------------------------------------------------

def test_hostile_registry_path_is_refused_before_any_job(workflow, raw_dir):
    path = workflow.root / "config" / "registry.yaml"
    text = path.read_text().replace("path: bao_6dfgs/6dfgs", "path: ../../etc/6dfgs")
    path.write_text(text)
    proc = workflow.run("-n", "--config", f"raw_dir={raw_dir}", check=False)
    assert proc.returncode != 0
    assert "datasets.bao_6dfgs.files.table.path" in proc.stdout + proc.stderr


def test_symlink_escape_in_the_raw_folder_is_refused(workflow, writable_raw, tmp_path):
    outside = tmp_path / "outside.txt"
    target = writable_raw / "bao_6dfgs" / "6dfgs_bao_beutler2011_TRANSCRIBED.txt"
    shutil.copy(target, outside)
    target.unlink()
    target.symlink_to(outside)
    proc = workflow.run("--cores", "1", "--config", f"raw_dir={writable_raw}", check=False)
    assert proc.returncode != 0
    assert "dataset 'bao_6dfgs' (file 'bao_6dfgs/6dfgs_bao_beutler2011_TRANSCRIBED.txt', check 'path confinement')" in proc.stderr
    assert not (workflow.root / "results" / "real" / "derived" / "bao_6dfgs.npz").exists()


def test_oversized_raw_file_is_refused(workflow, writable_raw):
    _set_config(workflow.root, max_raw_bytes={"sn": 1000, "bao": 10_000_000, "cmb": 1_000_000, "cc": 1_000_000, "rsd": 1_000_000})
    # the refused SN release and one other dataset (that it goes on) make the claim; the rest of the corpus adds nothing
    proc = workflow.run("--cores", "1", "--config", f"raw_dir={writable_raw}", "datasets=[sn_pantheon_plus, bao_desi_dr1]",
                        check=False)
    assert "check 'size limit'" in proc.stderr and "sn_pantheon_plus" in proc.stderr
    assert (workflow.root / "results" / "real" / "derived" / "bao_desi_dr1.npz").exists()  # the others go on


def test_symlink_among_published_files_is_refused(project, raw_dir):
    (project / "results" / "real" / "derived" / "passwd.json").symlink_to("/etc/passwd")
    proc = Workflow(project).run("--cores", "1", "--forcerun", "manifest", "--config", f"raw_dir={raw_dir}", check=False)
    assert proc.returncode != 0 and "symbolic links among published files" in proc.stderr
    assert "symbolic link" in cli(project, "verify").stdout


def test_malicious_snapshot_is_refused(project):
    """A snapshot naming '../../escaped.txt', consistent with its sidecar and even with the project's record."""
    import hashlib

    import zstandard

    from pbuf_data.publish.backup import RECORD

    store = project / "data" / "backups"
    path = next((store / "snapshots").glob("*/*.json"))
    snapshot = json.loads(path.read_text())
    sha = hashlib.sha256(b"evil").hexdigest()
    (store / "blobs" / sha[:2]).mkdir(exist_ok=True)
    (store / "blobs" / sha[:2] / f"{sha}.zst").write_bytes(zstandard.ZstdCompressor().compress(b"evil"))
    snapshot["files"].append({"path": "results/real/derived/../../escaped.txt", "sha256": sha, "size": 4, "mode": "0644", "mtime_ns": 0})
    data = json.dumps(snapshot).encode()
    path.write_bytes(data)
    line = f"{hashlib.sha256(data).hexdigest()}  {path.name}\n"
    Path(f"{path}.sha256").write_text(line)
    (project / "results" / "real" / "project" / RECORD).write_text(line)
    proc = cli(project, "restore")
    assert proc.returncode == 1 and "snapshot refused" in proc.stderr and "Traceback" not in proc.stderr
    assert "leaves its folder" in proc.stderr
    assert not (project.parent / "escaped.txt").exists() and not (project / "escaped.txt").exists()


def test_published_files_are_0644_in_0755_folders(finished_run):
    for folder in ("results/real/derived", "results/real/validation", "results/real/state", "results/real/manifests",
                   "data/backups", "results/real/staging", "results/real/project"):
        path = finished_run / folder
        assert path.stat().st_mode & 0o777 == 0o755, folder
        for item in path.rglob("*"):  # derived/.versions/ included
            assert item.stat().st_mode & 0o777 == (0o755 if item.is_dir() else 0o644), item


# -- Python API and recovery ----------------------------------------------------------------------

def test_prepare_dataset_runs_only_stale_jobs(workflow, raw_dir):
    boss = prepare_dataset("bao_boss_dr12", root=workflow.root, raw_dir=raw_dir)
    assert boss.observable[0] == pytest.approx(10.2341, abs=5e-5)
    derived = workflow.root / "results" / "real" / "derived" / "bao_boss_dr12.npz"
    mtime = derived.stat().st_mtime_ns
    again = prepare_dataset("bao_boss_dr12", root=workflow.root, raw_dir=raw_dir)
    assert derived.stat().st_mtime_ns == mtime  # nothing was stale
    assert again.observable.tolist() == boss.observable.tolist()
    prepare_dataset("bao_boss_dr12", root=workflow.root, raw_dir=raw_dir, force=True)
    assert derived.stat().st_mtime_ns > mtime
    assert not (workflow.root / "results" / "real" / "derived" / "cc_moresco.npz").exists()


def test_batch_keeps_going_and_reports_per_dataset(workflow, writable_raw):
    table = writable_raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))
    results = prepare_datasets(["cc_moresco", "bao_6dfgs", "no_such_dataset"], root=workflow.root, raw_dir=writable_raw)
    assert results["bao_6dfgs"]["status"] == "success" and results["bao_6dfgs"]["data_points"] == 1
    assert results["cc_moresco"]["status"] == "failed"
    assert "check 'sha256 pin'" in results["cc_moresco"]["error"]
    assert results["no_such_dataset"]["status"] == "failed"
    with pytest.raises(PbufDataError, match="sha256 pin"):
        prepare_dataset("cc_moresco", root=workflow.root, raw_dir=writable_raw)


@pytest.mark.any_worker
def test_resume_after_a_killed_run(workflow):
    """Emergency procedure: the run is killed (SIGKILL) mid-way; the documented command completes it."""
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any((workflow.root / "results" / "mock" / "staging").glob("*.npz")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (workflow.root / "results" / "mock" / "manifests" / "derived.sha256").exists()  # killed before the end
    blocked = workflow.run("--cores", "2", check=False)
    assert blocked.returncode != 0 and "LockException" in blocked.stdout + blocked.stderr  # the stale lock
    resumed = cli(workflow.root, "resume", "--cores", "2")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "stale lock found" in resumed.stdout
    assert workflow.jobs() == {}
    assert cli(workflow.root, "verify").returncode == 0
    for name in yaml.safe_load((workflow.root / "config" / "registry_mock.yaml").read_text())["datasets"]:
        load_dataset(name, root=workflow.root, verify=True)


def test_reprocess_a_list_of_datasets(project, raw_dir):
    listing = project / "corrupted_list.txt"
    listing.write_text("# from verify\nbao_desi_dr1\ncc_moresco\n")
    before = {p.name: p.stat().st_mtime_ns for p in (project / "results" / "real" / "derived").glob("*.npz")}
    proc = cli(project, "reprocess", "--from-file", str(listing), "--raw-dir", str(raw_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--forcerun results/real/state/bao_desi_dr1.json results/real/state/cc_moresco.json" in proc.stdout
    after = {p.name: p.stat().st_mtime_ns for p in (project / "results" / "real" / "derived").glob("*.npz")}
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"bao_desi_dr1.npz", "cc_moresco.npz"}
    assert cli(project, "verify").returncode == 0
