"""How a rule's job runs: the entry points of ``scripts/`` (one per rule), in a process or in the helper.

Every rule's work is a script of ``scripts/``, named after the rule: it reads the job's files and params and
calls the rule's :mod:`pbuf_data.operate.steps` function (its ``run(job)``). Most rules run it from ``shell:``::

    python3 scripts/RULE.py [--dataset NAME] [--params JSON] [--input PATH ...] [--output PATH ...]
                            [--log PATH ...]

a job process that imports the script, its step and what that step needs, and nothing else: not Snakemake
(whose ``script:`` directive writes a preamble that imports it and unpickles the job in every job). The rules
whose work is small next to the imports it needs, a mock file, a dataset's figures (matplotlib) and its exports
(sacc, astropy), send the same command line to a helper process that Snakemake's process starts and keeps for
the run instead (:func:`pbuf_data.operate.helper.run_in_helper`, from ``run:``), which forks a process for each job: those imports are
paid once per run, not once per dataset or file.

``--params`` is one JSON object, a rule's ``params: args=`` (:func:`job_params`), so Snakemake still compares it
on every run ("Params have changed"). Named files are passed in the order the rule lists them, which is the
order its script reads them in. The first log is the job's log (:func:`pbuf_data.operate.joblog.run_step`); a dataset's
job has one log per phase after it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import threading


class DigestParams(str):
    """A job's ``--params`` text whose ``repr`` (what Snakemake records and compares: "Params have changed") is
    its sha256 digest: Snakemake's reason is one short line instead of a whole registry entry twice; the
    workflow's dry run names the changed key with both values (pbuf_data.operate.status)."""

    def __repr__(self):
        return repr(f"parameters sha256:{hashlib.sha256(self.encode()).hexdigest()[:16]}")


