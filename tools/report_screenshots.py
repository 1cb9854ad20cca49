#!/usr/bin/env python3
"""Build the Snakemake report and photograph it in headless Chromium, as a person would see it.

    .venv/bin/python tools/report_screenshots.py                       # embedded default (mock) run
    .venv/bin/python tools/report_screenshots.py --config raw_dir=../shared/data/raw
    .venv/bin/python tools/report_screenshots.py --no-run --datasets cc_moresco bao_sdss_mgs
    .venv/bin/python tools/report_screenshots.py --no-run --window 1400x1000   # a smaller screen

Runs ``snakemake --cores N`` (unless ``--no-run``) and ``snakemake --report report.html`` in the
project folder (``--root``, default: this project), then writes PNG screenshots into ``--out``
(default ``report-screenshots/`` in the project):

- ``overview.png``: the report's landing page (workflow description and rule graph);
- ``summary.png``: the *Overview* category's validation summary of all datasets;
- ``<dataset>_observable.png``, ``<dataset>_validation.png``, ``<dataset>_provenance.png``: a
  dataset's figure with its caption, and its validation and provenance pages, for each dataset
  of ``--datasets`` (default: the first two datasets of the report).

The report is a single-page application without addresses for its views; each screenshot is
taken of a copy of ``report.html`` with a few lines of script that open the view (they call the
report's own ``app.setView``, as its buttons do). Needs ``chromium`` (Debian: ``apt-get install
chromium``) or ``--chromium PATH``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
WINDOW = (1920, 1080)  # a common screen
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ScreenshotError(RuntimeError):
    """A step of the screenshots failed: the message says which and why."""


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def report_data(html: str) -> tuple[dict, dict]:
    """The report's ``results`` (path -> entry with caption, labels, mime type) and ``categories``."""
    def variable(name):
        match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\n', html, re.S)
        try:
            return json.loads(match.group(1))
        except (AttributeError, ValueError):
            raise ScreenshotError(f"report.html has no readable '{name}' table: not a Snakemake report?") from None
    return variable("results"), variable("categories")


def _opener(view: dict | None) -> str:
    """Script that opens ``view`` once the report's app exists (None: the landing page)."""
    if view is None:
        return ""
    return (
        "<script>(function open() {"
        " if (typeof app === 'undefined' || !app) { setTimeout(open, 50); return; }"
        f" const view = {json.dumps(view)};"
        " if (view.resultPath) { view.contentPath = results[view.resultPath].data_uri; }"
        " app.setView(view);"
        "})();</script>"
    )


def views(results: dict, datasets: list[str]) -> dict[str, dict | None]:
    """Screenshot name -> the view to open (navbar and content), found in the report's own tables."""
    by_figure = {}
    for path, entry in results.items():
        labels = entry.get("labels") or {}
        by_figure[(labels.get("dataset"), labels.get("figure"))] = path
    summary = by_figure.get((None, "validation summary"))
    if summary is None:
        raise ScreenshotError("the report has no validation summary (category Overview)")
    out = {
        "overview": None,
        "summary": {"navbarMode": "resultinfo", "category": "Overview", "resultPath": summary, "content": "html"},
    }
    for name in datasets:
        for figure, key, content in (("observable vs z", "observable", "img"),
                                     ("validation report", "validation", "html"),
                                     ("provenance", "provenance", "html")):
            path = by_figure.get((name, figure))
            if path is None:
                raise ScreenshotError(f"the report has no {figure!r} of dataset {name!r}")
            out[f"{name}_{key}"] = {"navbarMode": "resultinfo", "category": "Datasets", "subcategory": name,
                                    "resultPath": path, "content": content}
    return out


def screenshot(chromium: str, page: Path, png: Path, timeout: int = 120, window: tuple[int, int] = WINDOW) -> None:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + str(page.parent / "profile"),
           f"--window-size={window[0]},{window[1]}", "--virtual-time-budget=8000",
           f"--screenshot={png}", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png.exists() or png.stat().st_size == 0:
        raise ScreenshotError(f"chromium could not photograph {page.name} (exit {proc.returncode}): "
                              + proc.stderr.strip()[-800:])


