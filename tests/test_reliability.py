"""Reliability: the bad-input catalog through the workflow, interruption and recovery,
concurrent runs, corruption drills, disk full. (Fuzzing: tests/test_fuzz.py.)"""

import copy
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import yaml

from conftest import PROJECT, Workflow, cli, copy_project, use_real_tree
from pbuf_data import PbufDataError
from pbuf_data.read.derive import derive_dataset
from test_bad_input import CASES as PARSER_CASES

pytestmark = pytest.mark.workflow


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, raw_dir):
    """A finished real-corpus run with an unpinned registry (content mutations then reach the parsers)."""
    base = tmp_path_factory.mktemp("reliability")
    root = copy_project(base / "project").root
    registry = yaml.safe_load((root / "config" / "registry.yaml").read_text())
    for entry in registry["datasets"].values():
        for spec in entry["files"].values():
            spec.pop("sha256", None)
            spec.pop("url", None)
            spec["allow_unpinned"] = True
    (root / "config" / "registry.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))
    raw = base / "raw"
    shutil.copytree(raw_dir, raw)
    for path in raw.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    use_real_tree(root)
    Workflow(root).run("--cores", "2", "--config", f"raw_dir={raw}")
    return root, raw


@pytest.fixture
def run_copy(clean_run, tmp_path):
    root, raw = clean_run
    shutil.copytree(root, tmp_path / "project", symlinks=True)
    shutil.copytree(raw, tmp_path / "raw", symlinks=True)
    return Workflow(tmp_path / "project"), tmp_path / "raw"


# -- the catalog: parser cases of test_bad_input plus whole-file and covariance cases -----------------

def _nonsymmetric(text):
    rows = [line.split() for line in text.strip().split("\n")]
    rows[0][1] = "0.01"
    return "\n".join(" ".join(r) for r in rows) + "\n"


def _not_positive_definite(text):
    rows = [line.split() for line in text.strip().split("\n")]
    rows[0][1] = rows[1][0] = "900.0"  # |C01| > sqrt(C00 C11)
    return "\n".join(" ".join(r) for r in rows) + "\n"


WORKFLOW_CASES = [
    *[(name, role, mutate, fragments) for name, role, mutate, fragments in PARSER_CASES],
    ("cc_moresco", "table", lambda t: t[: len(t) // 2 - 3], ["expected 3 columns"]),  # truncated mid-line
    ("bao_6dfgs", "table", lambda t: "", ["file is empty"]),
    ("bao_sdss_mgs", "chi2_table", lambda t: "\x00\x01\x02\x89PNG junk", ["bao_sdss_mgs"]),
    ("bao_desi_dr1", "covariance", _nonsymmetric, ["validation failed", "covariance_symmetric"]),
    ("bao_boss_dr12", "covariance", _not_positive_definite, ["validation failed", "covariance_positive_definite"]),
    ("rsd_fsigma8", "table", lambda t: t.replace("0.0465", "nan"), ["line 1", "non-finite"]),
    ("cmb_planck2018", "mean", lambda t: t.replace("l_A 301.4707", "l_A 301.4707 extra"), ["line 6", "expected 2 columns, found 3"]),
    ("cc_moresco", "table", lambda t: t.replace("0.07 69.0 19.6", "0.07\t69.0\t19.6"), None),  # tabs: accepted
    ("bao_boss_dr12", "mean", lambda t: t.replace("\n", "\r\n"), None),  # CRLF: accepted
]


def _batches(cases):
    """Groups of cases with distinct datasets, so one workflow run checks several at once."""
    batches = []
    for case in cases:
        for batch in batches:
            if case[0] not in {c[0] for c in batch}:
                batch.append(case)
                break
        else:
            batches.append([case])
    return batches


@pytest.mark.parametrize("batch", _batches(WORKFLOW_CASES), ids=lambda b: "+".join(c[0] for c in b))
def test_bad_input_catalog_through_the_workflow(run_copy, clean_run, batch):
    workflow, raw = run_copy
    registry = yaml.safe_load((workflow.root / "config" / "registry.yaml").read_text())["datasets"]
    derived = workflow.root / "results" / "real" / "derived"
    before = _digests(derived)
    for name, role, mutate, _ in batch:
        path = raw / registry[name]["files"][role]["path"]
        path.write_bytes(mutate(path.read_bytes().decode("utf-8")).encode("utf-8", "surrogateescape"))
    proc = workflow.run("--cores", "2", "--config", f"raw_dir={raw}", check=False)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    failing = [c for c in batch if c[3] is not None]
    assert (proc.returncode != 0) == bool(failing)
    # A job process writes its message in one write (pbuf_data.operate.job.report_failure), but Snakemake writes a
    # message of several lines and its final newline apart (snakemake/logging.py, emit), so a job's message
    # written in between follows Snakemake's last line: a message is where "ERROR: " starts, not a line.
    messages = [line[line.index("ERROR: "):] for line in output.splitlines() if "ERROR: " in line]
    for name, role, _, fragments in failing:
        lines = [line for line in messages if f"dataset '{name}'" in line]
        assert lines, f"no clear error line for {name}:\n{output[-3000:]}"
        assert any(all(f in line for f in fragments) for line in lines), lines
    summary = json.loads((workflow.root / "results" / "real" / "validation" / "summary.json").read_text())["datasets"]
    for name, role, _, fragments in failing:  # the summary names every failure and its reason
        assert summary[name]["state"] in ("failed derive", "failed validation")
        assert all(f in summary[name]["reason"] for f in fragments), summary[name]
    assert summary.keys() == set(registry)
    after = _digests(derived)
    for name, *_ in failing:  # the failing datasets keep their published files, byte for byte
        for ext in ("npz", "json"):
            assert after[f"{name}.{ext}"] == before[f"{name}.{ext}"]
    untouched = {k for k in before if k.split(".")[0] not in {c[0] for c in batch}}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}


def test_catalog_size():
    registry_cases = 9  # tests/test_registry.py::test_schema_errors_name_the_key + duplicates + cross-field
    assert len(WORKFLOW_CASES) + registry_cases + len(SN_COVARIANCE_CASES) >= 30


# -- covariance file of the Pantheon+ layout (on the 1701-row mock) -------------------------------

SN_COVARIANCE_CASES = [
    (lambda lines: ["1700"] + lines[1:], ["line 1", "N=1700", "1701 rows"]),
    (lambda lines: lines[:-5], ["found 2893396 values", "N*N = 2893401"]),
    (lambda lines: lines + ["0.0"], ["more than N*N"]),
    (lambda lines: lines[:100] + ["abc"] + lines[101:], ["line 101", "'abc' is not a number"]),
    (lambda lines: lines[:7] + ["nan"] + lines[8:], ["line 8", "non-finite"]),
    (lambda lines: lines[:7] + ["0.1 0.2"] + lines[8:], ["line 8", "one value per line"]),
]


@pytest.fixture(scope="module")
def sn_mock(tmp_path_factory, mock_registry):
    from pbuf_data.read.mock import mock_files

    folder = tmp_path_factory.mktemp("snmock")
    entry = mock_registry["mock_sn_pantheon_plus"]
    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    texts = mock_files(entry, config["fiducial_cosmology"], entry["mock"]["seed"])
    for role, spec in entry["files"].items():
        (folder / spec["path"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / spec["path"]).write_text(texts[role])
    return folder, entry


@pytest.mark.parametrize("mutate, fragments", SN_COVARIANCE_CASES)
def test_sn_covariance_file_errors(sn_mock, tmp_path, mutate, fragments):
    folder, entry = sn_mock
    raw = tmp_path / "raw"
    shutil.copytree(folder, raw)
    cov = raw / entry["files"]["covariance"]["path"]
    cov.write_text("\n".join(mutate(cov.read_text().split("\n")[:-1])) + "\n")
    with pytest.raises(PbufDataError) as err:
        derive_dataset("mock_sn_pantheon_plus", entry, raw)
    assert "Pantheon+SH0ES_STAT+SYS.cov" in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_sn_covariance_is_subselected_and_symmetrized(sn_mock):
    folder, entry = sn_mock
    sn = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    lines = (folder / entry["files"]["covariance"]["path"]).read_text().split()
    full = np.array(lines[1:], dtype=float).reshape(1701, 1701)
    table = np.genfromtxt(folder / entry["files"]["table"]["path"], names=True, dtype=None, encoding="utf-8")
    keep = table["zHD"] > 0.01
    np.testing.assert_array_equal(sn.covariance, (0.5 * (full + full.T))[np.ix_(keep, keep)])
    assert sn.metadata["covariance"]["max_abs_asymmetry_before_symmetrization"] > 0


# -- interruption -----------------------------------------------------------------------------------

def _every_published_file_is_whole(root):
    for path in (root / "results" / "real" / "derived").glob("*.json"):
        json.loads(path.read_text())
    for path in (root / "results" / "real" / "derived").glob("*.npz"):
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None
    for path in (root / "results" / "real" / "validation").glob("*.json"):
        json.loads(path.read_text())


@pytest.mark.any_worker
@pytest.mark.parametrize("sig, delay", [(signal.SIGINT, 0.8), (signal.SIGKILL, 1.5), (signal.SIGKILL, 3.0), (signal.SIGINT, 4.5)])
def test_interrupted_run_recovers(workflow, writable_raw, sig, delay):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"raw_dir={writable_raw}"]
    proc = subprocess.Popen(cmd, cwd=workflow.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(delay)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    _every_published_file_is_whole(workflow.root)
    resumed = cli(workflow.root, "resume", "--cores", "2", "--raw-dir", str(writable_raw))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert cli(workflow.root, "verify", "--raw-dir", str(writable_raw)).returncode == 0
    assert workflow.jobs("--config", f"raw_dir={writable_raw}") == {}


# -- concurrency ------------------------------------------------------------------------------------

@pytest.mark.any_worker
def test_second_run_is_refused_while_one_runs(workflow):
    first = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=workflow.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = workflow.root / ".snakemake" / "locks"
    deadline = time.time() + 60
    while time.time() < deadline and not (locks.exists() and any(locks.iterdir())):
        time.sleep(0.05)
    second = workflow.run("--cores", "1", check=False)
    assert second.returncode != 0 and "LockException" in second.stdout + second.stderr
    # before Snakemake's own refusal (which suggests --unlock), whose run holds the project, with its PID
    assert f"pbuf-data: a run is in progress here (pid {first.pid})" in second.stderr
    refused = cli(workflow.root, "resume")
    assert refused.returncode == 1 and "a run is in progress" in refused.stderr
    assert first.wait(timeout=600) == 0
    assert cli(workflow.root, "verify").returncode == 0


# -- corruption drills ------------------------------------------------------------------------------

def test_random_byte_flips_are_all_detected_and_repaired(run_copy, raw_dir):
    workflow, _ = run_copy
    root = workflow.root
    rng = random.Random(2024)
    targets = sorted(
        [p for p in (root / "results" / "real" / "derived").glob("*") if p.is_file()]
        + [p for p in (root / "results" / "real" / "validation").glob("*") if p.is_file()]
        + [root / "results" / "real" / "manifests" / "derived.sha256"]
    )
    sn = hashlib.sha256((root / "results" / "real" / "derived" / "sn_pantheon_plus.npz").read_bytes()).hexdigest()
    archive = root / "data" / "backups" / "blobs" / sn[:2] / f"{sn}.zst"  # the largest blob of the backup store
    pristine_archive = archive.read_bytes()
    injected = detected = 0
    for i in range(24):
        target = rng.choice(targets + [archive])
        data = bytearray(target.read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        injected += 1
        verify = cli(root, "verify")
        if verify.returncode == 1 and str(target.relative_to(root)) in verify.stdout or (
            target.name == "derived.sha256" and verify.returncode == 1
        ):
            detected += 1
        if i % 3 == 0:  # certification reflects the damage too (every third drill, to keep the suite short)
            certificate = cli(root, "certify", "--raw-dir", str(raw_dir))
            assert certificate.returncode == 1 and "certification_status: FAILED" in certificate.stdout
        if target == archive:
            archive.write_bytes(pristine_archive)  # a second copy of the backup, as an operator keeps
        else:
            assert cli(root, "restore").returncode == 0
        assert cli(root, "verify").returncode == 0
    assert detected == injected == 24


# -- disk full --------------------------------------------------------------------------------------

def test_failing_write_keeps_the_previous_output(registry, raw_dir, tmp_path, monkeypatch):
    dataset = derive_dataset("bao_desi_dr1", registry["bao_desi_dr1"], raw_dir)
    npz, doc = tmp_path / "d.npz", tmp_path / "d.json"
    dataset.save(npz, doc)
    before = npz.read_bytes(), doc.read_bytes()
    changed = copy.deepcopy(dataset)
    changed.observable = changed.observable * 1.01

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(PbufDataError, match="No space left on device"):
        changed.save(npz, doc)
    assert (npz.read_bytes(), doc.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npz"]
