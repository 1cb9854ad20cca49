"""End to end: Snakemake on the real corpus in a temporary copy of the project.

Covers the staleness promises: a second run does nothing, touching a raw file
reruns nothing, editing one raw file or one dataset's option reruns only that
dataset, and a failing dataset leaves every published file byte-identical.
"""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import yaml

from conftest import N_REAL
from pbuf_data import PbufDataError, load_dataset
from pbuf_data.publish.validation import PARALLEL_FROM_BYTES

pytestmark = pytest.mark.workflow


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()}


# real_run (conftest): a private copy of the session's finished real-corpus run, its raw folder writable


def test_real_corpus_end_to_end(real_run, registry):
    workflow, _, cfg = real_run
    root = workflow.root
    for name in registry:
        dataset = load_dataset(name, root=root, verify=True)
        assert len(dataset) == registry[name]["expected_points"]
        assert (root / "results" / "real" / "validation" / f"{name}.txt").exists()
    summary = (root / "results" / "real" / "validation" / "summary.txt").read_text()
    # warnings: the three SN releases without their covariance files, the MGS Gaussian summary, the DES Y3 chi2
    # profile and the three Lya scans (likelihood tables and grids: their Gaussian summaries), DES-SN5YR STATONLY's
    # de-weighted SNe (errors up to 450 mag)
    assert summary.startswith(f"{N_REAL}/{N_REAL} datasets published: 0 failed, 0 not run (9 with warnings)")
    boss = load_dataset("bao_boss_dr12", root=root)
    assert boss.observable[0] == pytest.approx(10.2341, abs=5e-5)
    # provenance names each raw file with its pinned sha256 and the software
    prov = load_dataset("cc_moresco", root=root).provenance
    assert {f["sha256"] for f in prov["raw_files"]} == {s["sha256"] for s in registry["cc_moresco"]["files"].values()}
    assert prov["software"]["snakemake"] == "9.27.1"
    # nothing to do on a second run
    assert workflow.jobs("--config", cfg) == {}


def test_touch_reruns_nothing_and_edit_reruns_one_dataset(real_run):
    workflow, raw, cfg = real_run
    table = raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    later = time.time() + 5
    for path in raw.rglob("*.txt"):
        os.utime(path, (later, later))
    assert workflow.jobs("--config", cfg) == {}
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))
    jobs = workflow.jobs("--config", cfg)
    # derive_dataset derives, validates and publishes; the exports and figures follow the republished dataset
    per_dataset = {"derive_dataset": 1, "export_dataset": 1}
    downstream = {"validation_summary": 1, "manifest": 1, "backup": 1, "all": 1}
    assert jobs == per_dataset | downstream
    preview = workflow.run("-n", "--config", cfg).stdout  # the content of the raw files is a parameter of the job
    assert "Params have changed" in preview and "HzTable_MM_BC32.txt" in preview


def test_option_change_reruns_only_that_dataset(real_run):
    workflow, raw, cfg = real_run
    path = workflow.root / "config" / "registry.yaml"
    registry = yaml.safe_load(path.read_text())
    registry["datasets"]["cc_moresco"]["options"]["systematics"] = ["IMF", "mod"]
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    preview = workflow.run("-n", "--config", cfg).stdout
    assert preview.count("rule derive_dataset:") == 1 and "dataset=cc_moresco" in preview
    assert "Params have changed" in preview
    workflow.run("--cores", "2", "--config", cfg)
    cc = load_dataset("cc_moresco", root=workflow.root)
    assert cc.provenance["options"]["systematics"] == ["IMF", "mod"]


def test_large_raw_files_give_the_dataset_job_two_threads(real_run):
    """A dataset whose raw files hold PARALLEL_FROM_BYTES or more is derived on two threads (its validation's
    Cholesky runs on them); the others on one."""
    workflow, raw, cfg = real_run
    table = raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    os.truncate(table, PARALLEL_FROM_BYTES)  # a sparse file of that size: only the size counts here
    preview = workflow.run("-n", "--cores", "2", "--forcerun", "derive_dataset", "--until", "derive_dataset",
                           "--config", cfg).stdout
    jobs = preview.split("rule derive_dataset:")[1:]
    threads = {job.split("dataset=")[1].split()[0]: int(job.split("threads: ")[1].split()[0]) if "threads: " in job else 1
               for job in jobs}
    assert threads == {name: 2 if name == "cc_moresco" else 1 for name in threads} and len(threads) == N_REAL


