"""How a rule's job runs: the entry points of ``scripts/`` (one per rule) and the helper process.

Every rule's work is a script of ``scripts/``, named after the rule: it reads the job's files and params and
calls the rule's :mod:`pbuf_data.operate.steps` function (its ``run(job)``). Most rules run it from ``shell:``::

    python3 scripts/RULE.py [--dataset NAME] [--params JSON] [--input PATH ...] [--output PATH ...]
                            [--log PATH ...]

a job process that imports the script, its step and what that step needs, and nothing else: not Snakemake
(whose ``script:`` directive writes a preamble that imports it and unpickles the job in every job). The rules
whose work is small next to the imports it needs, a mock file, a dataset's figures (matplotlib) and its exports
(sacc, astropy), send the same command line to a helper process that Snakemake's process starts and keeps for
the run instead (:func:`run_in_helper`, from ``run:``), which forks a process for each job: those imports are
paid once per run, not once per dataset or file.

``--params`` is one JSON object, a rule's ``params: args=`` (:func:`job_params`), so Snakemake still compares it
on every run ("Params have changed"). Named files are passed in the order the rule lists them, which is the
order its script reads them in. The first log is the job's log (:func:`pbuf_data.operate.steps.run_step`); a dataset's
job has one log per phase after it.
"""

from __future__ import annotations

import argparse
import atexit
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
        from .steps import run_step

        return run_step(self.log[0] if self.log else None, step, *args, logs_dir=self.tree.logs, dataset=self.dataset,
                        rule=self.rule, inputs=self.input, outputs=self.output, command=self.command, **kwargs)


def raw_roles(name: str, entry: dict, paths: list[str]) -> dict:
    """Raw input paths keyed by their registry role: the role whose registry path each path ends with."""
    from ..core.errors import PbufDataError
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


# What the steps of the rules run in the helper import (beyond numpy and pbuf_data.operate.steps): the helper imports it
# before it forks the first job of the rule, so that the jobs started side by side at first do not each import it
# (matplotlib for the figures: 0.8 CPU-s per process). Checked by tests/test_job.py. A name "module:function" is
# also called once: it fills what a library builds at its first use (matplotlib's fonts and mathtext parser for
# the figures: about 0.05 of a figure job's 0.35 CPU-s), which each job would otherwise build again.
PRELOAD = {
    "generate_mock_file": ("pbuf_data.read.mock",),
    "plot_dataset": ("pbuf_data.fit.plots:warm_up", "pbuf_data.operate.report_pages", "matplotlib.backends.backend_agg"),
    "export_dataset": ("pbuf_data.fit.export", "sacc"),
}


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
    step turns every error of its own into one (:func:`pbuf_data.operate.steps.run_step`); what the script reads before it
    (``--params`` keys, files, the corpus of ``Job.tree``), run by hand without what the rule gives, ends in one
    line naming the script, exit status 2 (:class:`JobArguments`)."""
    from .steps import JobFailed

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
    step raises :class:`pbuf_data.operate.steps.JobFailed`; nothing else of the process changes (its logging, its working
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


# The helper's settings of the BLAS libraries: one thread, as Snakemake gives a job of one thread (its shell
# sets these); its jobs run side by side instead, each in a process of its own, forked by one that holds no
# other thread.
_ONE_THREAD = thread_env(1)


def _send(sock, message: dict, fds=()) -> None:
    """A message on a helper's control socket: its length, its JSON text (with ``fds`` passed along)."""
    import socket

    data = json.dumps(message).encode()
    data = len(data).to_bytes(4, "big") + data
    sent = socket.send_fds(sock, [data], list(fds)) if fds else 0
    sock.sendall(data[sent:])


def _receive(sock):
    """(message, fds) of :func:`_send`, or (None, []) at the end of the stream."""
    import socket

    data, fds, size = b"", [], 4
    while len(data) < size:
        chunk, received, _, _ = socket.recv_fds(sock, size - len(data), 1)
        fds += received
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None, []
        data += chunk
        if size == 4 and len(data) == 4:
            size += int.from_bytes(data, "big")
    return json.loads(data[4:]), fds


