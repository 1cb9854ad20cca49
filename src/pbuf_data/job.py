"""The workflow's job entry point: ``python -m pbuf_data.job RULE ...``.

Most rules run it from ``shell:``: a job process imports this module, the :mod:`pbuf_data.steps` function
of its rule and what that function needs, and nothing else: not Snakemake (whose ``script:`` directive
writes a preamble that imports it and unpickles the job in every job). The rules whose work is small next
to the imports it needs, a mock file, a dataset's figures (matplotlib) and its exports (sacc, astropy), run
the same command line in a helper process that Snakemake's process starts and keeps for the run instead
(:func:`run_in_helper`, from ``run:``), so that those imports are paid once per run, not once per dataset or
file. The command line carries what the job object did::

    python -m pbuf_data.job RULE [--dataset NAME] [--params JSON] [--input PATH ...]
                                 [--output PATH ...] [--log PATH ...]

``--params`` is one JSON object, a rule's ``params: args=`` (:func:`job_params`), so Snakemake still
compares it on every run ("Params have changed"). Named files are passed in the order the rule's
``shell:`` lists them, which is the order each function below reads them in. The first log is the
job's log (:func:`pbuf_data.steps.run_step`); a dataset's job has one log per phase after it.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shlex
import sys
import threading


def job_params(**params) -> str:
    """The ``--params`` of a job: its parameters as one JSON text (keys sorted, so it is stable)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class Job:
    """What a job's function reads: rule, dataset, params, input, output and log files."""

    def __init__(self, rule, dataset=None, params=None, input=(), output=(), log=()):
        self.rule, self.dataset, self.params = rule, dataset, params or {}
        self.input, self.output, self.log = list(input), list(output), list(log)

    @property
    def tree(self):
        """The result tree of the job's corpus (``params.corpus``): where its step writes, and its logs."""
        from .layout import Tree

        return Tree(self.params["corpus"])

    command = None  # a job in a helper process (run_here): the command line that runs it in a process of its own

    def run(self, step, *args, **kwargs):
        from .steps import run_step

        return run_step(self.log[0] if self.log else None, step, *args, logs_dir=self.tree.logs, dataset=self.dataset,
                        rule=self.rule, inputs=self.input, outputs=self.output, command=self.command, **kwargs)


def _raw_roles(name: str, entry: dict, paths: list[str]) -> dict:
    """Raw input paths keyed by their registry role: the role whose registry path each path ends with."""
    from .errors import PbufDataError
    from .steps import JobFailed

    roles = {}
    for path in paths:
        found = [role for role, spec in entry["files"].items() if path == spec["path"] or path.endswith("/" + spec["path"])]
        if len(found) != 1:
            error = PbufDataError(f"job input matches {len(found)} registry files, not one", dataset=name, file=path,
                                  check="job inputs")
            raise JobFailed(str(error))
        roles[found[0]] = path
    return roles


def generate_mock_file(job):
    from .steps import mock_file

    p = job.params
    job.run(mock_file, job.dataset, p["entry"], p["role"], job.output[0], p["fiducial"], p["seed"])


def retrieve_raw_file(job):
    from .steps import retrieve

    s = job.params["spec"]
    job.run(retrieve, job.dataset, s["path"], s["url"], s["sha256"], job.output[0], s["mirror_hint"], s["max_bytes"])


def derive_dataset(job):
    """Logs: derive, validate, publish."""
    from .steps import prepare

    s = job.params["settings"]
    job.run(prepare, job.tree, job.dataset, s["entry"], _raw_roles(job.dataset, s["entry"], job.input), dict(zip(("validate", "publish"), job.log[1:])),
            job.output[0], max_bytes=s["max_bytes"], code=s["code"], expected_points=s["entry"].get("expected_points"),
            thresholds=s["thresholds"], missing=s["missing"])


def combine_datasets(job):
    """Logs: validate, publish."""
    from .steps import prepare_combination

    p = job.params
    job.run(prepare_combination, job.tree, job.dataset, p["spec"], p["overlaps"], dict(zip(("validate", "publish"), job.log)),
            job.output[0], thresholds=p["thresholds"])


