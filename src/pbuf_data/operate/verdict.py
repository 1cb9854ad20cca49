"""The verdict of a run: one block at its end saying what was published, what failed and why, what did not run.

Read from the tree's validation summary (rebuilt after every run, also one in which datasets failed), so a
run, ``pbuf-data resume``, ``pbuf-data reprocess`` and the API print the same block. Each failure names its
dataset, a one-line reason and the log that holds the full message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core import layout

# the job log that holds a failure of each state
LOG_OF_STATE = {"failed derive": "derive", "failed validation": "validate", "failed publication": "publish"}
REASON_CHARS = 200


def one_line(reason) -> str:
    text = " ".join(str(reason or "no reason recorded").split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _log_of(tree: layout.Tree, name: str, state: str) -> str | None:
    if state in LOG_OF_STATE:
        return tree.job_log(LOG_OF_STATE[state], name)
    for step in ("retrieve", "mock"):  # not run: a raw file could not be retrieved or generated
        logs = sorted(Path(tree.logs, step, name).glob("*.log"))
        if logs:
            return str(logs[-1])
    return None


def verdict_lines(tree: layout.Tree, names: list[str], since: float | None = None, run_failed: bool = False) -> list[str]:
    """The verdict block of a run of ``names`` in ``tree`` (paths relative to the current folder, the project);
    ``since``: the run's start time, to tell datasets republished by it from those left unchanged."""
    try:
        summary = json.loads(Path(tree.summary_json).read_text())
        items = summary["datasets"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"pbuf-data: verdict: no readable validation summary ({tree.summary_json}); see {tree.logs}/errors.log"]
    published, failed, not_run = [], [], []
    for name in names:
        item = items.get(name) or {"state": "not run", "reason": "not in the validation summary"}
        state = item.get("state", "not run")
        (published if state == "published" else not_run if state == "not run" else failed).append((name, item))
    fresh = []
    if since is not None:
        for name, _ in published:
            try:
                if os.stat(tree.receipt(name)).st_mtime >= since - 1:
                    fresh.append(name)
            except OSError:
                continue
    lines = [f"pbuf-data: verdict for {tree.base}/: {len(published)} of {len(names)} published"
             + (f" ({len(fresh)} derived by this run, {len(published) - len(fresh)} as before)" if since is not None else "")
             + f", {len(failed)} failed, {len(not_run)} not run"]
    for name, item in failed + not_run:
        state = item.get("state", "not run")
        log = _log_of(tree, name, state)
        kept = "; previous copy kept" if item.get("published_copy") else ""
        lines.append(f"  {name}: {state}: {one_line(item.get('reason'))}{kept}" + (f" (log: {log})" if log else ""))
    if run_failed and not failed and not not_run:
        lines.append(f"  a job after publication failed (figures, exports, summary, manifest or backup): see {tree.logs}/errors.log")
    if fresh:
        lines.append(f"  derived by this run: {', '.join(fresh)}")
    return lines
