"""HTML report, retrieval from an upstream URL with pinned checksums, and the dataset-level preview."""

import functools
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading

import matplotlib.image
import pytest
import yaml

from conftest import N_REAL, Workflow
from pbuf_data.operate.project import Project
from pbuf_data.operate.status import workflow_status

pytestmark = pytest.mark.workflow

# The retrieval tests are about cc_moresco's files; a run of that dataset alone, or with one other dataset where a
# test checks that the others go on, makes the same claim as a run of the whole corpus (which test_offline_... keeps,
# since it checks the whole summary).
CC_ONLY = "datasets=[cc_moresco]"
CC_AND_ANOTHER = "datasets=[cc_moresco, bao_desi_dr1]"


def test_report_shows_every_dataset(project, raw_dir, registry):
    # the figures and the report of a finished real-corpus run: a copy of the session's one (conftest finished_run)
    workflow = Workflow(project)
    for name in registry:
        for figure in ("observable", "correlation"):
            image = matplotlib.image.imread(workflow.root / "results" / "real" / "plots" / f"{name}_{figure}.png")
            assert image.shape[0] > 150 and image.shape[1] > 300
            assert image[..., :3].std() > 0.05  # not a blank canvas
    workflow.run("--report", "report.html", "--config", f"raw_dir={raw_dir}")
    html = (workflow.root / "report.html").read_text()
    for name in registry:
        assert f"{name}_observable.png" in html and f"{name}_correlation.png" in html
    assert "validation summary" in html and "Alam et al. 2017" in html
    # plots are outputs like any other: a second run leaves them alone
    assert workflow.jobs("--config", f"raw_dir={raw_dir}") == {}


