"""What each workflow step does, callable from Snakemake scripts, the API and by hand.

Scripts under ``scripts/`` only unpack the ``snakemake`` object and call
:func:`run_job` with one of these functions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from .atomic import write_text
from .errors import PbufDataError

log = logging.getLogger("pbuf_data")


def run_step(log_file, step, *args, dataset=None, rule=None, inputs=(), outputs=(), **kwargs):
    """Run one workflow step as a job.

    Logs go to the job's ``log_file``; the aggregate logs and the audit trail
    record the outcome. A PbufDataError ends the process with its message
    (dataset, file, line or check) and no traceback; any other exception is an
    internal error whose traceback goes to the job's log only.
    """
    from .logs import record_job

    os.umask(0o022)
    logging.basicConfig(
        filename=str(log_file) if log_file else None,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    start = time.perf_counter()
    status, message, result = "success", "", None
    try:
        result = step(*args, **kwargs)
    except PbufDataError as exc:
        status, message = "failed", str(exc)
        log.error("%s", exc)
    except Exception as exc:  # a bug, not bad input: keep the traceback for developers, in the log
        status, message = "failed", f"internal error in {step.__name__}: {exc!r} (traceback in {log_file})"
        log.exception("internal error")
    seconds = time.perf_counter() - start
    record_job(rule or step.__name__, status, seconds, dataset=dataset, message=message, inputs=inputs, outputs=outputs)
    if status != "success":
        print(f"ERROR: {message}", file=sys.stderr)
        sys.exit(1)
    log.info("%s finished in %.3f s", step.__name__, seconds)
    return result


def run_job(smk, step, *args, **kwargs):
    """:func:`run_step` for a Snakemake job: log, dataset, inputs and outputs come from the ``snakemake`` object."""
    return run_step(
        smk.log[0] if smk.log else None,
        step,
        *args,
        dataset=smk.wildcards.get("dataset"),
        rule=smk.rule,
        inputs=list(smk.input),
        outputs=list(smk.output),
        **kwargs,
    )


def retrieve(name, path_in_registry, url, sha256, output, mirror_hint, max_bytes):
    from .retrieve import download

    download(url, output, sha256, dataset=name, name=path_in_registry, mirror_hint=mirror_hint, max_bytes=max_bytes)
    log.info("%s: retrieved %s from %s (sha256 matches the pin)", name, path_in_registry, url)


def mock_file(name, entry, role, output, fiducial, seed):
    """Write one raw file of a mock survey (the embedded default)."""
    from .mock import write_mock_file

    try:
        write_mock_file(entry, role, output, fiducial, seed)
    except PbufDataError as exc:
        raise exc.with_context(dataset=name) from None
    log.info("%s: mock %s (seed %d) -> %s", name, role, seed, output)


def derive(name, entry, paths, npz, json_path, max_bytes=None, code=None):
    """Derive one dataset into staging, and write its processing summary (also when it fails)."""
    import resource

    from .derive import derive_dataset
    from .logs import now_utc, write_processing_summary

    start, started = time.perf_counter(), now_utc()
    summary = {"dataset": name, "kind": entry["kind"], "format": entry["format"], "started": started, "status": "failed"}
    try:
        dataset = derive_dataset(name, entry, paths=paths, max_bytes=max_bytes)
        if code:
            dataset.provenance["code_fingerprint"] = code
        dataset.save(npz, json_path)
        warnings = [w for w in [dataset.metadata.get("covariance", {}).get("warning"), dataset.metadata.get("likelihood")] if w]
        for warning in warnings:
            log.warning("%s: %s", name, warning)
        summary.update(
            status="success",
            points_in=dataset.metadata.get("selection", {}).get("n_rows_in", len(dataset)),
            points_out=len(dataset),
            warnings=warnings,
        )
        log.info("%s: %d points -> %s", name, len(dataset), npz)
        return dataset
    except PbufDataError as exc:
        summary["error"] = str(exc)
        raise
    finally:
        summary["processing_duration"] = round(time.perf_counter() - start, 4)
        summary["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        write_processing_summary(summary)


def validate(npz, json_path, report_json, report_txt, expected_points=None, thresholds=None):
    from .dataset import read_dataset
    from .validation import report_text, validate_dataset

    dataset = read_dataset(npz, json_path, verify=True)
    report = validate_dataset(dataset, expected_points=expected_points, thresholds=thresholds)
    text = report_text(report)
    for line in text.splitlines():
        log.info("%s", line)
    if report["verdict"] == "failed":
        failed = [c["name"] for c in report["checks"] if c["verdict"] == "error"]
        raise PbufDataError(f"validation failed: {failed} (full report in this rule's log)", dataset=dataset.name,
                            file=str(npz), check=",".join(failed))
    write_text(report_json, json.dumps(report, indent=2) + "\n")
    write_text(report_txt, text)
    return report


def summarize_validation(report_paths, summary_json, summary_txt):
    from .validation import summarize

    reports = [json.loads(Path(p).read_text()) for p in report_paths]
    summary = summarize(reports)
    lines = [f"{summary['n_passed']}/{summary['n_datasets']} datasets passed validation "
             f"({summary['n_with_warnings']} with warnings, {summary['n_failed']} failed)"]
    for name, item in summary["datasets"].items():
        extra = f" warnings: {', '.join(item['warnings'])}" if item["warnings"] else ""
        lines.append(f"  {name:28s} {item['verdict']:22s} {item['n_points']:6d} points{extra}")
    write_text(summary_json, json.dumps(summary, indent=2) + "\n")
    write_text(summary_txt, "\n".join(lines) + "\n")
    return summary


def publish(sources, targets):
    """Copy validated files to their published names, atomically."""
    from .atomic import atomic_file

    for source, target in zip(sources, targets):
        with open(source, "rb") as src, atomic_file(target) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        log.info("published %s", target)


def manifest(paths, manifest_path):
    """Manifest of the whole published tree: this run's outputs and any other file in the checked folders
    (e.g. the datasets of the other registry, mock or real), so that verify knows every file."""
    from .integrity import WATCHED_DIRS, write_manifest

    present = {
        str(p)
        for folder in WATCHED_DIRS
        for p in Path(folder).glob("*")
        if (p.is_file() or p.is_symlink()) and not p.name.startswith(".")
    }
    entries = write_manifest(sorted(set(map(str, paths)) | present), manifest_path)
    log.info("manifest %s: %d files", manifest_path, len(entries))
    return entries


def backup(manifest_path, config_files, backup_dir, keep, record_path):
    from .backup import create_backup, write_record

    record = create_backup(".", backup_dir, str(manifest_path), list(config_files), keep)
    log.info("backup %s: %d files, %d bytes, pruned %s", record["archive"], record["members"], record["bytes"], record["pruned"])
    write_record(record_path, record)
    return record


def plots(npz, json_path, fiducial, observable_png, correlation_png):
    from .dataset import read_dataset
    from .plots import save_figures

    save_figures(read_dataset(npz, json_path), fiducial, observable_png, correlation_png)
