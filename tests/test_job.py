"""The rules' entry points (``python3 scripts/RULE.py ...``, pbuf_data.operate.job): their command line as the rules write it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pbuf_data.operate.job import job_params, parse, raw_roles, report_failure, run_here
from pbuf_data.operate.joblog import JobFailed

PROJECT = Path(__file__).resolve().parents[1]
SCRIPTS = PROJECT / "scripts"
MOCK_FILE = str(SCRIPTS / "generate_mock_file.py")


def test_a_command_line_as_a_rule_writes_it_gives_the_job_back():
    params = {"settings": {"entry": {"files": {"mean": {"path": "d/m it's.txt"}}}, "max_bytes": 10, "missing": []}}
    command = (f"scripts/derive_dataset.py --dataset d --params {shlex.quote(job_params(**params))} --input 'raw dir/d/m it'\"'\"'s.txt'"
               " --output data/state/d.json --log a.log b.log c.log")
    job = parse(shlex.split(command))
    assert (job.rule, job.dataset, job.params) == ("derive_dataset", "d", params)
    assert job.input == ["raw dir/d/m it's.txt"] and job.output == ["data/state/d.json"]
    assert job.log == ["a.log", "b.log", "c.log"]


def test_params_are_stable_json():
    assert job_params(b=1, a={"y": 2, "x": [1, None]}) == '{"a":{"x":[1,null],"y":2},"b":1}'


def test_raw_inputs_are_matched_to_their_registry_roles():
    entry = {"files": {"mean": {"path": "bao/mean.txt"}, "cov": {"path": "bao/cov.txt"}}}
    paths = ["data/raw_cache/bao/cov.txt", "/mirror/bao/mean.txt"]  # order and folders as Snakemake passes them
    assert raw_roles("bao", entry, paths) == {"cov": "data/raw_cache/bao/cov.txt", "mean": "/mirror/bao/mean.txt"}
    with pytest.raises(JobFailed, match=r"dataset 'bao'.*file '/mirror/bao/xmean.txt'.*matches 0 registry files"):
        raw_roles("bao", entry, ["/mirror/bao/xmean.txt"])  # a longer name ending like a registry path is not it


def _rules_by_how_they_run():
    """{rule: 'shell', 'snakemake' or 'either'}: rules whose shell: runs `python3 scripts/RULE.py`, rules
    whose run: calls run_in_snakemake (the same command line, in Snakemake's helper process), and rules whose
    run: does one or the other as in_helper says (rules/common.smk)."""
    found = {}
    for smk in sorted((PROJECT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            if not name:
                continue
            either = re.search(r"run:\s+if in_helper\(conda_env\):\s+run_in_snakemake\(\s*\"(\w+)\",[^:]*"
                               r"\s+else:\s+shell\(\s+shell_command\(\s+\"(\w+)\",", block)
            if either:
                assert either[1] == either[2] == name[1], smk
                found[name[1]] = "either"
            elif re.search(r"shell:\s+run_script\(\"(\w+)\"\)", block):
                assert re.search(r"run_script\(\"(\w+)\"\)", block)[1] == name[1], smk
                found[name[1]] = "shell"
            elif re.search(r"run:\s+(#.*\s+)*run_in_snakemake\(\"(\w+)\",", block):
                # the step is named, not taken from `rule` (a module's prefix renames the rule)
                assert re.search(r"run_in_snakemake\(\"(\w+)\",", block)[1] == name[1], smk
                found[name[1]] = "snakemake"
    return found


def test_every_rule_runs_its_own_script():
    """One script per rule, named after it; every rule but `all` runs its script."""
    rules = {name for smk in (PROJECT / "rules").glob("*.smk") for name in re.findall(r"^rule (\w+):", smk.read_text(), re.M)}
    assert set(_rules_by_how_they_run()) == {p.stem for p in SCRIPTS.glob("*.py")} == rules


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_each_script_is_a_thin_entry_point_with_its_help(script, tmp_path):
    """A rule's script, run by hand with --help from anywhere, says what its rule does and which files and params it
    reads (its docstring, naming its rule and rules file), without importing Snakemake. It holds no science: it
    imports only the job entry point at its top, and its run(job) calls one function of the package."""
    import ast
    import os
    import subprocess
    import sys

    path = SCRIPTS / script
    shown = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(PROJECT / "src")}, check=True).stdout
    tree = ast.parse(path.read_text())
    doc = ast.get_docstring(tree)
    rule = path.stem
    assert doc.startswith(f"Rule {rule} (rules/") and shown.startswith(f"usage: python3 scripts/{script}")
    assert doc.split("\n")[0] in shown and "--params JSON" in shown
    smk = doc.split("(", 1)[1].split(")", 1)[0]
    assert re.search(rf"^rule {rule}:", (PROJECT / smk).read_text(), re.M), smk
    top_imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [(node.module, [a.name for a in node.names]) for node in top_imports][0][0] == "pbuf_data.operate.job"
    assert len(top_imports) == 1
    [run] = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    inner = [node.module for node in ast.walk(run) if isinstance(node, ast.ImportFrom)]
    assert run.name == "run" and len(inner) == 1 and inner[0] in ("pbuf_data.operate.steps", "pbuf_data.operate.cli")
    assert sum(1 for node in ast.walk(run) if isinstance(node, ast.Call)) <= 8 and len(run.body) <= 6
    for params in ("{}", '{"corpus": 5}', '{"corpus": "../x"}'):  # by hand, without what the rule gives
        wrong = subprocess.run([sys.executable, str(path), "--params", params, "--output", "x"], cwd=tmp_path,
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT / "src")})
        assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, (params, wrong.stderr)
        assert wrong.stderr.startswith(f"ERROR: scripts/{script}: the job's --params or files are not what rule "
                                       f"{rule} gives"), (params, wrong.stderr)
        assert not any(tmp_path.iterdir())  # nothing written


def test_the_helper_run_by_hand_is_one_line_naming_the_script_form(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    for argv in (["derive_dataset", "--dataset", "x"], ["--serve"], []):
        old = subprocess.run([sys.executable, "-m", "pbuf_data.operate.helper", *argv], cwd=tmp_path, capture_output=True,
                             text=True, env=env)
        assert old.returncode == 2 and old.stderr.startswith("ERROR: a rule's job runs its script: python3 scripts/RULE.py")
        assert "Traceback" not in old.stderr and old.stderr.count("\n") == 1
    # the form of logs written before the scripts: Python's own one line
    earlier = subprocess.run([sys.executable, "-m", "pbuf_data.job", "derive_dataset"], cwd=tmp_path, capture_output=True,
                             text=True, env=env)
    assert earlier.returncode == 1 and "No module named pbuf_data.job" in earlier.stderr
    assert "Traceback" not in earlier.stderr


def test_jobs_in_snakemakes_process_are_local_and_waited_for_in_threads():
    """The rules run in Snakemake's helper process are local rules (a cluster executor would otherwise start a
    Snakemake process per job for them), and the profiles make Snakemake wait for them in threads
    (force-use-threads); no resource limits them: each job is a process of its own, forked by the helper, and
    takes a core as a job process does."""
    import yaml

    how = _rules_by_how_they_run()
    in_snakemake = {name for name in how if how[name] == "snakemake"}
    assert in_snakemake == {"export_dataset", "generate_mock_file"}
    text = "\n".join(p.read_text() for p in (PROJECT / "rules").glob("*.smk"))
    local = set(re.findall(r"localrules:\s+(\w+),", text))
    assert in_snakemake <= local
    # a dataset's job goes to the cluster, where its run: runs its command line (Snakemake's remote mode)
    assert {name for name in how if how[name] == "either"} == {"derive_dataset"} and "derive_dataset" not in local
    for profile in ("default", "slurm"):
        settings = yaml.safe_load((PROJECT / "profiles" / profile / "config.yaml").read_text())
        assert settings["force-use-threads"] is True and "resources" not in settings


@pytest.mark.workflow
def test_pbuf_data_runs_apply_the_profile_so_run_jobs_stay_in_snakemakes_process(workflow, monkeypatch):
    """``pbuf-data run``, ``resume``, ``reprocess`` and ``prepare_dataset`` call Snakemake's API, not its command
    line, so the profile is read by ``run_workflow``: with ``force-use-threads`` the mock-file jobs run in the
    calling process (here: this one), not each in a Snakemake process of its own, which took a resumed
    embedded default 75 s instead of 22 s; so does the dataset's job."""
    import pbuf_data.operate.helper
    from pbuf_data.core.errors import PbufDataError
    from pbuf_data.operate.api import run_workflow

    here = []
    real_run_in_helper = pbuf_data.operate.helper.run_in_helper

    def recorded(argv, threads=1):
        here.append((argv[0], argv[argv.index("--output") + 1]))
        return real_run_in_helper(argv, threads)

    monkeypatch.setattr(pbuf_data.operate.helper, "run_in_helper", recorded)
    monkeypatch.chdir(workflow.root)
    run_workflow(workflow.root, {"results/mock/state/mock_cc_moresco.json"}, cores=2)
    assert sorted(here) == [("scripts/derive_dataset.py", "results/mock/state/mock_cc_moresco.json"),
                            ("scripts/generate_mock_file.py", "data/mock/raw/mock_cc_moresco/HzTable_MM_BC32.txt"),
                            ("scripts/generate_mock_file.py", "data/mock/raw/mock_cc_moresco/data_MM20.dat")]
    assert (workflow.root / "results" / "mock" / "state" / "mock_cc_moresco.json").is_file()
    assert pbuf_data.operate.helper._helper is None  # the run's helper process ended with the run

    profile = workflow.root / "profiles" / "default" / "config.yaml"
    profile.write_text(profile.read_text() + "\njobs: 4\n")
    with pytest.raises(PbufDataError, match=r"profiles/default/config.yaml: jobs: not a setting that pbuf-data applies"):
        run_workflow(workflow.root, {"all"}, dryrun=True)