class _Server:
    """A loopback HTTP server for a folder, stopped at the end of the test."""

    def __init__(self, folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def upstream(tmp_path, raw_dir):
    served = tmp_path / "upstream"
    shutil.copytree(raw_dir, served)
    for path in served.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    server = _Server(served)
    yield served, server
    server.stop()


@pytest.fixture
def mirror_without_cc(workflow, writable_raw, upstream):
    """The registry points at the loopback server; the local mirror lacks cc_moresco's files."""
    _, server = upstream
    path = workflow.root / "config" / "registry.yaml"
    registry = yaml.safe_load(path.read_text())
    for entry in registry["datasets"].values():
        for spec in entry["files"].values():
            if "url" in spec:
                spec["url"] = f"http://127.0.0.1:{server.port}/{spec['path']}"
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    shutil.rmtree(writable_raw / "cc_moresco")
    return writable_raw


def _status(workflow, raw):
    return workflow_status(Project.open(workflow.root, raw_dir=raw))


def test_missing_file_is_retrieved_and_checked(workflow, mirror_without_cc):
    raw = mirror_without_cc
    before = _status(workflow, raw)["cc_moresco"]
    assert any("cc_moresco/HzTable_MM_BC32.txt is missing: it will be downloaded from http://127.0.0.1" in r for r in before)
    workflow.run("--cores", "2", "--config", f"raw_dir={raw}", CC_ONLY)
    cached = workflow.root / "data" / "raw_cache" / "cc_moresco" / "HzTable_MM_BC32.txt"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == "25d2e79a3729176eaf14f634b94f46d62cc4e973f175cea4f26d31923e39995c"
    assert (workflow.root / "results" / "real" / "derived" / "cc_moresco.npz").exists()
    assert _status(workflow, raw)["cc_moresco"] == []
    assert workflow.jobs("--config", f"raw_dir={raw}", CC_ONLY) == {}


def test_corrupted_download_is_not_kept(workflow, mirror_without_cc, upstream):
    served, _ = upstream
    table = served / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("69.0", "96.0"))
    proc = workflow.run("--cores", "2", "--config", f"raw_dir={mirror_without_cc}", CC_AND_ANOTHER, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "dataset 'cc_moresco' (file 'cc_moresco/HzTable_MM_BC32.txt', check 'sha256 pin')" in output
    assert "not kept" in output
    cache = workflow.root / "data" / "raw_cache" / "cc_moresco"
    assert sorted(p.name for p in cache.iterdir()) == ["data_MM20.dat"]  # no partial or temporary file
    assert (workflow.root / "results" / "real" / "derived" / "bao_desi_dr1.npz").exists()  # the others are done
    reasons = _status(workflow, mirror_without_cc)["cc_moresco"]
    assert any("its last download failed" in r and "sha256" in r for r in reasons)


def test_file_missing_upstream_says_where_to_put_it(workflow, mirror_without_cc, upstream):
    served, _ = upstream
    (served / "cc_moresco" / "data_MM20.dat").unlink()
    proc = workflow.run("--cores", "2", "--config", f"raw_dir={mirror_without_cc}", CC_ONLY, check=False)
    assert proc.returncode != 0
    expected = f"put the file at {mirror_without_cc}/cc_moresco/data_MM20.dat instead"
    output = proc.stdout + proc.stderr
    assert "check 'retrieve'" in output and expected in output and "HTTP 404" in output
    reasons = _status(workflow, mirror_without_cc)["cc_moresco"]
    assert any("its last download failed" in r and "data_MM20.dat" in r for r in reasons)


def test_offline_fails_only_that_dataset_naming_each_file(workflow, mirror_without_cc, upstream):
    _, server = upstream
    server.stop()
    raw = mirror_without_cc
    assert workflow.run("-n", "--config", f"raw_dir={raw}").returncode == 0  # parsing never goes online
    status = _status(workflow, raw)["cc_moresco"]  # what status says is what the run does: it tries
    assert any("HzTable_MM_BC32.txt is missing: it will be downloaded" in r for r in status)
    proc = workflow.run("--cores", "2", "--config", f"raw_dir={raw}", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in output
    for name in ("HzTable_MM_BC32.txt", "data_MM20.dat"):
        assert f"put the file at {raw}/cc_moresco/{name} instead" in output
    derived = workflow.root / "results" / "real" / "derived"
    assert not (derived / "cc_moresco.json").exists() and (derived / "bao_desi_dr1.json").exists()  # the others go on
    summary = (workflow.root / "results" / "real" / "validation" / "summary.txt").read_text()
    assert summary.startswith(f"{N_REAL - 1}/{N_REAL} datasets published: 0 failed, 1 not run")
    assert re.search(r"cc_moresco +not run .*retrieve of a raw file failed: .*127\.0\.0\.1", summary)
    from test_report_pages import Tables  # the report's summary page says the same, also after a failed run

    rows = {r[0]: r for r in Tables((workflow.root / "results" / "real" / "plots" / "summary.html").read_text()).tables[0][1:]}
    assert rows["cc_moresco"][1] == "not run" and "retrieve of a raw file failed" in rows["cc_moresco"][5]
    assert rows["bao_desi_dr1"][1] == "published"


def test_missing_file_without_url_fails_that_dataset_only(workflow, writable_raw):
    """Retrieval off: the missing file's dataset fails with where to put it; the run and status agree."""
    (writable_raw / "cc_moresco" / "data_MM20.dat").unlink()
    config = workflow.root / "config" / "config.yaml"
    config.write_text(config.read_text().replace("retrieve: true", "retrieve: false"))
    proc = workflow.run("--cores", "2", "--config", f"raw_dir={writable_raw}", CC_AND_ANOTHER, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in output
    expected = f"cc_moresco/data_MM20.dat (retrieval is off) -> put it at {writable_raw}/cc_moresco/data_MM20.dat"
    assert "dataset 'cc_moresco'" in output and expected in output
    assert (workflow.root / "results" / "real" / "derived" / "bao_desi_dr1.json").exists()
    report = yaml.safe_load((workflow.root / "results" / "real" / "validation" / "cc_moresco.json").read_text())
    assert report["state"] == "failed derive" and expected in report["reason"]
    assert f"raw file cc_moresco/data_MM20.dat is missing: put it at {writable_raw}/cc_moresco/data_MM20.dat" in _status(
        workflow, writable_raw)["cc_moresco"]


def test_parse_opens_no_network_connection(workflow, mirror_without_cc, tmp_path):
    """snakemake -n and --lint with every socket connection refused (sitecustomize), files to retrieve."""
    site = tmp_path / "nonet"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import socket\n"
        "def _refuse(*args, **kwargs):\n"
        "    raise OSError('NETWORK USED AT PARSE TIME')\n"
        "socket.socket.connect = socket.socket.connect_ex = socket.create_connection = _refuse\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
                           env=env, capture_output=True, text=True)
    assert "NETWORK USED AT PARSE TIME" in probe.stderr  # the guard is active in subprocesses
    outputs = {}
    for mode in ("-n", "--lint"):
        proc = subprocess.run([sys.executable, "-m", "snakemake", mode, "--config", f"raw_dir={mirror_without_cc}"],
                              cwd=workflow.root, env=env, capture_output=True, text=True)
        outputs[mode] = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "NETWORK USED" not in outputs[mode], outputs[mode][-2000:]
    assert "rule retrieve_raw_file:" in outputs["-n"]  # the downloads are jobs, run later


def test_preview_names_the_reason(real_run, monkeypatch):
    # what status says after a finished run, then after changes: a private copy of the session's finished
    # real-corpus run with a writable raw folder (conftest real_run)
    workflow, writable_raw, _ = real_run
    assert all(not r for r in _status(workflow, writable_raw).values())
    table = writable_raw / "cc_moresco" / "HzTable_MM_BC32.txt"
    table.write_text(table.read_text().replace("0.07 69.0 19.6", "0.07 69.5 19.6"))
    path = workflow.root / "config" / "registry.yaml"
    registry = yaml.safe_load(path.read_text())
    registry["datasets"]["bao_desi_dr1"]["options"]["labels"]["DV_over_rs"]["observable_type"] = "DM_over_rd"
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    (workflow.root / "results" / "real" / "derived" / "rsd_fsigma8.json").unlink()
    status = _status(workflow, writable_raw)
    assert status["cc_moresco"] == [
        "raw file cc_moresco/HzTable_MM_BC32.txt changed since the dataset was derived and no longer matches "
        "its registry pin: the derivation will refuse it until the pin is updated"
    ]
    assert status["bao_desi_dr1"] == ["option labels.DV_over_rs.observable_type changed: 'DV_over_rd' -> 'DM_over_rd'"]
    assert status["rsd_fsigma8"] == ["results/real/derived/rsd_fsigma8.json is missing"]  # deleted after its job
    assert status["bao_6dfgs"] == []
    import pbuf_data.read.derive

    real = pbuf_data.read.derive.code_fingerprint
    monkeypatch.setattr(pbuf_data.read.derive, "code_fingerprint", lambda fmt: "changed" if fmt == "cc_hz_table" else real(fmt))
    assert "the code that derives format 'cc_hz_table' changed" in _status(workflow, writable_raw)["cc_moresco"]
    # a dataset whose newest processing summary is a failure (the summaries of every dataset in one folder)
    from pbuf_data.core.logs import write_processing_summary

    logs = workflow.root / "results" / "real" / "logs"
    write_processing_summary({"dataset": "bao_6dfgs", "status": "failed", "error": "a planted failure"}, logs_dir=logs)
    status = _status(workflow, writable_raw)
    assert status["bao_6dfgs"] == ["the last derivation failed (a planted failure)"]
    assert [name for name, reasons in status.items() if any("last derivation failed" in r for r in reasons)] == ["bao_6dfgs"]
