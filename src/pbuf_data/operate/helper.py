"""The helper process of the jobs whose work is small next to its imports (a mock file, a dataset's figures and
exports, a dataset's job in a local run): Snakemake's process starts it once per run and sends
it each such job's command line, ``python3 scripts/RULE.py ...`` (:func:`run_in_helper`, from the rules' ``run:``);
it forks a process for each job, which runs it as :func:`pbuf_data.operate.job.run_here` does, so numpy, the
package, matplotlib, sacc and astropy are imported once per run."""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading

from .job import parse, report_failure, run_here, script_rule, thread_env


# What the steps of the rules run in the helper import (beyond numpy and pbuf_data.operate.steps): the helper imports it
# before it forks the first job of the rule, so that the jobs started side by side at first do not each import it
# (matplotlib for the figures: 0.8 CPU-s per process). Checked by tests/test_job.py. A name "module:function" is
# also called once: it fills what a library builds at its first use (matplotlib's fonts and mathtext parser for
# the figures: about 0.05 of a figure job's 0.35 CPU-s), which each job would otherwise build again.
PRELOAD = {
    "generate_mock_file": ("pbuf_data.read.mock",),
    "export_dataset": ("pbuf_data.fit.plots:warm_up", "pbuf_data.operate.report_pages", "matplotlib.backends.backend_agg",
                       "pbuf_data.fit.export", "sacc"),
    "derive_dataset": ("pbuf_data.read.derive", "pbuf_data.publish.validation", "pbuf_data.publish.publication"),
}


# The helper's settings of the BLAS libraries: one thread, as Snakemake gives a job of one thread (its shell
# sets these); its jobs run side by side instead, each in a process of its own, forked by one that holds no
# other thread. A job of more threads (a large dataset) sets its own in its process (_run_forked).
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
    """``python -m pbuf_data.operate.helper --serve FD``: a process that keeps the imports of the jobs it is sent (numpy,
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
            self.process = subprocess.Popen([sys.executable, "-m", "pbuf_data.operate.helper", "--serve", str(theirs.fileno())],
                                            stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                            env={**os.environ, **_ONE_THREAD})
        except BaseException:
            self.control.close()
            raise
        finally:
            theirs.close()

    def run(self, argv: list[str], threads: int = 1) -> None:
        """Run one job of ``threads`` threads (blocking); JobFailed with its message if its step failed."""
        import socket

        from .joblog import JobFailed

        mine, theirs = socket.socketpair()
        with mine:
            try:
                with theirs, self.sending:
                    _send(self.control, {"cwd": os.getcwd(), "argv": argv, "threads": threads}, [theirs.fileno()])
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
    from .joblog import JobFailed

    return JobFailed(f"dataset '{parse(argv).dataset}': {script_rule(argv[0])}: {why}")


_helper: _Helper | None = None  # the helper of this process's jobs, started by the first one
_HELPER = threading.Lock()


def run_in_helper(argv: list[str], threads: int = 1) -> None:
    """Run a job of ``threads`` threads in this process's helper (:class:`_Helper`): the rules whose ``run:``
    calls this (mock files, a dataset's exports and figures, a dataset's job in a local run). With Snakemake's
    ``force-use-threads``, as the workflow's profiles set, such a job is a thread of Snakemake's process that
    waits for the job's own process, forked by the helper, which holds the imports: they are paid once per run,
    not once per job, and the work does not compete with Snakemake's own for its interpreter lock. The job does
    what ``python3 ARGV`` does (:func:`run_here`), in this process's working folder; a failed step raises
    :class:`pbuf_data.operate.joblog.JobFailed` with its message. A helper started with another interpreter or
    ``PYTHONPATH`` (another copy of the workflow run from the same process), or one that ended, is not used
    again."""
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
            helper.run(argv, threads)
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
    """A job's process, forked by the helper: runs the job, answers on its channel, returns its exit status. A job
    of N threads runs with what Snakemake's shell gives one (:func:`pbuf_data.operate.job.thread_env`), and its
    BLAS libraries, loaded by the helper with one thread, are set to N (threadpoolctl)."""
    import signal
    import traceback

    from .joblog import JobFailed

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for other in inherited:  # the other jobs' channels: their answers end when their own processes end
        other.close()
    for fd in wake:
        os.close(fd)
    before = set(sys.modules)
    status = 0
    try:
        threads = request.get("threads", 1)
        if threads != 1:
            from threadpoolctl import threadpool_limits

            os.environ.update(thread_env(threads))
            threadpool_limits(threads)
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