def test_a_job_in_snakemakes_process_logs_the_command_that_reruns_it_alone(tmp_path, monkeypatch):
    """run_here (a rule's run:) and `python3 scripts/RULE.py` (the command its log names) do the same work:
    the same file, byte for byte; a failure is one message naming the dataset and check, and leaves the
    process's logging as it was."""
    import logging
    import subprocess
    import sys

    from pbuf_data.operate.project import Project

    project = Project.open(PROJECT)
    entry, fiducial = project.registry["mock_bao_desi_dr1"], project.config["fiducial_cosmology"]
    monkeypatch.chdir(tmp_path)
    role = next(iter(entry["files"]))
    params = job_params(corpus="mock", entry=entry, role=role, seed=entry["mock"]["seed"], fiducial=fiducial)
    argv = [MOCK_FILE, "--dataset", "mock_bao_desi_dr1", "--params", params, "--input",
            "--output", "here/mean.txt", "--log", "here.log"]
    root = logging.getLogger()
    handlers = root.handlers[:]
    run_here(argv)
    assert root.handlers == handlers
    command = (tmp_path / "here.log").read_text().splitlines()[0].split("command: ", 1)[1]
    assert command.startswith(f"python3 {MOCK_FILE} ")
    alone = shlex.split(command)[1:]
    alone[alone.index("here/mean.txt")] = "alone/mean.txt"
    alone[alone.index("here.log")] = "alone.log"
    subprocess.run([sys.executable, *alone], check=True, cwd=tmp_path,
                   env={**__import__("os").environ, "PYTHONPATH": str(PROJECT / "src")})
    written = (tmp_path / "here/mean.txt").read_bytes()
    assert written and (tmp_path / "alone/mean.txt").read_bytes() == written

    bad = [MOCK_FILE, "--dataset", "mock_bao_desi_dr1", "--params",
           job_params(corpus="mock", entry=entry, role=role, seed=entry["mock"]["seed"], fiducial=fiducial),
           "--input", "--output", "here", "--log", "bad.log"]  # the output is a folder
    with pytest.raises(JobFailed, match="dataset 'mock_bao_desi_dr1'") as failed:
        run_here(bad)
    assert "Traceback" not in str(failed.value) and root.handlers == handlers
    alone = subprocess.run([sys.executable, *bad], cwd=tmp_path, capture_output=True, text=True,
                           env={**__import__("os").environ, "PYTHONPATH": str(PROJECT / "src")})
    # the same job in a process of its own: exit 1, the same message, in one line block without a traceback
    assert alone.returncode == 1 and alone.stderr == f"ERROR: {failed.value}\n"