def validation_summary(job):
    """Outputs: json, text, html (all at the tree's paths)."""
    from .steps import summarize_validation

    job.run(summarize_validation, job.tree, job.params["datasets"])


def export_dataset(job):
    from .steps import export

    job.run(export, job.tree, job.dataset, job.output[0])


def plot_dataset(job):
    """Outputs: observable, correlation, validation, provenance, document."""
    from .steps import plots

    job.run(plots, job.tree, job.dataset, job.params["fiducial"], *job.output[:5])


def manifest(job):
    from .steps import manifest as write_manifest

    job.run(write_manifest, job.tree)  # its output is the tree's manifest


def backup(job):
    """Inputs: the manifest, then the configuration files."""
    from .steps import backup as create_backup

    p = job.params
    job.run(create_backup, job.tree, job.input[1:], p["backup_dir"], p["keep"])


RULES = {f.__name__: f for f in (generate_mock_file, retrieve_raw_file, derive_dataset, combine_datasets,
                                 validation_summary, export_dataset, plot_dataset, manifest, backup)}


def parse(argv: list[str]) -> Job:
    parser = argparse.ArgumentParser(prog="python -m pbuf_data.job", description="Run one workflow job.")
    parser.add_argument("rule", choices=sorted(RULES))
    parser.add_argument("--dataset")
    parser.add_argument("--params", type=json.loads, default={})
    for name in ("input", "output", "log"):
        parser.add_argument(f"--{name}", nargs="*", action="extend", default=[])
    args = parser.parse_args(argv)
    return Job(args.rule, args.dataset, args.params, args.input, args.output, args.log)


def main(argv: list[str] | None = None) -> None:
    """A job process: a failed step ends it with its message on stderr and exit status 1 (no traceback)."""
    from .steps import JobFailed

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        serve(int(argv[1]))
        return
    job = parse(argv)
    try:
        RULES[job.rule](job)
    except JobFailed as exc:
        report_failure(str(exc))
        raise SystemExit(1) from None


def report_failure(message: str) -> None:
    """``ERROR: message`` on stderr in one write, newline included. Job processes share Snakemake's stderr:
    ``print`` writes a message of several lines and its final newline separately, so another job's error
    written between the two would be glued to this one's last line, and no longer start a line."""
    data = f"ERROR: {message}\n".encode(getattr(sys.stderr, "encoding", None) or "utf-8", "backslashreplace")
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stderr that is not a file (replaced by a caller)
        sys.stderr.write(data.decode(getattr(sys.stderr, "encoding", None) or "utf-8", "replace"))
        return
    sys.stderr.flush()
    while data:
        data = data[os.write(fd, data):]


# Matplotlib and astropy are not thread-safe: jobs run in one process (run_here) run one at a time.
_IN_PROCESS = threading.Lock()


def run_here(argv: list[str]) -> None:
    """Run a job in the calling process (the helper's, :func:`run_in_helper`; or a test's). The job does what
    ``python -m pbuf_data.job ARGV`` does, with the same log, audit record and failure message; its log's first
    line is that command, which reruns the job in a process of its own. A failed step raises
    :class:`pbuf_data.steps.JobFailed`; nothing else of the process changes (its logging, its working folder)."""
    job = parse(argv)
    job.command = f"python -m pbuf_data.job {shlex.join(argv)}"
    with _IN_PROCESS:
        RULES[job.rule](job)


