"""Shared fixtures: the real raw corpus, the registries, and temporary copies of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.registry import load_registry

PROJECT = Path(__file__).resolve().parents[1]
RAW_DIR = Path(os.environ.get("PBUF_RAW_DIR", PROJECT.parent / "shared" / "data" / "raw")).resolve()
REQUIRE_RAW = os.environ.get("PBUF_REQUIRE_RAW") == "1"
RAW_SKIP = f"real raw files not available at {RAW_DIR} (set PBUF_RAW_DIR=/path/to/raw, or put them there)"
N_REAL = len(load_registry(PROJECT / "config" / "registry.yaml"))  # datasets of the real registry
WORKFLOW_FILES = ["Snakefile", "config", "rules", "scripts", "profiles", "envs", "report", "src"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Two pytest-xdist workers (``--dist loadgroup``): a module's tests run on one worker, with its
    module-scoped fixtures, except the tests marked ``any_worker``: long ones (a cold run killed and
    resumed) that share no fixture, each sent to whichever worker is free. They are collected first, so
    that the longest tests are not left for the end of the run on one worker."""
    for item in items:
        if not item.get_closest_marker("any_worker"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: item.get_closest_marker("any_worker") is None)  # stable: order kept otherwise


_SKIPPED: dict[str, int] = {}  # reason -> tests skipped for it (this process: the controller under xdist)


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        _SKIPPED[reason] = _SKIPPED.get(reason, 0) + 1


def pytest_terminal_summary(terminalreporter):
    """One line naming what was skipped and how to run it (e.g. a fresh clone without the real raw files)."""
    if _SKIPPED:
        groups = "; ".join(f"{n} because {reason}" for reason, n in sorted(_SKIPPED.items(), key=lambda kv: -kv[1]))
        terminalreporter.write_line(f"skipped {sum(_SKIPPED.values())} tests: {groups}")


def need_chromium(chromium, what: str) -> None:
    """Skip a test without headless Chromium (``chromium``: its path, or None), or fail it in CI
    (PBUF_REQUIRE_CHROMIUM=1); ``what`` says what is then not checked."""
    if chromium is None:
        if os.environ.get("PBUF_REQUIRE_CHROMIUM") == "1":  # CI
            pytest.fail("chromium required (PBUF_REQUIRE_CHROMIUM=1) but not on the PATH")
        pytest.skip(f"chromium not installed (Debian/Ubuntu: apt-get install chromium): {what}")


def _raw_available() -> bool:
    return (RAW_DIR / "SOURCES.md").exists()


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """The real survey files; tests skip without them unless PBUF_REQUIRE_RAW=1 (CI), where they fail."""
    if not _raw_available():
        if REQUIRE_RAW:
            pytest.fail(f"real raw files required (PBUF_REQUIRE_RAW=1) but not found at {RAW_DIR}")
        pytest.skip(RAW_SKIP)
    return RAW_DIR


@pytest.fixture(scope="session")
def registry() -> dict:
    return load_registry(PROJECT / "config" / "registry.yaml")


@pytest.fixture(scope="session")
def mock_registry() -> dict:
    return load_registry(PROJECT / "config" / "registry_mock.yaml")


@pytest.fixture(scope="session")
def real(registry, raw_dir):
    """Derive a real dataset (cached per session)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = derive_dataset(name, registry[name], raw_dir)
        return cache[name]

    return get


def _writable_copy(source: Path, target: Path) -> None:
    """``source`` copied to ``target`` with modification times kept, every file 0644, every folder 0755."""
    shutil.copytree(source, target, symlinks=True)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    target.chmod(0o755)


@pytest.fixture
def writable_raw(raw_dir, tmp_path) -> Path:
    """A writable copy of the real raw folder."""
    target = tmp_path / "raw"
    _writable_copy(raw_dir, target)
    return target


class Workflow:
    """A temporary copy of the project in which Snakemake runs."""

    def __init__(self, root: Path):
        self.root = root

    def run(self, *args, check=True, timeout=900):
        cmd = [sys.executable, "-m", "snakemake", *args]
        proc = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def jobs(self, *args) -> dict:
        """Dry run: {rule: count} of the jobs Snakemake would run, and the raw text."""
        proc = self.run("-n", "--quiet", "rules", *args)
        counts = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
                counts[parts[0]] = int(parts[1])
        return counts


def copy_project(root: Path) -> Workflow:
    """The workflow's files copied into ``root`` (a fresh project folder)."""
    root.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, root / name)
    return Workflow(root)


def use_real_tree(root: Path) -> None:
    """Configure a project copy for the real corpus (config ``corpus: real``), as a person working on the real
    releases does: then ``pbuf-data`` commands without ``--raw-dir`` use ``results/real`` too."""
    path = root / "config" / "config.yaml"
    text = path.read_text()
    assert 'corpus: ""' in text
    path.write_text(text.replace('corpus: ""', "corpus: real", 1))


def cli(root, *args):
    """``pbuf-data --root ROOT ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(root), *args], capture_output=True, text=True)


@pytest.fixture
def workflow(tmp_path) -> Workflow:
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, raw_dir) -> Path:
    """One finished real-corpus run, shared read-only by several test modules (each test works on a copy)."""
    workflow = copy_project(tmp_path_factory.mktemp("finished") / "project")
    use_real_tree(workflow.root)
    workflow.run("--cores", "2", "--config", f"raw_dir={raw_dir}")
    return workflow.root


@pytest.fixture
def project(finished_run, tmp_path) -> Path:
    """A private copy of the finished run."""
    root = tmp_path / "copy"
    shutil.copytree(finished_run, root, symlinks=True)
    return root


@pytest.fixture(scope="session")
def _finished_writable_run(tmp_path_factory, raw_dir):
    """One finished real-corpus run on a writable copy of the raw folder (the pristine copy is kept beside it)."""
    base = tmp_path_factory.mktemp("finished-writable")
    pristine, raw = base / "pristine-raw", base / "raw"
    _writable_copy(raw_dir, pristine)
    shutil.copytree(pristine, raw, symlinks=True)
    workflow = copy_project(base / "project")
    use_real_tree(workflow.root)
    workflow.run("--cores", "2", "--config", f"raw_dir={raw}")
    return workflow.root, pristine, raw


@pytest.fixture
def real_run(_finished_writable_run, tmp_path):
    """A finished real-corpus run of the test's own, with a writable raw folder: ``(workflow, raw, cfg)``.

    A private copy of one finished run of the session (a cold run of this project on a writable copy of the
    real corpus), for tests about what a finished run does next, instead of a cold run per test. Its raw folder is
    put back, pristine, at the path the run used, so that Snakemake's record of the raw files' checksums (kept
    per path) holds for it as it does after a run: touching a raw file reruns nothing."""
    root, pristine, raw = _finished_writable_run
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    if raw.exists():
        shutil.rmtree(raw)
    shutil.copytree(pristine, raw, symlinks=True)
    return Workflow(copy), raw, f"raw_dir={raw}"