def test_a_jobs_command_line_runs_under_the_profiler(tmp_path):
    """docs/OPERATIONS.md, slow processing: a job's command line under `python3 -m cProfile -s cumtime` does the job
    and prints where its time went, the step's own function among it."""
    import os
    import subprocess
    import sys

    argv = _mock_file_job("prof/mean.txt", "prof.log")
    out = subprocess.run([sys.executable, "-m", "cProfile", "-s", "cumtime", *argv], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT / "src")}).stdout
    assert "cumtime" in out and "(mock_file)" in out and (tmp_path / "prof/mean.txt").stat().st_size > 0


def _mock_file_job(output, log, dataset="mock_bao_desi_dr1", role=None):
    from pbuf_data.operate.project import Project

    project = Project.open(PROJECT)
    entry, fiducial = project.registry[dataset], project.config["fiducial_cosmology"]
    role = role or next(iter(entry["files"]))
    params = job_params(corpus="mock", entry=entry, role=role, seed=entry["mock"]["seed"], fiducial=fiducial)
    return [MOCK_FILE, "--dataset", dataset, "--params", params, "--input", "--output", output,
            "--log", log]


def _job_processes(helper: int, timeout: float = 30) -> list:
    """The job processes a helper has forked (waits until there is one)."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while not (children := psutil.Process(helper).children()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return children


def test_the_helper_process_does_what_the_job_process_does_and_is_replaced_when_it_ends(tmp_path, monkeypatch):
    """run_in_helper (the run: of the mock-file and export rules) sends the job to one process that
    keeps its imports and forks a process per job: it writes the bytes run_here writes, in the caller's working
    folder; a failure is the same message; a job whose process is killed fails with a message naming the
    dataset; a helper killed during a job leaves that job to finish, and the next job starts a new helper, as
    does a change of PYTHONPATH. Jobs sent at once run side by side, each in a process of its own; the
    helper itself holds one thread (it forks)."""
    import os
    import signal
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import psutil

    import pbuf_data.operate.helper

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(PROJECT / "src"))
    run_here(_mock_file_job("here/mean.txt", "here.log"))
    pbuf_data.operate.helper.run_in_helper(_mock_file_job("helper/mean.txt", "helper.log"))
    first = pbuf_data.operate.helper._helper.process
    pbuf_data.operate.helper.run_in_helper(_mock_file_job("helper/again.txt", "again.log"))
    assert pbuf_data.operate.helper._helper.process is first and first.poll() is None  # one helper for the jobs that follow
    written = (tmp_path / "here/mean.txt").read_bytes()
    assert written and (tmp_path / "helper/mean.txt").read_bytes() == written == (tmp_path / "helper/again.txt").read_bytes()
    assert (tmp_path / "helper.log").read_text().splitlines()[0].endswith(
        "command: python3 " + shlex.join(_mock_file_job("helper/mean.txt", "helper.log")))

    with pytest.raises(JobFailed) as here:
        run_here(_mock_file_job("here", "bad-here.log"))  # the output is a folder
    with pytest.raises(JobFailed) as helper:
        pbuf_data.operate.helper.run_in_helper(_mock_file_job("here", "bad-helper.log"))
    assert str(helper.value) == str(here.value).replace("bad-here.log", "bad-helper.log")
    assert "dataset 'mock_bao_desi_dr1'" in str(helper.value) and "Traceback" not in str(helper.value)

    slow = _mock_file_job("helper/cov.txt", "cov.log", dataset="mock_sn_pantheon_plus", role="covariance")
    outcome = []

    def run(argv):
        try:
            pbuf_data.operate.helper.run_in_helper(argv)
            outcome.append("ok")
        except JobFailed as exc:
            outcome.append(str(exc))

    sent = threading.Thread(target=run, args=(slow,))
    sent.start()
    [job] = _job_processes(first.pid)
    assert job.environ()["OPENBLAS_NUM_THREADS"] == "1"  # one BLAS thread, as a shell job of one thread
    job.send_signal(signal.SIGKILL)  # the job's process dies (out of memory, killed): that job fails
    sent.join()
    assert outcome == ["dataset 'mock_sn_pantheon_plus': generate_mock_file: the process running the job was killed "
                       "(SIGKILL) before it answered"]
    sent = threading.Thread(target=run, args=(slow,))
    sent.start()
    _job_processes(first.pid)
    first.send_signal(signal.SIGKILL)  # the helper dies during a job: the job's process finishes it
    sent.join()
    assert outcome[1:] == ["ok"] and (tmp_path / "helper/cov.txt").stat().st_size > 1_000_000
    pbuf_data.operate.helper.run_in_helper(_mock_file_job("helper/later.txt", "later.log"))  # the next job: a new helper
    second = pbuf_data.operate.helper._helper.process
    assert second.pid != first.pid and (tmp_path / "helper/later.txt").read_bytes() == written

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PROJECT / "src"), str(tmp_path)]))
    pbuf_data.operate.helper.run_in_helper(_mock_file_job("helper/other.txt", "other.log"))
    other = pbuf_data.operate.helper._helper.process
    assert other is not second and second.wait(timeout=30) == 0  # the replaced helper ends by itself

    with ThreadPoolExecutor(3) as pool:  # jobs sent at once from threads, as Snakemake's threads send them
        slow_jobs = [pool.submit(pbuf_data.operate.helper.run_in_helper, slow) for _ in range(2)]
        most = 0
        while not all(job.done() for job in slow_jobs):
            most = max(most, len(psutil.Process(other.pid).children()))
        [job.result() for job in slow_jobs]
        list(pool.map(pbuf_data.operate.helper.run_in_helper, [_mock_file_job(f"many/{i}.txt", f"many{i}.log") for i in range(3)]))
    assert most == 2 and all((tmp_path / f"many/{i}.txt").read_bytes() == written for i in range(3))
    threads = Path(f"/proc/{other.pid}/status").read_text().split("Threads:")[1].split()[0]
    assert threads == "1" and pbuf_data.operate.helper._helper.process is other

    stale, running = pbuf_data.operate.helper._helper, pbuf_data.operate.helper._Helper.running
    stale.release()  # ended, or replaced by another thread, after this job chose it: the job goes to a new one
    monkeypatch.setattr(pbuf_data.operate.helper._Helper, "running", lambda helper: helper is stale or running(helper))
    pbuf_data.operate.helper.run_in_helper(_mock_file_job("helper/retried.txt", "retried.log"))
    assert pbuf_data.operate.helper._helper is not stale and (tmp_path / "helper/retried.txt").read_bytes() == written
    newest = pbuf_data.operate.helper._helper.process
    pbuf_data.operate.helper.stop_helper()
    assert pbuf_data.operate.helper._helper is None and other.wait(timeout=30) == 0 and newest.poll() is not None


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # ended, not yet reaped by its new parent
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "running a job"])
def test_the_helper_process_ends_with_the_process_that_started_it(tmp_path, busy):
    """Killed with SIGKILL (no exit handler runs), the process that started a helper leaves none behind: the
    helper's stdin closes with it, and the helper ends; one running a job ends after it, its output whole (as a
    job process of a killed Snakemake finishes its job), and quietly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    slow = _mock_file_job("out/cov.txt", "cov.log", dataset="mock_sn_pantheon_plus", role="covariance")
    script = (
        "import sys, threading, pbuf_data.operate.helper as j\n"
        f"j.run_in_helper({_mock_file_job('out/mean.txt', 'out.log')!r})\n"
        "print(j._helper.process.pid, flush=True)\n"
        + (f"threading.Thread(target=j.run_in_helper, args=({slow!r},), daemon=True).start()\n" if busy else "")
        + "print('sent', flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT / "src")})
    helper = int(parent.stdout.readline())
    assert parent.stdout.readline() == "sent\n"
    assert not _ended(helper) and (tmp_path / "out/mean.txt").is_file()
    if busy:
        deadline = time.monotonic() + 30
        while not (tmp_path / "cov.log").exists() and time.monotonic() < deadline:  # the job has started
            time.sleep(0.01)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    stderr = parent.stderr.read()  # end of file: the helper, which shares this pipe, has ended too
    deadline = time.monotonic() + 30
    while not _ended(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ended(helper) and "Traceback" not in stderr
    if busy:
        log = (tmp_path / "cov.log").read_text()
        assert "finished" in log and (tmp_path / "out/cov.txt").stat().st_size > 1_000_000


def test_a_failed_job_process_writes_its_message_in_one_piece(monkeypatch):
    """Job processes share Snakemake's stderr. A message of several lines goes out in one write with its
    newline (print() writes the newline apart: another job's error written in between would be glued to this
    message's last line, and would no longer start a line)."""
    import io
    import os
    import sys

    read_end, write_end = os.pipe()
    stderr = io.TextIOWrapper(os.fdopen(write_end, "wb"), encoding="utf-8", line_buffering=True)  # a process's stderr
    writes, real_write = [], os.write
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append((fd, bytes(data))) or real_write(fd, data))
    message = "dataset 'bao_x': registry: 2 schema errors:\n  - at 'a': σ missing\n  - at 'b': wrong"
    report_failure(message)
    monkeypatch.undo()
    stderr.close()
    with os.fdopen(read_end, "rb") as pipe:
        received = pipe.read()
    expected = f"ERROR: {message}\n".encode()
    assert received == expected
    assert [data for fd, data in writes if fd == write_end] == [expected]


PRELOAD_CHECK = """
import importlib, json, shlex, sys
import numpy, pbuf_data.operate.steps
from pbuf_data.operate.helper import PRELOAD
from pbuf_data.operate.job import run_here, script_rule
argv = shlex.split(sys.argv[1])[1:]
for name in PRELOAD[script_rule(argv[0])]:
    importlib.import_module(name.partition(":")[0])
before = set(sys.modules)
run_here(argv)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.workflow
def test_what_the_helper_imports_for_a_rule_is_what_its_jobs_import(project):
    """The helper imports a rule's PRELOAD before it forks the first of its jobs. An export job run after
    that import (its command line of a finished run, in a fresh process) imports none of the large libraries."""
    import json
    import os
    import subprocess
    import sys

    tree = project / "results" / "real"
    for log in (tree / "logs" / "export" / "sn_pantheon_plus.log", tree / "logs" / "export" / "bao_desi_dr1.log"):
        command = log.read_text().splitlines()[0].split("command: ", 1)[1]
        out = subprocess.run([sys.executable, "-c", PRELOAD_CHECK, command], cwd=project, check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(project / "src")})
        new = {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}
        assert not new & {"matplotlib", "sacc", "astropy", "scipy", "pandas", "yaml"}, (log.name, sorted(new))


@pytest.mark.workflow
def test_figures_and_exports_made_in_snakemakes_process_equal_those_of_a_process_of_their_own(project):
    """In a finished real-corpus run, the export jobs (figures too) ran in Snakemake's helper process (their logs begin
    with the command line that reruns them alone). Rerunning that command as a process of its own rewrites
    the same files: the same bytes, except the SACC file's, whose tag columns sacc orders as a Python set
    (by string hashes, which differ between processes): its content, read by sacc, is the same."""
    import hashlib
    import json
    import os
    import subprocess
    import sys

    import numpy as np
    import sacc

    def content(path):
        if path.name.endswith(".sacc.fits"):
            s = sacc.Sacc.load_fits(str(path))
            return (s.mean.tolist(), s.covariance.dense.tolist(), [(d.data_type, d.tracers, sorted(d.tags.items()))
                                                                   for d in s.data], sorted(s.metadata.items()))
        if path.name.endswith(".exports.json"):  # the receipt: every export file's sha256
            return sorted(k for k in json.loads(path.read_text())["files"])
        return hashlib.sha256(path.read_bytes()).hexdigest()

    tree = project / "results" / "real"
    for name in ("sn_pantheon_plus", "bao_desi_dr1"):
        receipt = json.loads((tree / "state" / f"{name}.exports.json").read_text())
        command = (tree / "logs" / "export" / f"{name}.log").read_text().splitlines()[0].split("command: ", 1)[1]
        argv = shlex.split(command)
        assert argv[:2] == ["python3", "scripts/export_dataset.py"]
        job = parse(argv[1:])
        files = [project / p for p in job.output] + [project / p for p in receipt["files"]]
        before = {p: content(p) for p in files}
        assert len(before) == 6 + len(receipt["files"]) and len(receipt["files"]) >= 2
        subprocess.run([sys.executable, *argv[1:]], cwd=project, check=True,
                       env={**os.environ, "PYTHONPATH": str(project / "src")})
        assert {p: content(p) for p in files} == before
    assert np.isfinite(before[next(p for p in before if p.name.endswith(".sacc.fits"))][0]).all()


def test_a_preload_function_is_called_once_after_its_module_is_imported(tmp_path, monkeypatch):
    """A PRELOAD name "module:function" imports the module and calls the function once per helper process (the
    figures' warm-up); a plain name only imports; a name that fails to import is left to the job."""
    import sys

    from pbuf_data.operate import helper as job

    (tmp_path / "warmed_here.py").write_text("calls = []\ndef warm():\n    calls.append(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(job, "_CALLED", set())
    monkeypatch.delitem(sys.modules, "warmed_here", raising=False)
    job._import(["warmed_here:warm", "no_such_module_here:warm"])
    job._import(["warmed_here:warm", "warmed_here"])
    assert sys.modules["warmed_here"].calls == [1]
    assert "no_such_module_here" not in sys.modules


def test_digest_params_are_the_full_text_to_the_job_and_a_digest_to_snakemakes_record():
    """What Snakemake records and compares of a param (its own serializer) is the digest, so its "Params have
    changed" reason is short; the job's command line still carries the whole JSON."""
    import hashlib
    import json

    from snakemake.persistence import PersistenceBase as Persistence
    from snakemake.utils import format as snakemake_format

    params = {"corpus": "real", "settings": {"entry": {"options": {"systematics": ["IMF", "mod_ooo"] * 50}}}}
    text = job_params(**params, digest=True)
    assert json.loads(text) == params and "digest" not in json.loads(text)
    recorded = Persistence._serialize_param_builtin(None, text)
    assert recorded == repr("parameters sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16])
    assert snakemake_format("{args:q}", args=text) == shlex.quote(json.dumps(params, sort_keys=True,
                                                                             separators=(",", ":")))
    plain = job_params(**params)  # the other rules: recorded as the text itself
    assert Persistence._serialize_param_builtin(None, plain) == repr(plain) and len(repr(plain)) > 800


@pytest.mark.workflow
def test_a_datasets_job_runs_in_the_helper_with_its_threads_and_without_it_in_its_own_process(workflow):
    """rules/derive.smk in a local run: a dataset's job is forked by the helper (its log's first line is the
    command that reruns it alone, as for the figures), with the threads Snakemake gives it (--set-threads);
    spawned by Snakemake without the profile (no force-use-threads, as on a cluster node), the same job is
    ``python3 scripts/derive_dataset.py ...``, a process of its own. All publish the same bytes (coreutils
    sha256sum), write the same three logs, and record the job's threads, CPU time and memory in its audit
    record."""
    import json
    import subprocess

    root, name = workflow.root, "mock_cc_moresco"
    target = f"results/mock/state/{name}.json"
    published = [f"results/mock/derived/{name}.npz", f"results/mock/derived/{name}.json"]

    def logs():
        return {step: (root / "results/mock/logs" / step / f"{name}.log").read_text().splitlines()
                for step in ("derive", "validate", "publish")}

    def sums():
        return subprocess.run(["sha256sum", *published], cwd=root, capture_output=True, text=True, check=True).stdout

    workflow.run("--cores", "2", target)
    forked, forked_sums = logs(), sums()
    # the target first: --forcerun takes every word after it as a rule or file to force
    workflow.run(target, "--cores", "2", "--set-threads", "derive_dataset=2", "--forcerun", "derive_dataset")
    two = logs()
    workflow.run(target, "--cores", "2", "--workflow-profile", "none", "--forcerun", "derive_dataset")
    own = logs()
    for lines in (forked, two):
        assert lines["derive"][0].endswith(f"command: python3 scripts/derive_dataset.py --dataset {name} --params "
                                           + lines["derive"][0].split(" --params ", 1)[1])
    assert not any("command:" in line for line in own["derive"])
    assert sums() == forked_sums
    assert any(f"{name}: published results/mock/derived/{name}.npz" in line for line in forked["publish"])
    for lines in (two, own):  # same bytes: kept
        assert any(f"{name}: equal to its published copy" in line for line in lines["publish"])
    for lines in (forked, two, own):  # each phase's records in its own log, in all
        assert any(f"{name}: PASSED (32 points" in line for line in lines["validate"])
        assert not any("PASSED (" in line or ": published " in line for line in lines["derive"])
    records = [json.loads(line) for line in (root / "results/mock/logs/audit.jsonl").read_text().splitlines()]
    derived = [r for r in records if r.get("rule") == "derive_dataset" and r.get("dataset") == name]
    assert [r["threads"] for r in derived] == [1, 2, 1] and all(r["status"] == "success" for r in derived)
    for record in derived:
        assert 0 < record["cpu_seconds"] <= record["threads"] * record["seconds"] + 0.05
        assert 0 < record["rss_at_start_mib"] <= record["peak_rss_mib"] < 2048
    # docs/OPERATIONS.md, slow processing: `snakemake -n -p TARGET --forcerun RULE` names that one job, and prints
    # the command line of a job that is a process of its own (a job of the helper's logs it instead, as above)
    dry = workflow.run("-n", "-p", "results/mock/validation/summary.txt", "--forcerun", "validation_summary").stdout
    assert dry.count("\nrule validation_summary:") == 1 and "Shell command: python3 scripts/validation_summary.py --params " in dry
    dry = workflow.run("-n", "-p", target, "--forcerun", "derive_dataset").stdout
    assert dry.count("\nrule derive_dataset:") == 1 and f"wildcards: dataset={name}\n" in dry
