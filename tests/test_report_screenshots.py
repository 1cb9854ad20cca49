"""The report as a person sees it: tools/report_screenshots.py builds the embedded default's report and
photographs it in headless Chromium; the pages' tables, the captions and the pictures are checked."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from conftest import PROJECT, need_chromium
from pbuf_data.registry import load_registry
from test_report_pages import Tables

sys.path.insert(0, str(PROJECT / "tools"))
from report_screenshots import WINDOW, find_chromium, report_data  # noqa: E402

pytestmark = pytest.mark.workflow

CHROMIUM = find_chromium()
PASS_GREEN = np.array([0xDA, 0xFB, 0xE1]) / 255  # .pass badge of the pages (report_pages.STYLE)
WARN_ROW = np.array([0xFF, 0xFB, 0xDD]) / 255  # tr.row-warn


def _share_of(image, colour):
    return float(np.mean(np.all(np.abs(image[..., :3] - colour) < 2 / 255, axis=-1)))


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    need_chromium(CHROMIUM, "the report is not photographed")
    from conftest import copy_project

    root = tmp_path_factory.mktemp("shots")
    workflow = copy_project(root / "project")
    out = root / "png"
    proc = subprocess.run([sys.executable, str(PROJECT / "tools" / "report_screenshots.py"), "--root", str(workflow.root),
                           "--out", str(out), "--datasets", "mock_cc_moresco", "mock_bao_sdss_mgs"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return workflow, out, report_data((workflow.root / "report.html").read_text())[0]


def _page(results, path):
    uri = results[path]["data_uri"]
    assert uri.startswith("data:text/html") and results[path]["mime_type"] == "text/html"
    return Tables(base64.b64decode(uri.split(",", 1)[1]).decode("utf-8"))


def test_the_report_embeds_the_validation_table_with_its_verdicts(shots):
    workflow, _, results = shots
    expected = json.loads((workflow.root / "results" / "mock" / "validation" / "mock_bao_sdss_mgs.json").read_text())
    page = _page(results, "results/mock/plots/mock_bao_sdss_mgs_validation.html")
    verdicts = {row[0]: row[1] for row in page.tables[-1][1:]}
    assert [row[:2] for row in page.tables[0][1:]] == [["gaussian_likelihood", "warning"]]  # needs attention
    assert verdicts == {c["name"]: {"pass": "pass", "warn": "warning", "error": "fail"}[c["verdict"]]
                        for c in expected["checks"]}
    assert verdicts["gaussian_likelihood"] == "warning" and verdicts["expected_points"] == "pass"
    document = json.loads((workflow.root / "results" / "mock" / "derived" / "mock_cc_moresco.json").read_text())
    files = _page(results, "results/mock/plots/mock_cc_moresco_provenance.html").tables[0][1:]
    assert [(r[1], r[2]) for r in files] == [(f["path"], f["sha256"]) for f in document["provenance"]["raw_files"]]
    summary = _page(results, "results/mock/plots/summary.html").tables[0][1:]
    mock_names = load_registry(PROJECT / "config" / "registry_mock.yaml")
    assert [r[0] for r in summary] == list(mock_names) and all(r[1] == "published" for r in summary)


def test_captions_are_rendered_not_raw(shots):
    _, _, results = shots
    captions = {path: entry["caption"] for path, entry in results.items()}
    assert all(captions.values()), [p for p, c in captions.items() if not c]
    for path, caption in captions.items():
        text = "".join(Tables(caption).text)
        assert "**" not in text and "``" not in text and "{{" not in text, (path, text)
        assert "system-message" not in caption and "docutils" not in text, (path, caption)  # rst errors
    observable = Tables(captions["results/mock/plots/mock_cc_moresco_observable.png"])
    assert observable.tags.count("li") == 2  # the raw files: a list, one item per file
    assert "strong" in observable.tags and "mock_cc_moresco/data_MM20.dat" in "".join(observable.text)


def test_the_screenshots_show_the_pages(shots):
    _, out, _ = shots
    images = {p.stem: matplotlib.image.imread(p) for p in sorted(out.glob("*.png"))}
    assert set(images) == {"overview", "summary", *(f"{d}_{v}" for d in ("mock_cc_moresco", "mock_bao_sdss_mgs")
                                                   for v in ("observable", "validation", "provenance"))}
    for name, image in images.items():
        assert image.shape[:2] == (WINDOW[1], WINDOW[0]), name
        assert image[..., :3].std() > 0.05, f"{name}.png is blank"
        if name != "overview":  # the script opened its view: not the landing page again
            # (the same page again differs by ~0; a small figure beside the menu changes under 2 % of the window)
            assert np.abs(image[..., :3] - images["overview"][..., :3]).mean() > 0.005, name
    # the validation pages are drawn in the frame: green verdict badges; the MGS warning row is highlighted
    assert _share_of(images["mock_cc_moresco_validation"], PASS_GREEN) > 0.002
    assert _share_of(images["mock_bao_sdss_mgs_validation"], WARN_ROW) > 0.002
    assert _share_of(images["mock_cc_moresco_validation"], WARN_ROW) == 0
