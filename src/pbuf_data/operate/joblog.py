"""A step run as a job: its log file, the aggregate logs and the audit record of its outcome, and the one message a
failure is (:func:`run_step`, which every rule's script goes through, :mod:`pbuf_data.operate.job`)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import contextmanager, suppress

from ..core.errors import PbufDataError

log = logging.getLogger("pbuf_data")


class JobFailed(Exception):
    """A job's step failed: the message names the dataset and the file, line, column or check (it is in the
    job's log too). A job process ends with it (:func:`pbuf_data.operate.job.main`); a job sent to Snakemake's
    helper process raises it to Snakemake."""


_JOB_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_failure(exc, log_file, dataset):
    """The job's log cannot be opened (read-only or full disk, a folder in its place)."""
    return JobFailed(PbufDataError(f"cannot write the job log: {exc.strerror or exc}", dataset=dataset,
                                   file=str(log_file), check="logging"))


@contextmanager
def _job_logging(log_file, dataset, command):
    """The job's log. A job process sends every logger's records there (the root logger). A job in Snakemake's
    process (``command``: the command line that reruns it alone, the log's first line) sends only the records
    of this package that its own thread emits, and leaves the process's logging as it was (Snakemake's
    handlers, other jobs' threads)."""
    if command is None:
        try:
            logging.basicConfig(filename=str(log_file) if log_file else None, level=logging.INFO, format=_JOB_FORMAT,
                                force=True)
        except OSError as exc:
            raise _log_failure(exc, log_file, dataset) from None
        yield
        return
    try:
        handler = logging.FileHandler(log_file, mode="w") if log_file else logging.StreamHandler()
    except OSError as exc:
        raise _log_failure(exc, log_file, dataset) from None
    thread = threading.get_ident()
    handler.setFormatter(logging.Formatter(_JOB_FORMAT))
    handler.addFilter(lambda record: record.thread == thread)
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        log.info("command: %s", command)
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]
        with suppress(OSError):  # its last lines cannot be flushed (a full disk): the job's outcome is said anyway
            handler.close()


@contextmanager
def phase_logging(path):
    """Send the records of a block of a job to a file of its own (a job with one log per phase): the handlers of
    the logger its records end at (:func:`_job_logging`) are swapped, the root logger's in a job process, this
    package's in a job run by :func:`pbuf_data.operate.job.run_here` (it does not propagate there; its handler's
    filter, the job's thread, is kept)."""
    target = logging.getLogger() if log.propagate else log
    saved = target.handlers[:]
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(_JOB_FORMAT))
    for kept in saved:
        for rule in kept.filters:
            handler.addFilter(rule)
    target.handlers = [handler]
    try:
        yield
    finally:
        target.handlers = saved
        handler.close()


def run_step(log_file, step, *args, logs_dir, dataset=None, rule=None, inputs=(), outputs=(), command=None, **kwargs):
    """Run one workflow step as a job.

    Logs go to the job's ``log_file``; the aggregate logs and the audit trail record the outcome. A
    PbufDataError fails the job with its message (dataset, file, line or check) and no traceback: it raises
    :class:`JobFailed`. Any other exception is an internal error whose traceback goes to the job's log only.
    The audit record has the step's wall and CPU seconds (of all its threads), the job's threads
    (:func:`pbuf_data.core.logs.job_threads`) and this process's peak resident memory at its start and at its end
    (:func:`pbuf_data.core.logs.peak_rss_mib`).
    ``command`` is given for a job run by :func:`pbuf_data.operate.job.run_here` (the helper's): the command line
    that runs it in a process of its own, the log's first line; that process keeps its own logging.
    """
    from ..core.logs import job_threads, peak_rss_mib, record_job

    os.umask(0o022)
    logging.raiseExceptions = False  # a log line that cannot be written must not print a traceback
    with _job_logging(log_file, dataset, command):
        start, cpu_start, rss_start = time.perf_counter(), time.process_time(), peak_rss_mib()
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
        usage = {"cpu_seconds": round(time.process_time() - cpu_start, 3), "threads": job_threads(),
                 "peak_rss_mib": round(peak_rss_mib(), 1), "rss_at_start_mib": round(rss_start, 1)}
        try:
            for warning in record_job(rule or step.__name__, status, seconds, dataset=dataset, message=message,
                                      inputs=inputs, outputs=outputs, logs_dir=logs_dir, usage=usage):
                log.warning("%s", warning)
                print(f"WARNING: {warning}", file=sys.stderr)
        except PbufDataError as exc:  # the audit trail could not be written: the job fails, saying why
            status, message = "failed", f"{message + '; ' if message else ''}{exc.with_context(dataset=dataset)}"
            log.error("%s", exc)
        if status != "success":
            raise JobFailed(message)
        log.info("%s finished in %.3f s", step.__name__, seconds)
    return result
