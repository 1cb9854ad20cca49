"""What each workflow step does, callable from the workflow's jobs, the API and by hand.

Each rule's job is its script, ``python3 scripts/RULE.py ...`` (:mod:`pbuf_data.operate.job`), which calls
:func:`pbuf_data.operate.joblog.run_step` with one of these functions.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from ..core import layout
from ..core.atomic import write_text
from ..core.errors import PbufDataError
from .joblog import phase_logging

log = logging.getLogger("pbuf_data")


def retrieve(name, path_in_registry, url, sha256, output, mirror_hint, max_bytes):
    from ..read.retrieve import download

    download(url, output, sha256, dataset=name, name=path_in_registry, mirror_hint=mirror_hint, max_bytes=max_bytes)
    log.info("%s: retrieved %s from %s (sha256 matches the pin)", name, path_in_registry, url)


def mock_file(name, entry, role, output, fiducial, seed):
    """Write one raw file of a mock survey (the embedded default)."""
    from ..read.mock import write_mock_file

    try:
        write_mock_file(entry, role, output, fiducial, seed)
    except PbufDataError as exc:
        raise exc.with_context(dataset=name) from None
    log.info("%s: mock %s (seed %d) -> %s", name, role, seed, output)


def derive(tree, name, entry, paths, npz, json_path, *, check, max_bytes=None, code=None):
    """Derive one dataset into staging, and write its processing summary (also when it fails): its peak memory
    and its memory at the start (a job forked by the helper starts at the helper's, which it shares).
    ``check(dataset, released)`` runs while the staged pair is written (:class:`_Staging`; ``released`` waits until
    the writer no longer reads the dataset's arrays) and returns, not raises, what it finds; its result is returned.
    The summary is of the derivation and its staging: it succeeded when the staged pair was written, and its
    duration ends then; its peak memory is the job's until the summary is written, ``check`` included."""
    from ..core.logs import now_utc, peak_rss_mib, write_processing_summary
    from ..read.derive import derive_dataset

    start, started = time.perf_counter(), now_utc()
    summary = {"dataset": name, "kind": entry["kind"], "format": entry["format"], "started": started, "status": "failed",
               "memory_at_start_mb": round(peak_rss_mib(), 1)}
    staging = None
    try:
        dataset = derive_dataset(name, entry, paths=paths, max_bytes=max_bytes)
        if code:
            dataset.provenance["code_fingerprint"] = code
        warnings = [w for w in [dataset.metadata.get("covariance", {}).get("warning"), dataset.metadata.get("likelihood")] if w]
        summary.update(
            points_in=dataset.metadata.get("selection", {}).get("n_rows_in", len(dataset)),
            points_out=len(dataset),
            warnings=warnings,
        )
        with _Staging(tree, name, dataset, npz, json_path) as staging:
            result = check(dataset, staging.released)
        for warning in warnings:
            log.warning("%s: %s", name, warning)
        log.info("%s: %d points -> %s", name, summary["points_out"], npz)
        return result
    except PbufDataError as exc:
        summary["error"] = str(exc)
        raise
    finally:
        ended = staging and staging.ended
        if ended:
            summary["status"] = "success"
        summary["processing_duration"] = round((ended or time.perf_counter()) - start, 4)
        summary["peak_memory_mb"] = round(peak_rss_mib(), 1)
        write_processing_summary(summary, logs_dir=Path(tree.logs))


class _Staging:
    """A dataset's staged pair written in a thread while the ``with`` block runs, then its sums (removed first: an
    interrupted write leaves none), then the copy publication puts in place of ``<name>.npz``
    (:func:`pbuf_data.publish.publication.prepare_copy`; the job removes one publication did not take,
    :func:`pbuf_data.publish.publication.copy_ahead`). Until
    :meth:`released` returns, the writer reads the dataset's arrays, which must not change; it returns once the
    archive's bytes are hashed and written to the file, before they are flushed to disk and the document is written
    (or once the write failed). Leaving the block waits for the write: its error is raised if the block ended
    without one (a dataset whose staged pair is not written is a failed derivation, whatever its validation found);
    another exception of the block (a bug, an interruption) is raised as it is, the writer's error logged beside
    it."""

    def __init__(self, tree, name, dataset, npz, json_path):
        self.tree, self.name, self.dataset, self.paths = tree, name, dataset, (npz, json_path)
        self.ended = None  # time.perf_counter() when the staged pair was written
        self._released = threading.Event()

    def _write(self):
        from ..publish.publication import prepare_copy
        from ..publish.sidecars import forget, record

        try:
            forget(self.tree.staged_sums(self.name))
            self.dataset.save(*self.paths, arrays_written=self._released.set)
        finally:
            self._released.set()
        record(list(self.paths), self.tree.staged_sums(self.name))
        self.ended = time.perf_counter()
        prepare_copy(self.paths[0], self.tree.derived)  # publication's copy, while the dataset is validated

    def released(self) -> None:
        """Wait until the writer no longer reads the dataset's arrays."""
        self._released.wait()

    def __enter__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pbuf-stage")
        self._writing = self._pool.submit(self._write)
        return self

    def __exit__(self, kind, exc, traceback):
        try:
            failed = self._writing.exception()
        finally:
            self._pool.shutdown()
        if exc is None and failed is not None:
            raise failed
        if exc is not None and failed is not None and failed is not exc:
            log.error("%s: the staged pair was not written either: %s", self.name, failed)
        return False


def _checked(dataset, released, logs, expected_points, thresholds, fiducial=None):
    """The validation report of a dataset as derived, in memory (the arrays its staged archive is written from: the
    digest of that write is the one its document records and publication compares), logged in the job's validate
    log; or the PbufDataError that stopped it, returned (raised inside :class:`_Staging`, it would pass for a failed
    derivation). The covariance's own buffer takes its Cholesky factor once ``released()`` has returned (the writer
    is done with it): the dataset is not used after."""
    from ..publish.validation import report_text, validate_dataset

    try:
        with phase_logging(logs["validate"]):
            report = validate_dataset(dataset, expected_points=expected_points, thresholds=thresholds,
                                      fiducial=fiducial, factor_in_place=True, before_overwrite=released)
            for line in report_text(report).splitlines():
                log.info("%s", line)
    except PbufDataError as exc:
        return exc
    return report


def prepare(tree, name, entry, paths, logs, receipt, *, max_bytes=None, code=None, expected_points=None, thresholds=None,
            missing=(), fiducial=None):
    """One dataset's job: derive into staging, validate, publish; then write the receipt (the job's output).

    The validation report (``<tree>/validation/<name>.json``, ``.txt``) is written whatever happens and says
    which state the dataset reached (published, failed derive, failed validation, failed publication) and
    why; like the published files, an output Snakemake neither deletes nor restores. Publication is the gate: nothing is
    published unless validation passed. A failure raises after the report is written, so the job fails,
    its receipt is gone and the dataset is retried by the next run. ``missing`` lists raw files that are
    neither present nor retrievable (with where to put each): the job then fails at once, naming them.
    """

    def staged(npz, doc):
        if missing:
            raise PbufDataError(f"{len(missing)} raw file(s) missing and not retrievable:\n  " + "\n  ".join(missing),
                                dataset=name, check="raw files present")
        return derive(tree, name, entry, paths, npz, doc, max_bytes=max_bytes, code=code,
                      check=lambda dataset, released: _checked(dataset, released, logs, expected_points, thresholds,
                                                               fiducial))

    return _staged_then_published(tree, name, entry["kind"], staged, logs, receipt, thresholds)


def prepare_combination(tree, name, spec, overlaps, logs, receipt, *, thresholds=None):
    """A combination's job: join its published members (:func:`pbuf_data.fit.combine.combine`), then validate and
    publish it like a dataset (same report, states and receipt). ``overlaps`` are the allowed shared samples
    with their reasons (checked before any job), recorded in its provenance."""
    from ..fit.combine import combine
    from ..model.dataset import load_dataset

    def staged(npz, doc):
        joint = combine(name, [load_dataset(member, root=tree.base) for member in spec["datasets"]], overlaps)
        with _Staging(tree, name, joint, npz, doc) as staging:
            return _checked(joint, staging.released, logs, len(joint), thresholds)

    return _staged_then_published(tree, name, "combination", staged, logs, receipt, thresholds)


def _staged_then_published(tree, name, kind, staged, logs, receipt, thresholds):
    """The body of a dataset's (or combination's) job: ``staged(npz, doc)`` writes the staged pair and validates it,
    returning the report or the PbufDataError that stopped validation (one it raises is a failed derivation);
    :func:`_publish_checked` then publishes it or not. A copy made ahead of publication and not taken is removed
    however the job ends (:func:`pbuf_data.publish.publication.copy_ahead`)."""
    from ..publish.publication import copy_ahead

    npz, doc = tree.staged(name, "npz"), tree.staged(name, "json")
    report = {"dataset": name, "kind": kind, "verdict": "not validated", "n_points": 0, "n_errors": 0,
              "n_warnings": 0, "checks": []}
    with copy_ahead(tree.derived, name):
        try:
            checked = staged(npz, doc)
        except PbufDataError as exc:
            _write_report(tree, name, dict(report, state="failed derive", reason=str(exc)))
            raise
        return _publish_checked(tree, name, npz, doc, report, checked, logs, receipt, thresholds)


def _publish_checked(tree, name, npz, doc, report, checked, logs, receipt, thresholds):
    """Publish a staged dataset only if its validation (``checked``: the report, or the error that stopped it) found
    no error-level check failed; report and receipt."""
    if isinstance(checked, PbufDataError):
        _write_report(tree, name, dict(report, state="failed validation", reason=str(checked)))
        raise checked
    report = checked
    if report["verdict"] == "failed":
        failed = [c["name"] for c in report["checks"] if c["verdict"] == "error"]
        error = PbufDataError(f"validation failed: {failed} (full report in {tree.report(name, 'txt')})",
                              dataset=name, file=npz, check=",".join(failed))
        _write_report(tree, name, dict(report, state="failed validation", reason=str(error)))
        raise error
    try:
        with phase_logging(logs["publish"]):
            files = publish(tree, name, npz, doc)
    except PbufDataError as exc:
        _write_report(tree, name, dict(report, state="failed publication", reason=str(exc)))
        raise
    _write_report(tree, name, dict(report, state="published", reason=None, npz_sha256=files[tree.published(name, "npz")]))
    # the configuration the dataset was made with (pbuf-data status compares it with the current one)
    settings = {"thresholds": thresholds} if thresholds is not None else {}
    write_text(receipt, json.dumps({"dataset": name, "files": files, "settings": settings}, indent=2) + "\n")
    return report


def _write_report(tree, name, report):
    from ..publish.validation import report_text

    text = report_text(report)
    if report["state"] != "published":
        text += f"state: {report['state']}: {report['reason']}\n"
    write_text(tree.report(name, "json"), json.dumps(report, indent=2) + "\n")
    write_text(tree.report(name, "txt"), text)


def summarize_validation(tree, datasets):
    """The state of every dataset (published, failed derive/validation/publication, not run) and why;
    also as the report's HTML page."""
    from ..publish.sidecars import forget, record
    from ..publish.validation import summarize, summary_text
    from .report_pages import summary_page

    states = {}
    for name in datasets:
        try:
            report = json.loads(Path(tree.report(name, "json")).read_text())
        except FileNotFoundError:
            report = None
        except (OSError, ValueError) as exc:
            report = {"dataset": name, "state": "not run", "reason": f"unreadable validation report: {exc}"}
        published_copy = Path(tree.published(name, "json")).exists()
        if report is None or report.get("state") == "published" and not Path(tree.receipt(name)).exists():
            why = _upstream_failure(tree, name) or "its job did not run in the last run (stopped before it)"
            states[name] = {"state": "not run", "reason": why, "report": report, "published_copy": published_copy}
        else:
            states[name] = {"state": report.get("state", "not run"), "reason": report.get("reason"), "report": report,
                            "published_copy": published_copy}
    summary = summarize(states)
    text = summary_text(summary)
    write_text(tree.summary_json, json.dumps(summary, indent=2) + "\n")
    write_text(tree.summary_txt, text)
    forget(tree.figures_sums("summary"))
    write_text(tree.summary_html, summary_page(summary))
    record([tree.summary_html], tree.figures_sums("summary"))
    for line in text.splitlines():
        log.info("%s", line)
    return summary


def _upstream_failure(tree, name):
    """The error of a failed job before a dataset's own (retrieving or generating one of its raw files)."""
    from ..core.logs import last_error

    for step in ("retrieve", "mock"):
        for path in sorted(Path(tree.logs, step, name).glob("*.log")):
            message = last_error(path)
            if message:
                return f"{step} of a raw file failed: {message}"
    return None


def publish(tree, name, npz, json_path):
    """Publish a validated staged dataset (see :func:`pbuf_data.publish.publication.publish`); {path: sha256} published.
    A dataset equal to its published copy but for its time of derivation (a job run again on the same inputs,
    e.g. requeued by a cluster) is not republished: the published files stay as the manifest lists them."""
    from ..publish.publication import publish as publish_dataset

    same = None if os.environ.get(REPUBLISH_ENV) else _unchanged(tree, name, json_path)
    if same is not None:
        log.info("%s: equal to its published copy but for the time of derivation: nothing republished", name)
        return same
    files = {f"{tree.derived}/{p}": d for p, d in publish_dataset(npz, json_path, tree.derived).items()}
    for path in files:
        log.info("%s: published %s", name, path)
    return files


# set by `pbuf-data reprocess` and prepare_dataset(force=True) for their run: rederived datasets are republished
REPUBLISH_ENV = "PBUF_DATA_REPUBLISH"


def _unchanged(tree, name, staged_json):
    """The published files of ``name`` ({path: sha256}, as publication returns them) if the staged document
    equals the published one but for its time of derivation and the published archives are intact; else None."""
    from ..core.integrity import sha256_file

    published = Path(tree.published(name, "json"))
    try:
        old, new = json.loads(published.read_text()), json.loads(Path(staged_json).read_text())
        member = old["npz_file"]

        def essence(document):
            provenance = {k: v for k, v in document["provenance"].items() if k != "created_utc"}
            return {k: v for k, v in document.items() if k != "npz_file"} | {"provenance": provenance}

        if essence(old) != essence(new) or "/" not in member:
            return None
        archives = [f"{tree.derived}/{member}", tree.published(name, "npz")]
        if any(sha256_file(path) != old["npz_sha256"] for path in archives):
            return None  # a damaged copy: publication writes it again
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return {tree.published(name, "json"): sha256_file(published), **{path: old["npz_sha256"] for path in archives}}


def manifest(tree):
    """Manifest of the whole published tree: every file in the checked folders (this run's datasets and any
    other, e.g. those of the other registry, mock or real), the versioned archive each document names, and
    the previous version publication keeps for readers of the previous document.

    An archive's checksum is the one its document recorded at publication, not a rehash of what is on disk,
    so a damaged archive stays damaged in the eyes of verify. A kept previous version keeps the checksum the
    previous manifest listed for it (recorded when it was current); one that no manifest listed is hashed
    once and listed only if its content has the checksum its name begins with, so a planted one is reported."""
    from ..core.integrity import read_manifest, sha256_file, write_manifest
    from ..publish.publication import published_archive

    present = sorted(
        str(p)
        for folder in tree.watched
        for p in Path(folder).glob("*")
        if (p.is_file() or p.is_symlink()) and not p.name.startswith(".")
    )
    recorded = {}
    for path in map(Path, present):
        archive = path.parent == Path(tree.derived) and path.suffix == ".json" and published_archive(path.parent, path.stem)
        if archive:
            member, sha256 = archive
            recorded[f"{tree.derived}/{member}"] = sha256
    try:
        listed = read_manifest(tree.derived_manifest) if Path(tree.derived_manifest).is_file() else {}
    except PbufDataError:
        listed = {}
    for path in sorted(Path(tree.derived, layout.VERSIONS).glob("*-*.npz")):
        rel = f"{tree.derived}/{layout.VERSIONS}/{path.name}"
        if rel in recorded or not path.is_file() or path.is_symlink():
            continue
        sha256 = listed.get(rel) or sha256_file(path)
        if sha256[:16] == path.stem.rpartition("-")[2]:
            recorded[rel] = sha256
    entries = write_manifest(sorted(set(present) | set(recorded)), tree.derived_manifest, recorded=recorded)
    log.info("manifest %s: %d files", tree.derived_manifest, len(entries))
    return entries


def backup(tree, config_files, backup_dir, keep):
    from ..publish.backup import create_backup, write_record
    from ..publish.sidecars import forget, record as record_sums

    record = create_backup(".", tree, backup_dir, list(config_files), keep)
    log.info("backup %s: %d files (%d new blobs), %d bytes, pruned %s", record["snapshot"], record["files"],
             record["new_blobs"], record["bytes"], record["pruned"])
    forget(tree.backup_record_sums)
    write_record(tree.backup_record, record)
    record_sums([tree.backup_record], tree.backup_record_sums)
    return record


def export(tree, name, fiducial, receipt, observable_png, correlation_png, validation_html, provenance_html, document_json):
    """What leaves a published dataset, from one read of it: the files fitting codes read (:mod:`pbuf_data.fit.export`;
    the Cobaya inputs evaluate at ``fiducial``, the config's ``fiducial_cosmology``) and their receipt; the report's
    figures, its validation report and provenance as HTML pages, and a copy of its document (for machines; the
    report offers it for download), their sha256 beside them."""
    from ..core.atomic import write_bytes
    from ..core.integrity import sha256_file
    from ..fit.export import write_exports
    from ..fit.plots import save_figures
    from ..model.dataset import load_dataset
    from ..publish.sidecars import forget, record
    from .report_pages import provenance_page, validation_page

    forget(tree.figures_sums(name))  # Snakemake removed the figures before the job; they are drawn last
    dataset = load_dataset(name, root=tree.base)
    files = write_exports(dataset, tree.exports, tree.exports, fiducial)
    write_text(receipt, json.dumps({"dataset": name, "files": {str(p): sha256_file(p) for p in files}}, indent=2) + "\n")
    log.info("%s: exported %s", name, ", ".join(p.name for p in files))
    save_figures(dataset, fiducial, observable_png, correlation_png)
    document = Path(tree.published(name, "json")).read_bytes()
    write_text(validation_html, validation_page(json.loads(Path(tree.report(name, "json")).read_text())))
    write_text(provenance_html, provenance_page(json.loads(document)))
    write_bytes(document_json, document)
    record([observable_png, correlation_png, validation_html, provenance_html, document_json], tree.figures_sums(name))
