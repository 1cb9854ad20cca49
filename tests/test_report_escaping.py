"""Registry text reaches the HTML report only as text: no script, no HTML, no reStructuredText directive from a
title, a citation or a URL survives, in the report Snakemake writes and in a real browser (headless Chromium)."""

from __future__ import annotations

import html
import json
import subprocess
import sys

import jinja2
import pytest
import yaml
from docutils.core import publish_parts

from conftest import PROJECT, copy_project, need_chromium
from pbuf_data.operate.report_text import rst_link, rst_text

sys.path.insert(0, str(PROJECT / "tools"))
from report_screenshots import _opener, find_chromium, report_data  # noqa: E402

SCRIPT = "</script><img src=x onerror=document.title=/PWNED-SCRIPT/.source>"
RAW = "Mock H(z)\n\n.. raw:: html\n\n   <img src=x onerror=document.title=/PWNED-RAW/.source>\n\nafter"
SUBSTITUTIONS = ".. |lt| unicode:: U+0003C\n.. |gt| unicode:: U+0003E\n.. |amp| unicode:: U+00026\n\n"


def _rendered(rst: str) -> str:
    """reStructuredText to HTML as Snakemake renders a caption (docutils' html writer, the body)."""
    return publish_parts(SUBSTITUTIONS + rst, writer="html")["body"]


@pytest.mark.parametrize("value", [SCRIPT, RAW, "x\n\n.. include:: /etc/hostname", "Pantheon+ *SH0ES* `a <b>`_ |x| [1]_",
                                   "M&M <!-- c --> a_b\\ \t\x00end", "==== \n====", "1. first\n- item"])
def test_registry_text_renders_as_exactly_its_characters(value):
    text = rst_text(value)
    assert not set("<>&") & set(text)  # nothing that could end a <script> block or open a comment
    body = _rendered(f"Title: {text}.")
    shown = "".join(ch if ch.isprintable() or ch == " " else " " for ch in value)
    assert body == f"<p>Title: {html.escape(shown, quote=False)}.</p>\n"


@pytest.mark.parametrize("url", ["https://example.org/a?x=1&y=2", "https://example.org/a_b/c.txt"])
def test_a_plain_url_is_a_link(url):
    assert _rendered(f"from {rst_link(url)}") == (f'<p>from <a class="reference external" '
                                                  f'href="{html.escape(url)}">example.org</a></p>\n')


@pytest.mark.parametrize("url", ["https://example.org/</script><script>alert(1)</script>", "javascript:alert(1)",
                                 "https://example.org/a`_\n\n.. raw:: html\n\n   <b>x</b>", "https://x.org/ends_"])
def test_any_other_url_is_text(url):
    shown = "".join(ch if ch.isprintable() else " " for ch in url)
    assert _rendered(f"from {rst_link(url)}") == f"<p>from {html.escape(shown, quote=False)}</p>\n"


def test_a_raw_folder_in_the_workflow_description_is_shown_as_text():
    template = (PROJECT / "report" / "workflow.rst").read_text()
    raw_dir = "/data/x``\n\n.. raw:: html\n\n   <script>alert(1)</script>"

    class Snakemake:
        config = {"raw_dir": raw_dir}

    rst = jinja2.Environment().from_string(template).render(snakemake=Snakemake)
    body = publish_parts(rst, writer="html")["body"]
    assert "<script>" not in body and "raw folder <tt" in body and "(URL-encoded)" in body
    assert "%0A%0A..%20raw%3A%3A%20html" in body


# -- the report Snakemake writes, in a browser ----------------------------------------------------------------------

CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    need_chromium(CHROMIUM, "the report is not opened in a browser")
    base = tmp_path_factory.mktemp("hostile-report")
    secret = base / "outside.txt"
    secret.write_text("OUTSIDE-FILE-CONTENT-5521\n")
    workflow = copy_project(base / "project")
    path = workflow.root / "config" / "registry_mock.yaml"
    registry = yaml.safe_load(path.read_text())
    entry = registry["datasets"]["mock_cc_moresco"]
    entry["title"] = SCRIPT + " " + RAW
    entry["citation"] = f"Moresco\n\n.. include:: {secret}\n\n.. raw:: html\n\n   <b id=injected>bold</b>"
    entry["files"]["table"]["url"] = "https://example.org/</script><img src=x onerror=document.title=/PWNED-URL/.source>"
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    config = workflow.root / "config" / "config.yaml"
    config.write_text(config.read_text().replace("datasets: []", "datasets: [mock_cc_moresco]", 1))
    workflow.run("--cores", "2")
    workflow.run("--report", "report.html")
    return workflow.root / "report.html", secret


def _dom(page, view=None) -> str:
    """The DOM after the report's scripts ran (Chromium headless, --dump-dom), with ``view`` opened."""
    text = page.read_text(encoding="utf-8")
    where = text.rfind("</body>")
    opened = page.with_name(f"view-{abs(hash(json.dumps(view)))}.html")
    opened.write_text(text[:where] + _opener(view) + text[where:], encoding="utf-8")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           f"--user-data-dir={page.parent / 'profile'}", "--virtual-time-budget=8000", "--dump-dom", opened.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-800:]
    return proc.stdout


@pytest.mark.workflow
def test_the_report_holds_no_live_markup_from_the_registry(hostile_report):
    report, secret = hostile_report
    text = report.read_text(encoding="utf-8")
    assert "OUTSIDE-FILE-CONTENT-5521" not in text  # .. include:: copied nothing
    assert "<img src=x" not in text and "<b id=injected" not in text  # only escaped: &lt;img ..., &lt;b ...
    results, _ = report_data(text)  # the script blocks still parse: nothing ended them early
    observable = results["results/mock/plots/mock_cc_moresco_observable.png"]
    assert "</script>" in html.unescape(observable["caption"])  # shown, as text
    assert "<" not in observable["job_properties"]["params"]


@pytest.mark.workflow
def test_no_script_runs_in_the_browser(hostile_report):
    report, _ = hostile_report
    results, _ = report_data(report.read_text(encoding="utf-8"))
    path = "results/mock/plots/mock_cc_moresco_observable.png"
    for view in (None, {"navbarMode": "resultinfo", "category": "Datasets", "subcategory": "mock_cc_moresco",
                        "resultPath": path, "content": "img"}):
        dom = _dom(report, view)
        assert "PWNED" not in dom.split("</title>")[0], "a script from the registry ran"
        assert "<img src=\"x\"" not in dom and 'id="injected"' not in dom
        if view is not None:  # the caption is drawn, with the registry text as text
            assert "&lt;/script&gt;&lt;img src=x onerror=document.title=/PWNED-SCRIPT/.source&gt;" in dom
            assert ".. raw:: html" in dom and ".. include::" in dom