class _Helper:
    """``python -m pbuf_data.job --serve FD``: a process that runs the jobs it is sent, one at a time, with
    the imports of the first (matplotlib, sacc and astropy, the mock module) kept for the next. It reads one
    JSON request per line on its stdin (working folder, command line) and answers each on the pipe FD. It ends
    when its stdin closes: when the process that started it closes it, exits or is killed (then after the job
    it is running, if any, as a job process of a killed Snakemake finishes its job)."""

    def __init__(self, key):
        import subprocess

        self.key = key
        reply_read, reply_write = os.pipe()
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "pbuf_data.job", "--serve", str(reply_write)],
                                            stdin=subprocess.PIPE, pass_fds=(reply_write,))
        except BaseException:
            os.close(reply_read)
            raise
        finally:
            os.close(reply_write)
        self.replies = os.fdopen(reply_read, "rb")

    def run(self, argv: list[str]) -> None:
        from .steps import JobFailed

        request = json.dumps({"cwd": os.getcwd(), "argv": argv}) + "\n"
        try:
            self.process.stdin.write(request.encode())
            self.process.stdin.flush()
            line = self.replies.readline()
        except OSError:
            line = b""
        except BaseException:  # interrupted between request and reply: its reply must not be read by the next job
            self.close()
            raise
        if not line.endswith(b"\n"):  # no reply, or the start of one: the helper ended
            self.close()
            raise JobFailed(f"dataset '{parse(argv).dataset}': {argv[0]}: the helper process running the job ended "
                            f"(exit status {self.process.returncode}) before it answered")
        reply = json.loads(line)
        if "failed" in reply:
            raise JobFailed(reply["failed"])
        if "crashed" in reply:
            raise RuntimeError(f"{argv[0]} crashed in the helper process:\n{reply['crashed']}")

    def close(self) -> None:
        import subprocess

        try:
            self.process.stdin.close()
        except (OSError, ValueError):  # closed already, or being written by another thread
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.replies.close()


_helpers: list[_Helper] = []  # every helper this process started that runs; the idle ones in _idle
_idle: list[_Helper] = []
_HELPERS = threading.Lock()


def run_in_helper(argv: list[str]) -> None:
    """Run a job in one of this process's helpers (:class:`_Helper`): the rules whose ``run:`` calls this (mock
    files, figures, exports). With Snakemake's ``force-use-threads``, as the workflow's profiles set, such a job
    is a thread of Snakemake's process that waits for an idle helper, started when none is: the imports are
    paid once per helper, not once per job, and the work does not compete with Snakemake's own for its
    interpreter lock. As many helpers run as such jobs run at once (the profiles' ``snakemake_process``
    resource). The job does what ``python -m pbuf_data.job ARGV`` does (:func:`run_here`), in this process's
    working folder; a failed step raises :class:`pbuf_data.steps.JobFailed` with its message. A helper started
    with another interpreter or ``PYTHONPATH`` (another copy of the workflow run from the same process), or one
    that ended, is not used again."""
    key = (sys.executable, os.environ.get("PYTHONPATH", ""))
    helper = None
    with _HELPERS:
        while _idle and helper is None:
            candidate = _idle.pop()
            if candidate.key == key and candidate.process.poll() is None:
                helper = candidate
            else:
                _helpers.remove(candidate)
                candidate.close()
        if helper is None:
            helper = _Helper(key)
            _helpers.append(helper)
    try:
        helper.run(argv)
    finally:
        with _HELPERS:
            if helper.process.poll() is None and helper in _helpers:
                _idle.append(helper)
            elif helper in _helpers:
                _helpers.remove(helper)


def stop_helper() -> None:
    """End this process's helpers (at exit; after a run through the Python API)."""
    with _HELPERS:
        ending = _helpers[:]
        _helpers.clear()
        _idle.clear()
    for helper in ending:
        helper.close()


atexit.register(stop_helper)


def serve(reply_fd: int) -> None:
    """The helper's loop (``--serve FD``): a request per line on stdin, a reply per line on ``reply_fd``."""
    import signal
    import traceback

    from .steps import JobFailed

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for Snakemake, which then closes this helper's stdin
    os.set_inheritable(reply_fd, False)  # a process a job starts must not hold the replies open
    with os.fdopen(reply_fd, "w", encoding="utf-8") as replies:
        for line in sys.stdin:
            request = json.loads(line)
            try:
                os.chdir(request["cwd"])
                run_here(request["argv"])
                reply = {"ok": True}
            except JobFailed as exc:
                reply = {"failed": str(exc)}
            except (Exception, SystemExit):  # noqa: BLE001 - a bug: its traceback goes back to the job that asked
                reply = {"crashed": traceback.format_exc()}
            try:
                replies.write(json.dumps(reply) + "\n")
                replies.flush()
            except OSError:  # the process that asked has ended (killed): nobody to answer, nothing left to do
                os._exit(0)


if __name__ == "__main__":
    main()