class _Helper:
    """``python -m pbuf_data.operate.job --serve FD``: a process that keeps the imports of the jobs it is sent (numpy,
    matplotlib, sacc and astropy, the mock module) and forks a process for each, which runs that job alone and
    ends (its memory returned): jobs sent at once run side by side, each starting from the helper's state (the
    imports, not the work, of the jobs before it). It reads
    requests on the control socket FD, a job's answer channel passed with each; the forked process answers on
    it, and the helper adds the process's exit status once it has ended. It ends when the control socket
    closes (the process that started it closed it, exited or was killed), after the jobs it runs, if any, as
    job processes of a killed Snakemake finish their jobs."""

    class Gone(Exception):
        """The request could not be sent: the helper has ended, or was replaced, since it was picked."""

    def __init__(self, key):
        import socket
        import subprocess

        self.key = key
        self.control, theirs = socket.socketpair()
        self.sending = threading.Lock()
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "pbuf_data.operate.job", "--serve", str(theirs.fileno())],
                                            stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                            env={**os.environ, **_ONE_THREAD})
        except BaseException:
            self.control.close()
            raise
        finally:
            theirs.close()

    def run(self, argv: list[str]) -> None:
        """Run one job (blocking); JobFailed with its message if its step failed."""
        import socket

        from .steps import JobFailed

        mine, theirs = socket.socketpair()
        with mine:
            try:
                with theirs, self.sending:
                    _send(self.control, {"cwd": os.getcwd(), "argv": argv}, [theirs.fileno()])
            except OSError:  # nothing sent: the job can go to another helper
                raise _Helper.Gone() from None
            try:
                lines = mine.makefile("rb").read().splitlines()  # the job's answer, then its exit status
            except OSError:
                lines = []
        answers = {key: value for line in lines for key, value in json.loads(line).items()}
        if answers.get("modules"):  # what the job imported: the helper imports it too, for the next jobs
            try:
                with self.sending:
                    _send(self.control, {"import": answers["modules"]})
            except OSError:
                pass
        if "failed" in answers:
            raise JobFailed(answers["failed"])
        if "crashed" in answers:
            raise RuntimeError(f"{script_rule(argv[0])} crashed in its process, forked by the helper:\n{answers['crashed']}")
        if "not_started" in answers:
            raise _not_run(argv, f"cannot start the job's process: {answers['not_started']}")
        if "ok" not in answers:  # the job's process ended without an answer (killed, out of memory...)
            import signal

            status = answers.get("exit")
            how = (f"was killed ({signal.Signals(-status).name})" if isinstance(status, int) and status < 0
                   else f"ended (exit status {'unknown' if status is None else status})")
            raise _not_run(argv, f"the process running the job {how} before it answered")

    def running(self) -> bool:
        return self.process.poll() is None

    def release(self) -> None:
        """Send no more jobs: the helper ends after those it runs."""
        with self.sending:
            self.control.close()

    def close(self) -> None:
        """Close the control socket and wait for the helper to end after the jobs it runs (for a minute at most:
        then the helper is killed, and its jobs' processes finish on their own)."""
        import subprocess

        self.release()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _not_run(argv: list[str], why: str):
    """The failure of a job that the helper could not run to its end: named by its dataset and rule."""
    from .steps import JobFailed

    return JobFailed(f"dataset '{parse(argv).dataset}': {script_rule(argv[0])}: {why}")


_helper: _Helper | None = None  # the helper of this process's jobs, started by the first one
_HELPER = threading.Lock()


def run_in_helper(argv: list[str]) -> None:
    """Run a job in this process's helper (:class:`_Helper`): the rules whose ``run:`` calls this (mock files,
    figures, exports). With Snakemake's ``force-use-threads``, as the workflow's profiles set, such a job is a
    thread of Snakemake's process that waits for the job's own process, forked by the helper, which holds the
    imports: they are paid once per run, not once per job, and the work does not compete with Snakemake's own
    for its interpreter lock. The job does what ``python3 ARGV`` does (:func:`run_here`), in
    this process's working folder; a failed step raises :class:`pbuf_data.operate.steps.JobFailed` with its message. A
    helper started with another interpreter or ``PYTHONPATH`` (another copy of the workflow run from the same
    process), or one that ended, is not used again."""
    global _helper

    key = (sys.executable, os.environ.get("PYTHONPATH", ""))
    failed = None  # a helper the job could not be sent to
    for _attempt in (1, 2):
        with _HELPER:
            if _helper is not None and (_helper.key != key or not _helper.running() or _helper is failed):
                ended, _helper = _helper, None
                ended.release()  # it ends after the jobs it runs; nobody waits for them here
            if _helper is None:
                _helper = _Helper(key)
            helper = _helper
        try:
            helper.run(argv)
            return
        except _Helper.Gone:  # ended or replaced between the choice and the request: a new one takes the job
            failed = helper
    raise _not_run(argv, "cannot send the job to a helper process")


def stop_helper() -> None:
    """End this process's helper (at exit; after a run through the Python API), after the jobs it runs
    (:meth:`_Helper.close`)."""
    global _helper

    with _HELPER:
        ending, _helper = _helper, None
    if ending is not None:
        ending.close()


atexit.register(stop_helper)


