"""The report's HTML pages (validation, provenance, summary), read back with the standard library's HTML parser."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
import yaml

from conftest import PROJECT
from pbuf_data.operate.report_pages import provenance_page, summary_page, validation_page
from pbuf_data.publish.validation import summarize, validate_dataset
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import write_mock_file
from pbuf_data.read.registry import load_registry

MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")


class Tables(HTMLParser):
    """Every table of a page as rows of cell texts (header row first), and the page's text outside tags."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables, self.row_classes, self.text, self._cell, self.tags = [], [], [], None, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
            self.row_classes.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.row_classes[-1].append(dict(attrs).get("class", ""))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def mocks(tmp_path_factory):
    """Two embedded mocks derived, validated and saved: {name: (validation report, dataset document)}."""
    folder = tmp_path_factory.mktemp("mock_raw")
    block = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
    out = {}
    for name in ("mock_cc_moresco", "mock_bao_sdss_mgs"):
        entry = MOCKS[name]
        for role, spec in entry["files"].items():
            write_mock_file(entry, role, folder / spec["path"], block, entry["mock"]["seed"])
        ds = derive_dataset(name, entry, raw_dir=folder)
        report = validate_dataset(ds, expected_points=entry.get("expected_points"))
        ds.save(folder / f"{name}.npz", folder / f"{name}.json")
        out[name] = (dict(report, state="published", reason=None), json.loads((folder / f"{name}.json").read_text()))
    return out


def test_validation_page_has_one_row_per_check_with_its_verdict(mocks):
    report, _ = mocks["mock_bao_sdss_mgs"]
    page = Tables(validation_page(report))
    assert len(page.tables) == 2  # what needs attention, then every check
    head, *rows = page.tables[1]
    assert head == ["check", "verdict", "value", "threshold", "what it measures"]
    words = {"pass": "pass", "warn": "warning", "error": "fail"}
    assert [(r[0], r[1]) for r in rows] == [(c["name"], words[c["verdict"]]) for c in report["checks"]]
    # the non-Gaussian likelihood's warning: first, alone, highlighted, with the check's own message
    warned = [i for i, c in enumerate(report["checks"]) if c["verdict"] == "warn"]
    assert [report["checks"][i]["name"] for i in warned] == ["gaussian_likelihood"]
    assert page.tables[0][1:] == [rows[warned[0]]] and page.row_classes[0] == ["", "row-warn"]
    assert page.row_classes[1][1 + warned[0]] == "row-warn"
    assert rows[warned[0]][4] == report["checks"][warned[0]]["message"]
    assert "passed with warnings" in "".join(page.text) and "published" in "".join(page.text)


def test_validation_values_are_shown_to_six_digits(mocks):
    report, _ = mocks["mock_cc_moresco"]
    page = Tables(validation_page(report))
    assert len(page.tables) == 1  # every check passed: nothing needs attention
    rows = {r[0]: r for r in page.tables[0][1:]}
    check = next(c for c in report["checks"] if c["name"] == "covariance_condition_number")
    assert float(rows["covariance_condition_number"][2]) == pytest.approx(check["value"], rel=1e-5)
    assert rows["covariance_condition_number"][3] == "[1e+10, 1e+14]"
    assert rows["expected_points"][2] == "32"


def test_provenance_page_lists_raw_files_conversions_and_software(mocks):
    _, document = mocks["mock_cc_moresco"]
    page = Tables(provenance_page(document))
    files, conversions = page.tables[0], page.tables[1]
    prov = document["provenance"]
    assert files[0] == ["role", "path", "sha256", "bytes", "pinned", "URL"]
    assert [(r[1], r[2], int(r[3])) for r in files[1:]] == [(f["path"], f["sha256"], f["bytes"]) for f in prov["raw_files"]]
    assert [(r[0], r[2]) for r in conversions[1:]] == [(c["name"], c["citation"]) for c in prov["conversions"]]
    assert "Moresco et al. 2020" in conversions[1][2]
    software = dict(r for r in page.tables[-1][1:])
    assert software == {k: str(v) for k, v in prov["software"].items()}
    assert prov["created_utc"] in "".join(page.text)


def test_summary_page_names_the_checks_that_did_not_pass(mocks):
    report, _ = mocks["mock_bao_sdss_mgs"]
    bad = dict(report, verdict="failed", checks=[*report["checks"], {"name": "covariance_symmetric", "verdict": "error", "value": 1.0,
                                                    "threshold": 1e-10, "message": "max |C - C^T| / max |C|"}])
    summary = summarize({"mock_bao_sdss_mgs": {"state": "failed validation", "reason": "check failed", "report": bad}})
    row = Tables(summary_page(summary)).tables[0][1]
    assert row[2] == "failed" and row[4] == "gaussian_likelihood (warning)covariance_symmetric (failed)"


def test_every_value_is_escaped(mocks):
    report, document = mocks["mock_cc_moresco"]
    hostile = '<script>alert("x")</script> & <b>'
    report = dict(report, dataset=hostile, checks=[dict(report["checks"][0], message=hostile, value=hostile)])
    document = json.loads(json.dumps(document))
    document["name"] = document["metadata"]["title"] = hostile
    document["provenance"]["raw_files"][0]["path"] = hostile
    for html in (validation_page(report), provenance_page(document),
                 summary_page(summarize({hostile: {"state": "failed derive", "reason": hostile, "report": None}}))):
        page = Tables(html)
        assert "script" not in page.tags and "b" not in page.tags  # no markup came through
        assert hostile in "".join(page.text)  # the text is shown as it is


def test_summary_page_says_why_a_dataset_is_not_published(mocks):
    report, _ = mocks["mock_cc_moresco"]
    summary = summarize({
        "mock_cc_moresco": {"state": "published", "report": report, "published_copy": True},
        "mock_bao_6dfgs": {"state": "failed validation", "reason": "check 'expected_points' failed", "report": None,
                           "published_copy": True},
    })
    page = Tables(summary_page(summary))
    head, *rows = page.tables[0]
    assert head == ["dataset", "state", "verdict", "points", "checks that did not pass", "why"]
    assert rows[0] == ["mock_cc_moresco", "published", "passed", "32", "", ""]
    assert rows[1][1] == "failed validation"
    assert rows[1][5] == "check 'expected_points' failed; the previously published copy is kept"
    assert page.row_classes[0] == ["", "", "row-error"]
    assert "1/2 datasets published: 1 failed" in "".join(page.text)