_MEASURE = (
    "<script>(function measure() {"
    " const img = Array.from(document.images).find(i => i.src === results[RESULT].data_uri);"
    " if (!img || !img.complete || !img.naturalHeight) { setTimeout(measure, 50); return; }"
    " const box = img.getBoundingClientRect(), out = document.createElement('pre');"
    " out.id = 'pbuf-image-box';"
    " out.textContent = JSON.stringify({top: box.top, bottom: box.bottom, left: box.left, right: box.right,"
    " naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,"
    " innerWidth: window.innerWidth, innerHeight: window.innerHeight});"
    " document.body.appendChild(out);"
    "})();</script>"
)


def image_box(report_html: Path, chromium: str, dataset: str, window: tuple[int, int] = WINDOW,
              timeout: int = 120) -> dict:
    """Where the report's viewer draws ``dataset``'s observable figure in a ``window`` (width, height): its
    picture's box in CSS pixels of the window (top, bottom, left, right, as the browser lays it out), the
    picture's own size (naturalWidth, naturalHeight) and the window's (innerWidth, innerHeight)."""
    html = report_html.read_text(encoding="utf-8")
    results, _ = report_data(html)
    view = views(results, [dataset])[f"{dataset}_observable"]
    where = html.rfind("</body>")
    with tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "measure.html"
        measure = _MEASURE.replace("RESULT", json.dumps(view["resultPath"]))
        page.write_text(html[:where] + _opener(view) + measure + html[where:], encoding="utf-8")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + str(Path(scratch) / "profile"),
               f"--window-size={window[0]},{window[1]}", "--virtual-time-budget=8000", "--dump-dom",
               page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    match = re.search(r'<pre id="pbuf-image-box">(.*?)</pre>', proc.stdout)
    if proc.returncode != 0 or match is None:
        raise ScreenshotError(f"chromium could not measure the figure of {dataset} (exit {proc.returncode}): "
                              + proc.stderr.strip()[-800:])
    return json.loads(match.group(1))


def take(report_html: Path, out: Path, chromium: str, datasets: list[str] | None = None,
         window: tuple[int, int] = WINDOW) -> list[Path]:
    """Screenshots of ``report_html`` into ``out`` in a ``window`` (width, height) of pixels; ``datasets``
    default to the report's first two."""
    html = report_html.read_text(encoding="utf-8")
    results, categories = report_data(html)
    if not datasets:
        datasets = sorted(categories.get("Datasets", {}))[:2]
    where = html.rfind("</body>")
    if where < 0:
        raise ScreenshotError(f"{report_html} has no </body>: not a Snakemake report?")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, view in views(results, datasets).items():
            page = Path(scratch) / f"{name}.html"
            page.write_text(html[:where] + _opener(view) + html[where:], encoding="utf-8")
            screenshot(chromium, page, out / f"{name}.png", window=window)
            written.append(out / f"{name}.png")
    return written


def snakemake(root: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ScreenshotError(f"{' '.join(cmd[2:])} failed in {root}:\n{(proc.stdout + proc.stderr)[-3000:]}")


def _window(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT in pixels, e.g. 1400x1000") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"{text!r}: a window of at least 200x200 pixels")
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=PROJECT, help="project folder (default: this project)")
    parser.add_argument("--out", type=Path, help="folder of the PNG files (default: <root>/report-screenshots)")
    parser.add_argument("--cores", default="2", help="cores of the run (default 2)")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="passed to snakemake --config")
    parser.add_argument("--no-run", action="store_true", help="only build the report of the results already there")
    parser.add_argument("--datasets", nargs="*", help="datasets to photograph (default: the first two of the report)")
    parser.add_argument("--chromium", help="the browser (default: chromium on the PATH)")
    parser.add_argument("--window", type=_window, default=WINDOW, metavar="WIDTHxHEIGHT",
                        help=f"the browser window in pixels (default {WINDOW[0]}x{WINDOW[1]})")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("error: chromium not found (Debian/Ubuntu: apt-get install chromium), or pass --chromium PATH",
              file=sys.stderr)
        return 2
    root = args.root.resolve()
    config = ["--config", *args.config] if args.config else []
    try:
        if not args.no_run:
            snakemake(root, "--cores", args.cores, *config)
        snakemake(root, "--report", "report.html", *config)
        written = take(root / "report.html", (args.out or root / "report-screenshots").resolve(), chromium,
                       args.datasets, window=args.window)
    except (ScreenshotError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
