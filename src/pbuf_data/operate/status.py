"""Dataset-level preview: is each dataset up to date, and if not, why would it be reprocessed?

Answers in the users' words by comparing what a published dataset records
(raw files' sha256, options, code fingerprint) with the current raw files,
registry and code. ``snakemake -n`` gives Snakemake's own job-level view.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import layout
from ..core.integrity import sha256_file
from ..core.logs import last_error
from ..read.registry import raw_location

UP_TO_DATE = "up to date"


def _changed_keys(old, new, path=()):
    """(key path, old value, new value) of each leaf that differs (None: absent)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [c for key in keys for c in _changed_keys(old.get(key), new.get(key), (*path, key))]
    return [(path, old, new)] if old != new else []


def _shown(value, limit=60):
    """A registry value as one short line (its repr: quotes and escapes control characters)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def options_changed(recorded: dict, current: dict) -> list[str]:
    """Each option of a registry entry that differs from the options its dataset was derived with, named with
    both values: ``option systematics changed: ['IMF'] -> ['IMF', 'mod']``."""
    return [f"option {'.'.join(_shown(k, 40) if not (isinstance(k, str) and k.isprintable()) else k for k in path)}"
            f" changed: {_shown(old)} -> {_shown(new)}" for path, old, new in _changed_keys(recorded, current)]


def last_failures(root: Path, tree: layout.Tree) -> dict[str, str]:
    """The error of each dataset whose last derivation failed, from its newest processing summary (the folder
    of summaries listed once, not once per dataset)."""
    newest: dict[str, Path] = {}
    folder = root / tree.logs / "transformations"
    for path in sorted(folder.glob("*_processing_summary_*.json")):
        newest[path.name.rsplit("_processing_summary_", 1)[0]] = path
    failures = {}
    for name, path in newest.items():
        try:
            last = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(last, dict) and last.get("status") != "success" and last.get("error"):
            failures[name] = last["error"]
    return failures


def _settings_changed(receipt: Path, thresholds: dict | None) -> list[str]:
    """The validation thresholds of the configuration against those the dataset was made with (its receipt),
    each changed key with both values."""
    try:
        recorded = json.loads(receipt.read_text()).get("settings", {}).get("thresholds")
    except (OSError, ValueError, AttributeError):
        return []
    if recorded is None or thresholds is None:
        return []
    changed = [f"{'.'.join(map(str, path))} {_shown(old)} -> {_shown(new)}" for path, old, new in
               _changed_keys(recorded, thresholds)]
    return [f"validation thresholds changed in config: {'; '.join(changed)}"] if changed else []


def dataset_status(root: Path, tree: layout.Tree, name: str, entry: dict, raw_dir: str, mock: bool, retrieve: bool,
                   thresholds: dict | None, sha256, code: str, failure: str | None = None) -> list[str]:
    """Reasons the dataset would be reprocessed (empty: up to date); ``sha256(path)`` hashes a raw file, ``code`` is
    the fingerprint of its format's code (:func:`pbuf_data.read.derive.code_fingerprint`), ``failure`` the error
    of its last derivation if it failed (:func:`last_failures`)."""
    reasons = []
    document_path = root / tree.published(name, "json")
    if not document_path.exists() and not (root / tree.receipt(name)).exists():
        reasons.append("not derived yet: no published dataset")
    else:  # a file its job published, deleted since: Snakemake reruns the job ("Missing output files", same words)
        reasons += [f"{path} is missing" for path in tree.published_files(name).values() if not (root / path).exists()]
    provenance = None
    if document_path.exists():
        try:
            provenance = json.loads(document_path.read_text())["provenance"]
        except (ValueError, KeyError, TypeError):
            reasons.append("the published dataset document is unreadable (see pbuf-data verify)")
    recorded = {f["role"]: f for f in provenance["raw_files"]} if provenance else {}
    for role, spec in entry["files"].items():
        where = raw_location(raw_dir, spec["path"], mock=mock)
        path = root / where if not Path(where).is_absolute() else Path(where)
        if not path.exists():
            if mock:
                reasons.append(f"mock raw file {spec['path']} will be generated")
            elif retrieve and spec.get("url") and spec.get("sha256"):  # as the workflow decides (common.smk)
                reasons.append(f"raw file {spec['path']} is missing: it will be downloaded from {spec['url']}")
                failure = last_error(root / tree.job_log("retrieve", spec["path"]))
                if failure:
                    reasons.append(f"its last download failed: {failure}")
            else:
                reasons.append(f"raw file {spec['path']} is missing: put it at {raw_dir}/{spec['path']}")
            continue
        if not provenance:
            continue
        actual = sha256(path)
        if role not in recorded:
            reasons.append(f"raw file {spec['path']} was added to the registry entry")
        elif actual != recorded[role]["sha256"]:
            note = ""
            if spec.get("sha256") and actual != spec["sha256"]:
                note = " and no longer matches its registry pin: the derivation will refuse it until the pin is updated"
            reasons.append(f"raw file {spec['path']} changed since the dataset was derived{note}")
    if provenance:
        for role in sorted(set(recorded) - set(entry["files"])):
            reasons.append(f"raw file {recorded[role]['path']} was removed from the registry entry")
        changed = options_changed(provenance["options"], entry["options"])
        if changed:
            reasons.append("; ".join(changed))
        if provenance.get("code_fingerprint") != code:
            reasons.append(f"the code that derives format '{entry['format']}' changed")
        reasons += _settings_changed(root / tree.receipt(name), thresholds)
    if failure:
        reasons.append(f"the last derivation failed ({failure})")
    return reasons


def workflow_status(project, sha256=sha256_file) -> dict[str, list[str]]:
    """Reasons per dataset of the active project (a :class:`pbuf_data.operate.project.Project`) and its result tree."""
    from ..read.derive import code_fingerprint

    root, config = project.root, project.config
    entries = {name: project.registry[name] for name in project.datasets}
    codes = {fmt: code_fingerprint(fmt) for fmt in {entry["format"] for entry in entries.values()}}  # once a format
    failures = last_failures(root, project.tree)
    return {
        name: dataset_status(root, project.tree, name, entry, project.raw_dir, project.use_mock, config["retrieve"],
                             config.get("validation"), sha256, codes[entry["format"]], failures.get(name))
        for name, entry in entries.items()
    }