def serve(control_fd: int) -> None:
    """The helper's loop (``--serve FD``): a request on the control socket, a process forked to run it."""
    import selectors
    import signal
    import socket

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for Snakemake, which then closes the control socket
    import numpy  # noqa: F401 - what every job imports, while the first is on its way
    from ..core.logs import software_versions
    from . import steps  # noqa: F401

    software_versions()  # recorded by every job: read once, here
    _freeze()

    os.set_inheritable(control_fd, False)  # not held open by processes a job starts
    control = socket.socket(fileno=control_fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a job's process ended: wakes the loop to collect it
    signal.siginterrupt(signal.SIGCHLD, False)  # system calls in C code (an import) are restarted, not failed
    running: dict[int, socket.socket] = {}  # a job's process -> the job's answer channel
    events = selectors.DefaultSelector()
    events.register(control, selectors.EVENT_READ)
    events.register(wake_read, selectors.EVENT_READ)
    while control.fileno() >= 0 or running:
        for key, _ in events.select():
            if key.fileobj == wake_read:
                os.read(wake_read, 4096)
            elif control.fileno() >= 0:
                message, fds = _receive(control)
                if message is None:  # the process that started this helper closed it, or ended
                    events.unregister(control)
                    control.close()
                elif "import" in message:
                    _import(message["import"])
                else:
                    argv = message.get("argv")
                    named = isinstance(argv, list) and argv and isinstance(argv[0], str)
                    _import(PRELOAD.get(script_rule(argv[0]), ()) if named else ())  # at its first job; then imported
                    os.set_inheritable(fds[0], False)  # received fds are inheritable: a process a job starts
                    channel = socket.socket(fileno=fds[0])  # (and leaves running) would hold the answer open
                    try:
                        pid = os.fork()
                    except OSError as exc:  # no memory or process left for it: the job fails, the helper goes on
                        with channel:
                            _answer(channel, {"not_started": str(exc)})
                        continue
                    if pid == 0:  # the job's process: whatever happens, it ends here, not in this loop
                        status = 1
                        try:
                            status = _run_forked(message, channel, [control, *running.values()], (wake_read, wake_write))
                        finally:
                            os._exit(status)
                    running[pid] = channel
        for pid in list(running):  # the jobs' processes only (not one an imported module may have started)
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended == pid:
                with running.pop(pid) as channel:
                    _answer(channel, {"exit": os.waitstatus_to_exitcode(status)})


def _answer(channel, answer: dict) -> None:
    """One line of a job's answer: its outcome (from its process), its exit status (from the helper)."""
    try:
        channel.sendall(json.dumps(answer).encode() + b"\n")
    except OSError:  # the thread that asked has gone (its process killed): nobody to answer
        pass


def _import(names: list[str]) -> None:
    """Import in the helper what a job imported, or what the jobs of a rule import (PRELOAD), so that the next
    jobs' processes have it."""
    import importlib

    new = [name for name in names if name not in sys.modules and name not in _CALLED]
    for name in new:
        module, _, function = name.partition(":")
        try:
            imported = importlib.import_module(module)
            if function:
                _CALLED.add(name)
                getattr(imported, function)()
        except Exception:  # noqa: BLE001 - a module that imports only in its job's context: the job imports it
            pass
    if new:
        _freeze()


_CALLED: set[str] = set()  # the "module:function" names of PRELOAD called in this process


def _freeze() -> None:
    """Leave the helper's objects (its imports) out of the garbage collection of the jobs' processes, which
    would otherwise touch every one of them and so copy the helper's memory into each process."""
    import gc

    gc.collect()
    gc.freeze()


def _run_forked(request: dict, channel, inherited, wake) -> int:
    """A job's process, forked by the helper: runs the job, answers on its channel, returns its exit status."""
    import signal
    import traceback

    from .steps import JobFailed

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for other in inherited:  # the other jobs' channels: their answers end when their own processes end
        other.close()
    for fd in wake:
        os.close(fd)
    before = set(sys.modules)
    status = 0
    try:
        os.chdir(request["cwd"])
        run_here(request["argv"])
        answer = {"ok": True}
    except JobFailed as exc:
        answer = {"failed": str(exc)}
    except BaseException:  # noqa: BLE001 - a bug (or SystemExit...): its traceback goes back to the job that asked
        answer, status = {"crashed": traceback.format_exc()}, 1
    answer["modules"] = [name for name in sys.modules if name not in before]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _answer(channel, answer)
    return status


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve" and sys.argv[2].isdigit():  # the helper process
        serve(int(sys.argv[2]))
    else:
        report_failure("a rule's job runs its script: python3 scripts/RULE.py ... (this module is its helper; the form "
                       "`python -m pbuf_data.job RULE ...` of earlier logs is gone: the same arguments follow the script's path)")
        raise SystemExit(2)