def test_failing_dataset_leaves_published_files_intact(real_run):
    workflow, raw, cfg = real_run
    derived = workflow.root / "results" / "real" / "derived"
    before = _digests(derived)
    table = raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))  # breaks the pin
    proc = workflow.run("--cores", "2", "--config", cfg, check=False)
    assert proc.returncode != 0
    assert "dataset 'cc_moresco' (file 'cc_moresco/HzTable_MM_BC32.txt', check 'sha256 pin')" in proc.stderr
    assert _digests(derived) == before
    # still stale afterwards: the next preview wants to derive it again
    assert workflow.jobs("--config", cfg).get("derive_dataset") == 1


def test_partial_failure_is_in_plain_sight_and_verify_stays_true(real_run):
    """One dataset fails, another is republished: the summary names the failure and its reason, the
    manifest is rebuilt all the same, and verify then reports only real damage."""
    workflow, raw, cfg = real_run
    root = workflow.root
    table = raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))  # breaks the pin
    path = root / "config" / "registry.yaml"
    edited = yaml.safe_load(path.read_text())
    edited["datasets"]["bao_desi_dr1"]["options"]["labels"]["DV_over_rs"]["observable_type"] = "DM_over_rd"
    path.write_text(yaml.safe_dump(edited, sort_keys=False))
    before = load_dataset("bao_desi_dr1", root=root).observable_type
    proc = workflow.run("--cores", "2", "--config", cfg, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    assert "cc_moresco: failed derive: dataset 'cc_moresco' (file 'cc_moresco/HzTable_MM_BC32.txt', check 'sha256 pin')" in proc.stderr
    summary = (root / "results" / "real" / "validation" / "summary.txt").read_text()
    assert summary.startswith(f"{N_REAL - 1}/{N_REAL} datasets published: 1 failed, 0 not run")
    line = next(line for line in summary.splitlines() if line.split()[0] == "cc_moresco")
    assert "failed derive" in line and "check 'sha256 pin'" in line and "previously published copy is kept" in line
    report = json.loads((root / "results" / "real" / "validation" / "cc_moresco.json").read_text())
    assert report["state"] == "failed derive" and "sha256 pin" in report["reason"]
    relabelled = before == "DV_over_rd"
    assert relabelled.any() and (load_dataset("bao_desi_dr1", root=root).observable_type[relabelled] == "DM_over_rd").all()
    verify = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(root), "verify"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
    # the version the republished document replaced is kept for its readers, and listed (its own checksum)
    kept = sorted((root / "results" / "real" / "derived" / ".versions").glob("bao_desi_dr1-*.npz"))
    listed = (root / "results" / "real" / "manifests" / "derived.sha256").read_text()
    assert len(kept) == 2 and all(f"  results/real/derived/.versions/{p.name}\n" in listed for p in kept)
    assert all(hashlib.sha256(p.read_bytes()).hexdigest().startswith(p.stem.split("-")[1]) for p in kept)
    # real damage is still reported: a flipped byte in a published archive and in the kept previous version
    current = json.loads((root / "results" / "real" / "derived" / "bao_desi_dr1.json").read_text())["npz_file"]
    previous = next(p for p in kept if current != f".versions/{p.name}")
    for target in (root / "results" / "real" / "derived" / "bao_boss_dr12.npz", previous):
        data = bytearray(target.read_bytes())
        data[200] ^= 1
        target.write_bytes(bytes(data))
    verify = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(root), "verify"], capture_output=True, text=True)
    assert verify.returncode == 1
    corrupted = sorted(line.split()[1] for line in verify.stdout.splitlines() if line.startswith("CORRUPTED"))
    assert corrupted == ["results/real/derived/.versions/" + previous.name, "results/real/derived/bao_boss_dr12.npz"]


def test_new_release_is_a_registry_entry_alone(real_run, registry):
    """A further release in a known format (here a DESI-format file set in its own folder) needs no code change."""
    workflow, raw, cfg = real_run
    release = raw / "bao_desi_dr1_lrg_only"
    release.mkdir()
    mean = (raw / "bao_desi_dr1" / "desi_2024_gaussian_bao_ALL_GCcomb_mean.txt").read_text().splitlines()
    cov = np.loadtxt(raw / "bao_desi_dr1" / "desi_2024_gaussian_bao_ALL_GCcomb_cov.txt")
    (release / "mean.txt").write_text("\n".join(mean[:1] + mean[2:6]) + "\n")  # z = 0.51, 0.706 LRG bins
    np.savetxt(release / "cov.txt", cov[1:5, 1:5], fmt="%.8e")
    entry = {
        "kind": "bao",
        "format": "bao_mean_cov",
        "title": "DESI DR1 LRG bins",
        "citation": "DESI Collaboration 2024 (arXiv:2404.03002)",
        "expected_points": 4,
        "files": {  # pinned as README says: the sha256sum of each file
            role: {"path": f"bao_desi_dr1_lrg_only/{name}", "sha256": hashlib.sha256((release / name).read_bytes()).hexdigest()}
            for role, name in (("mean", "mean.txt"), ("covariance", "cov.txt"))
        },
        "options": {"labels": {"DM_over_rs": {"observable_type": "DM_over_rd"}, "DH_over_rs": {"observable_type": "DH_over_rd"}}},
    }
    extra = workflow.root / "config" / "extra.yaml"
    extra.write_text(yaml.safe_dump({"datasets": {"bao_desi_dr1_lrg_only": entry}}))
    jobs = workflow.jobs("--config", cfg, "extra_registries=[config/extra.yaml]")
    assert jobs["derive_dataset"] == 1
    workflow.run("--cores", "2", "--config", cfg, "extra_registries=[config/extra.yaml]")
    lrg = load_dataset("bao_desi_dr1_lrg_only", root=workflow.root)
    full = load_dataset("bao_desi_dr1", root=workflow.root)
    np.testing.assert_array_equal(lrg.observable, full.observable[1:5])
    np.testing.assert_array_equal(lrg.covariance, full.covariance[1:5, 1:5])