def job_params(*, digest: bool = False, **params) -> str:
    """The ``--params`` of a job: its parameters as one JSON text (keys sorted, so it is stable); with
    ``digest``, Snakemake records and shows its sha256 (:class:`DigestParams`)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return DigestParams(text) if digest else text


class JobArguments(KeyError):
    """What a rule's script reads of its job, a ``--params`` key, a file or the corpus, is missing or wrong: the
    command line is not one its rule gives (a script run by hand). A KeyError, so that code testing a key of a
    params dict (``try: ... except KeyError``) reads the same."""

    def __str__(self):
        return self.args[0]


class _Params(dict):
    """A ``--params`` object (each one, nested too): a key it lacks is a :class:`JobArguments`."""

    def __missing__(self, key):
        raise JobArguments(f"--params has no '{key}'")


class _Files(list):
    """The ``--input``, ``--output`` or ``--log`` files: one the script reads that is not given is a
    :class:`JobArguments`."""

    def __init__(self, option: str, files):
        super().__init__(files)
        self.option = option

    def __getitem__(self, index):
        try:
            return super().__getitem__(index)
        except IndexError:
            raise JobArguments(f"{self.option} has no file {index}") from None


def _params(text: str) -> _Params:
    """The ``--params`` JSON: an object (argparse's usage error otherwise)."""
    value = json.loads(text, object_hook=_Params)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


class Job:
    """What a job's function reads: rule, dataset, params, input, output and log files."""

    def __init__(self, rule, dataset=None, params=None, input=(), output=(), log=()):
        self.rule, self.dataset, self.params = rule, dataset, _Params(params or {})
        self.input, self.output, self.log = (_Files(f"--{name}", files) for name, files in
                                             (("input", input), ("output", output), ("log", log)))

    @property
    def tree(self):
        """The result tree of the job's corpus (``params.corpus``): where its step writes, and its logs."""
        from ..core.layout import Tree

        try:
            return Tree(self.params["corpus"])
        except ValueError as exc:
            raise JobArguments(f"--params corpus: {exc}") from None

    command = None  # a job in a helper process (run_here): the command line that runs it in a process of its own

    def run(self, step, *args, **kwargs):
        from .joblog import run_step

        return run_step(self.log[0] if self.log else None, step, *args, logs_dir=self.tree.logs, dataset=self.dataset,
                        rule=self.rule, inputs=self.input, outputs=self.output, command=self.command, **kwargs)


def raw_roles(name: str, entry: dict, paths: list[str]) -> dict:
    """Raw input paths keyed by their registry role: the role whose registry path each path ends with."""
    from ..core.errors import PbufDataError
    from .joblog import JobFailed

    roles = {}
    for path in paths:
        found = [role for role, spec in entry["files"].items() if path == spec["path"] or path.endswith("/" + spec["path"])]
        if len(found) != 1:
            error = PbufDataError(f"job input matches {len(found)} registry files, not one", dataset=name, file=path,
                                  check="job inputs")
            raise JobFailed(str(error))
        roles[found[0]] = path
    return roles


def _arguments(argv: list[str], rule: str, description: str | None = None) -> Job:
    parser = argparse.ArgumentParser(prog=f"python3 scripts/{rule}.py", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="the dataset (or combination) of the job, if the rule has one")
    parser.add_argument("--params", type=_params, default=_Params(), metavar="JSON",
                        help="the rule's params as one JSON object (its `params: args=`)")
    for name in ("input", "output", "log"):
        parser.add_argument(f"--{name}", nargs="*", action="extend", default=[], metavar="PATH",
                            help=f"the job's {name} files, in the order the rule lists them")
    args = parser.parse_args(argv)
    return Job(rule, args.dataset, args.params, args.input, args.output, args.log)


def script_rule(script: str) -> str:
    """The rule a script of ``scripts/`` is the entry point of: its file name."""
    return os.path.splitext(os.path.basename(script))[0]


def parse(argv: list[str]) -> Job:
    """The job of a command line ``SCRIPT [--dataset NAME] [--params JSON] ...`` (the script's path first)."""
    return _arguments(argv[1:], script_rule(argv[0]))


def _load(script: str):
    """The ``run(job)`` function of a rule's script, read from its file (not imported as a module)."""
    import runpy

    return runpy.run_path(script, run_name="pbuf_data_job")["run"]


def main(run, description: str | None = None) -> None:
    """A rule's script run as a process (``python3 scripts/RULE.py ...``): ``run(job)`` is the script's
    function; a failed step ends the process with its message on stderr and exit status 1 (no traceback). The
    step turns every error of its own into one (:func:`pbuf_data.operate.joblog.run_step`); what the script reads before it
    (``--params`` keys, files, the corpus of ``Job.tree``), run by hand without what the rule gives, ends in one
    line naming the script, exit status 2 (:class:`JobArguments`)."""
    from .joblog import JobFailed

    rule = script_rule(run.__code__.co_filename)
    job = _arguments(sys.argv[1:], rule, description)
    try:
        run(job)
    except JobFailed as exc:
        report_failure(str(exc))
        raise SystemExit(1) from None
    except JobArguments as exc:
        report_failure(f"scripts/{rule}.py: the job's --params or files are not what rule {rule} gives ({exc}); "
                       "see --help")
        raise SystemExit(2) from None


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
    """Run a job in the calling process (the helper's, :func:`run_in_helper`; or a test's): ``argv`` is a rule's
    script and its arguments. The job does what ``python3 SCRIPT ...`` does, with the same log, audit record and
    failure message; its log's first line is that command, which reruns the job in a process of its own. A failed
    step raises :class:`pbuf_data.operate.joblog.JobFailed`; nothing else of the process changes (its logging, its working
    folder)."""
    job = parse(argv)
    job.command = f"python3 {shlex.join(argv)}"
    with _IN_PROCESS:  # (runpy sets sys.argv[0] while it reads the script)
        _load(argv[0])(job)


def thread_env(threads: int) -> dict:
    """What Snakemake's shell sets for a job of ``threads`` threads: the thread counts of the numerical libraries."""
    names = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS")
    return {name: str(threads) for name in names}
