"""The report as a person sees it: tools/report_screenshots.py builds the embedded default's report and
photographs it in headless Chromium; the pages' tables, the captions and the pictures are checked."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from conftest import PROJECT, need_chromium
from pbuf_data.read.registry import load_registry
from test_report_pages import Tables

sys.path.insert(0, str(PROJECT / "tools"))
from report_screenshots import WINDOW, find_chromium, image_box, report_data, take  # noqa: E402

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
                           "--out", str(out), "--datasets", "mock_cc_moresco", "mock_bao_sdss_mgs", "mock_bao_desi_dr1"],
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
    assert set(images) == {"overview", "summary", *(f"{d}_{v}" for d in ("mock_cc_moresco", "mock_bao_sdss_mgs",
                                                                         "mock_bao_desi_dr1")
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



def _drawn_rows(image):
    """First and last row of a screenshot where the viewer's content (right of the menu) is not white."""
    content = image[:, int(0.55 * image.shape[1]):, :3]
    rows = np.flatnonzero(np.any(content < 0.9, axis=(1, 2)))
    return (int(rows[0]), int(rows[-1])) if rows.size else (None, None)


def test_a_tall_bao_figure_is_seen_whole_at_both_window_sizes(shots, tmp_path):
    """The tallest observable figure (the panels of DESI's three observable types) at 1920x1080 and 1400x1000.
    The viewer centres a picture and cuts what overflows at the top and bottom: the box the browser lays the
    picture out in lies inside the page of a browser window of that size, unsquashed, and a screenshot's drawn
    rows stay clear of both edges."""
    workflow, out, results = shots
    png = base64.b64decode(results["results/mock/plots/mock_bao_desi_dr1_observable.png"]["data_uri"].split(",", 1)[1])
    height, width = matplotlib.image.imread(io.BytesIO(png)).shape[:2]
    assert height > 1.05 * width  # the tall figure it is about (three types, each data and pulls)
    smaller = (1400, 1000)
    take(workflow.root / "report.html", tmp_path, CHROMIUM, ["mock_bao_desi_dr1"], window=smaller)
    for window, shot in ((WINDOW, out / "mock_bao_desi_dr1_observable.png"),
                         (smaller, tmp_path / "mock_bao_desi_dr1_observable.png")):
        box = image_box(workflow.root / "report.html", CHROMIUM, "mock_bao_desi_dr1", window)
        # the page of a browser window of that size (without the browser's own bars: about 140 pixels less high)
        assert box["innerWidth"] == window[0] and 0.8 * window[1] < box["innerHeight"] <= window[1], (window, box)
        assert (box["naturalWidth"], box["naturalHeight"]) == (width, height)
        assert 0 <= box["top"] and box["bottom"] <= box["innerHeight"] and box["right"] <= window[0], (window, box)
        shown_w, shown_h = box["right"] - box["left"], box["bottom"] - box["top"]
        assert shown_w > 0.8 * width and abs(shown_h / shown_w - height / width) < 0.01, (window, box)
        image = matplotlib.image.imread(shot)
        first, last = _drawn_rows(image)
        assert first is not None and first > 2 and last < window[1] - 3, (window, first, last)