def test_config_typo_fails_before_any_job(workflow, raw_dir):
    proc = workflow.run("-n", "--config", f"raw_dir={raw_dir}", "datasets=[bao_bos_dr12]", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "bao_bos_dr12" in output and "bao_boss_dr12" in output and "Traceback" not in output
    assert not (workflow.root / "results").exists()


def test_mock_files_of_no_mock_dataset_are_refused_before_any_job(workflow):
    """The mock-file and retrieval rules take any name's folder: a mock registry entry without a mock block,
    and a target in the folder of no dataset, are refused with one message, before the DAG."""
    document = yaml.safe_load((workflow.root / "config" / "registry_mock.yaml").read_text())
    del document["datasets"]["mock_cc_moresco"]["mock"]
    (workflow.root / "config" / "no_mock.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    refused = [
        (["--config", "mock_registry=config/no_mock.yaml"], ["mock_cc_moresco", "no 'mock' block"]),
        (["data/mock/raw/mock_cc_moresco_x/table.txt"], ["'mock_cc_moresco_x'", "mock_cc_moresco", "not in the active registry"]),
        (["data/raw_cache/cc_moresc/table.txt"], ["'cc_moresc'", "not in the active registry"]),
    ]
    for args, fragments in refused:
        proc = workflow.run("-n", *args, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert all(fragment in output for fragment in fragments) and "Traceback" not in output, output
    assert not (workflow.root / "results").exists() and not (workflow.root / "data").exists()


def test_readers_never_see_a_missing_or_mixed_dataset_during_a_republish(real_run, registry):
    """load_dataset and plain np.load in a loop while the workflow republishes two changed datasets."""
    workflow, raw, cfg = real_run
    root = workflow.root
    path = root / "config" / "registry.yaml"
    edited = yaml.safe_load(path.read_text())
    edited["datasets"]["bao_desi_dr1"]["options"]["labels"]["DV_over_rs"]["observable_type"] = "DM_over_rd"
    edited["datasets"]["cc_moresco"]["options"]["systematics"] = ["IMF", "mod"]
    path.write_text(yaml.safe_dump(edited, sort_keys=False))
    before = {name: load_dataset(name, root=root) for name in ("bao_desi_dr1", "cc_moresco")}
    stop, reads, failures = threading.Event(), [0], []

    def reader():
        while not stop.is_set():
            for name in registry:
                try:
                    load_dataset(name, root=root, verify=True)  # the document and the archive it names agree
                    with np.load(root / "results" / "real" / "derived" / f"{name}.npz") as plain:
                        plain["observable"]
                except (PbufDataError, OSError, KeyError, ValueError) as exc:
                    failures.append(f"{name}: {exc}")
                reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        workflow.run("--cores", "2", "--config", cfg)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert reads[0] > 100 and failures == []
    after = {name: load_dataset(name, root=root, verify=True) for name in before}
    relabelled = before["bao_desi_dr1"].observable_type == "DV_over_rd"
    assert relabelled.any() and (after["bao_desi_dr1"].observable_type[relabelled] == "DM_over_rd").all()
    assert not np.array_equal(after["cc_moresco"].covariance, before["cc_moresco"].covariance)


def test_deleting_staging_loses_nothing(real_run, registry):
    workflow, _, cfg = real_run
    root = workflow.root
    import shutil

    shutil.rmtree(root / "results" / "real" / "staging")
    assert workflow.jobs("--config", cfg) == {}  # staging is the job's scratch space, not an output
    for name in registry:
        load_dataset(name, root=root, verify=True)
    verify = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(root), "verify"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
