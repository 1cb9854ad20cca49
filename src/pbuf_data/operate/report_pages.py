"""HTML pages of the Snakemake report: a dataset's validation report, its provenance, and the
validation summary of all datasets.

Snakemake shows an HTML result of the report in a frame (a plain-text or JSON result is only
offered for download), so each page is one self-contained file: inline style, no script, no
link to another file. Every value from a document is escaped (``html.escape``): a title,
citation or file name cannot inject markup.

The sources are the files the workflow publishes: a dataset's validation report
(``pbuf_data.publish.validation.validate``, ``Tree.report(name, "json")``), its dataset document
(``Tree.published(name, "json")``) and the summary (``pbuf_data.publish.validation.summarize``).
"""

from __future__ import annotations

import json
from html import escape

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 1.2em 1.6em; max-width: 80em; }
h1 { font-size: 1.35em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
p.lead { margin: .2em 0 .8em; color: #3d444d; }
table { border-collapse: collapse; margin: .3em 0 1em; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.mono, td.name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .92em; }
td.mono, code { overflow-wrap: anywhere; }
td.mono { min-width: 9em; }
td.name { white-space: nowrap; }
.verdict { font-weight: 600; border-radius: .3em; padding: .05em .45em; white-space: nowrap; }
.pass, .passed, .published { background: #dafbe1; color: #116329; }
.warn, .passed-with-warnings { background: #fff8c5; color: #7d4e00; }
.error, .failed, .failed-derive, .failed-validation, .failed-publication { background: #ffebe9; color: #a40e26; }
.not-run, .not-validated { background: #eaeef2; color: #3d444d; }
tr.row-warn td { background: #fffbdd; }
tr.row-error td { background: #fff0ee; }
"""

VERDICT_WORDS = {"pass": "pass", "warn": "warning", "error": "fail"}


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ])


def _value(value) -> str:
    """A check's value or threshold as a person reads it: numbers to 6 significant digits, lists and
    mappings in JSON notation."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _badge(word: str) -> str:
    """A verdict or state, coloured by its class (``passed with warnings`` -> ``passed-with-warnings``)."""
    css = "-".join(str(word).split())
    return f'<span class="verdict {escape(css)}">{escape(str(word))}</span>'


def _table(head: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> list[str]:
    """A table of already escaped cells (a cell is ``(html, css class)`` or html)."""
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for cell in row:
            text, klass = cell if isinstance(cell, tuple) else (cell, "")
            cells.append(f'<td class="{klass}">{text}</td>' if klass else f"<td>{text}</td>")
        out.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def validation_page(report: dict) -> str:
    """A dataset's validation report: its verdict and state, and one row per check (check, verdict,
    value, threshold, what it measures)."""
    name = report["dataset"]
    body = [
        f"<h1>Validation of {escape(name)}</h1>",
        f'<p class="lead">Verdict {_badge(report["verdict"])}, state {_badge(report.get("state") or "not run")}: '
        f"{report['n_points']} points, kind <code>{escape(str(report.get('kind')))}</code>, "
        f"{report['n_errors']} error(s), {report['n_warnings']} warning(s).</p>",
    ]
    if report.get("reason"):
        body.append(f"<p>Reason: {escape(str(report['reason']))}</p>")
    if report.get("npz_sha256"):
        body.append(f"<p>Validated archive sha256 <code>{escape(report['npz_sha256'])}</code></p>")
    head = ["check", "verdict", "value", "threshold", "what it measures"]
    attention = [c for c in report["checks"] if c["verdict"] != "pass"]
    if attention:  # first what needs a person's attention, then every check in the order they ran
        body.append(f"<h2>Needs attention ({len(attention)})</h2>")
        body += _table(head, *_check_rows(attention))
    body.append(f"<h2>Checks ({len(report['checks'])})</h2>")
    body += _table(head, *_check_rows(report["checks"]))
    return _page(f"Validation of {name}", body)


def _check_rows(checks: list[dict]) -> tuple[list, list[str]]:
    rows, classes = [], []
    for check in checks:
        verdict = check["verdict"]
        rows.append([
            (escape(check["name"]), "name"),
            f'<span class="verdict {escape(verdict)}">{escape(VERDICT_WORDS.get(verdict, verdict))}</span>',
            (escape(_value(check["value"])), "mono"),
            (escape(_value(check["threshold"])), "mono"),
            escape(str(check.get("message") or "")),
        ])
        classes.append("" if verdict == "pass" else f"row-{escape(verdict)}")
    return rows, classes


def _mapping_rows(mapping: dict, prefix: str = "") -> list[list[str]]:
    """Nested options flattened to ``a.b.c`` keys, one row each."""
    rows = []
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _mapping_rows(value, path + ".")
        else:
            rows.append([(escape(path), "name"), (escape(_value(value)), "mono")])
    return rows


def provenance_page(document: dict) -> str:
    """A dataset document's metadata and provenance: raw files (sha256, URL), conversions with their
    citations, registry options, software versions and time."""
    name = document["name"]
    meta = document.get("metadata", {})
    prov = document.get("provenance", {})
    body = [
        f"<h1>Provenance of {escape(name)}</h1>",
        f'<p class="lead"><strong>{escape(str(meta.get("title", "")))}</strong> '
        f"({document['n_points']} points, kind <code>{escape(str(meta.get('kind')))}</code>, "
        f"format <code>{escape(str(meta.get('format')))}</code>)</p>",
        f"<p>Citation: {escape(str(meta.get('citation', '')))}</p>",
    ]
    if meta.get("release"):
        body.append(f"<p>Release: {escape(str(meta['release']))}</p>")
    body.append(f"<p>Archive <code>{escape(str(document.get('npz_file')))}</code>, "
                f"sha256 <code>{escape(document['npz_sha256'])}</code></p>")

    files = prov.get("raw_files", [])
    body.append(f"<h2>Raw files ({len(files)})</h2>")
    body += _table(
        ["role", "path", "sha256", "bytes", "pinned", "URL"],
        [[escape(str(f.get("role", ""))), (escape(f["path"]), "mono"), (escape(f["sha256"]), "mono"),
          (escape(str(f.get("bytes", ""))), "num"), "yes" if f.get("pinned") else "no",
          (escape(f["url"]), "mono") if f.get("url") else "none"] for f in files],
    )
    conversions = prov.get("conversions", [])
    body.append(f"<h2>Conversions ({len(conversions)})</h2>")
    if conversions:
        body += _table(
            ["conversion", "what it does", "citation", "parameters"],
            [[(escape(c["name"]), "name"), escape(str(c.get("description", ""))), escape(str(c.get("citation", ""))),
              (escape(_value(c.get("parameters", {}))), "mono")] for c in conversions],
        )
    else:
        body.append("<p>None: the published values are the raw file's own.</p>")

    options = prov.get("options", {})
    body.append("<h2>Registry options</h2>")
    body += _table(["option", "value"], _mapping_rows(options)) if options else ["<p>None.</p>"]

    described = {k: v for k, v in meta.items() if k not in ("name", "kind", "format", "title", "citation", "release")}
    if described:
        body.append("<h2>Metadata</h2>")
        body += _table(["key", "value"], _mapping_rows(described))

    software = prov.get("software", {})
    body.append("<h2>Software</h2>")
    body += _table(["package", "version"], [[escape(k), (escape(str(v)), "mono")] for k, v in software.items()])
    body.append(f"<p>Derived at {escape(str(prov.get('created_utc')))} (UTC), code fingerprint "
                f"<code>{escape(str(prov.get('code_fingerprint')))}</code>.</p>")
    return _page(f"Provenance of {name}", body)


def summary_page(summary: dict) -> str:
    """The validation summary: one row per dataset with its state, verdict, points, the checks that warned
    or failed, and why it is not published."""
    body = [
        "<h1>Validation summary</h1>",
        f'<p class="lead">{summary["n_published"]}/{summary["n_datasets"]} datasets published: '
        f"{summary['n_failed']} failed, {summary['n_not_run']} not run ({summary['n_with_warnings']} with warnings).</p>",
    ]
    rows, classes = [], []
    for name, item in summary["datasets"].items():
        why = ""
        if item["state"] != "published":
            kept = "the previously published copy is kept" if item["published_copy"] else "nothing published"
            why = f"{item['reason']}; {kept}"
        flagged = [f"{check} (warning)" for check in item["warnings"]] + [f"{check} (failed)" for check in item["errors"]]
        rows.append([
            (escape(name), "name"), _badge(item["state"]), _badge(item["verdict"]), (str(item["n_points"]), "num"),
            "<br>".join(escape(f) for f in flagged), escape(why),
        ])
        classes.append("" if item["state"] == "published" and not item["warnings"]
                       else ("row-warn" if item["state"] == "published" else "row-error"))
    body += _table(["dataset", "state", "verdict", "points", "checks that did not pass", "why"], rows, classes)
    return _page("Validation summary", body)
