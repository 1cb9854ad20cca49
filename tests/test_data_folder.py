"""data/: the default home of the real releases (data/raw/<dataset>/<file>) beside the embedded default.

A run without ``raw_dir`` reads the real registry from ``data/raw`` once that folder holds a release file, and runs
the embedded default (mock surveys, offline) while it holds none, as in a fresh clone (data/README.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import PROJECT, copy_project
from pbuf_data.core import layout
from pbuf_data.operate.project import Project

CONFIG = {"raw_dir": "", "corpus": "", "registry": "config/registry.yaml", "mock_registry": "config/registry_mock.yaml",
          "extra_registries": []}


def _project(root, **config):
    return Project(root, {**CONFIG, **config})


def test_the_data_readme_names_every_input_folder_of_the_layout():
    text = (PROJECT / "data" / "README.md").read_text()
    for folder in (layout.RAW, layout.RAW_CACHE, layout.MOCK_RAW, layout.BACKUPS):
        assert f"`{folder}" in text, folder


@pytest.mark.parametrize("files", [
    [],  # a fresh clone: no data/raw at all
    ["data/raw/"],  # an empty data/raw
    ["data/raw/bao_desi_dr1/"],  # a dataset folder without a file
    ["data/raw/.gitkeep", "data/raw/README.md"],  # files beside the dataset folders, not in one
    ["data/raw/bao_desi_dr1/.partial", "data/raw/.hidden/mean.txt"],  # hidden names
])
def test_without_a_release_file_in_data_raw_a_run_is_the_embedded_default(tmp_path, files):
    for name in files:
        path = tmp_path / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x\n")
    project = _project(tmp_path)
    assert (project.use_mock, project.raw_dir, project.corpus) == (True, "data/mock/raw", "mock")
    assert project.registry_files == ["config/registry_mock.yaml"]


def test_a_release_file_in_data_raw_selects_the_real_registry_there(tmp_path):
    (tmp_path / "data" / "raw" / "cc_moresco").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "cc_moresco" / "HzTable_MM_BC32.txt").write_text("0.1 69 12\n")
    config = {"extra_registries": ["config/extra.yaml"]}
    project = _project(tmp_path, **config)
    assert (project.use_mock, project.raw_dir, project.corpus) == (False, "data/raw", "real")
    assert project.tree.base == "results/real"
    assert project.registry_files == ["config/registry.yaml", "config/extra.yaml"]
    assert project.overrides() == {"raw_dir": "data/raw"}
    assert "raw folder data/raw" in project.describe() and "corpus=mock" in project.describe()
    # corpus 'mock' asks for the embedded default whatever data/raw holds; another corpus name keeps data/raw
    assert _project(tmp_path, **config, corpus="mock").use_mock
    named = _project(tmp_path, **config, corpus="dr1")
    assert (named.raw_dir, named.tree.base) == ("data/raw", "results/dr1")
    # an explicit raw_dir wins
    explicit = _project(tmp_path, **config, raw_dir="/elsewhere/raw/")
    assert (explicit.raw_dir, explicit.default_raw) == ("/elsewhere/raw", False)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.workflow
def test_a_fresh_clone_with_an_empty_data_raw_runs_the_embedded_default_with_one_command(tmp_path):
    workflow = copy_project(tmp_path / "project")
    (workflow.root / "data" / "raw").mkdir(parents=True)
    shutil.copy2(PROJECT / "data" / "README.md", workflow.root / "data" / "README.md")
    (workflow.root / "data" / "raw" / ".gitkeep").write_text("")
    done = workflow.run("--cores", "2", "--config", "datasets=[mock_cc_moresco]")
    assert "corpus 'mock': results in results/mock/, mock surveys generated in data/mock/raw" in done.stderr
    document = json.loads((workflow.root / "results" / "mock" / "derived" / "mock_cc_moresco.json").read_text())
    generated = workflow.root / "data" / "mock" / "raw"
    for raw in document["provenance"]["raw_files"]:  # the files the run generated, hashed here
        assert raw["sha256"] == _sha256(generated / raw["path"])
    assert not (workflow.root / "results" / "real").exists()


@pytest.mark.workflow
@pytest.mark.real
@pytest.mark.any_worker
def test_releases_copied_into_data_raw_are_derived_from_the_real_registry_without_raw_dir(tmp_path, raw_dir):
    names = ["bao_desi_dr1", "cc_moresco"]
    workflow = copy_project(tmp_path / "project")
    for name in names:
        shutil.copytree(raw_dir / name, workflow.root / "data" / "raw" / name)
    done = workflow.run("--cores", "2", "--config", f"datasets=[{','.join(names)}]", "retrieve=False")
    assert "corpus 'real': results in results/real/, raw folder data/raw" in done.stderr
    derived = workflow.root / "results" / "real" / "derived"
    assert sorted(p.name for p in derived.glob("*.json")) == [f"{name}.json" for name in names]
    for name in names:
        document = json.loads((derived / f"{name}.json").read_text())
        assert document["metadata"]["mock"] is False
        for raw in document["provenance"]["raw_files"]:  # the release files, as sha256 computes them here
            assert raw["pinned"] and raw["sha256"] == _sha256(raw_dir / raw["path"])
    assert not (workflow.root / "results" / "mock").exists() and not (workflow.root / "data" / "mock").exists()
    assert not (workflow.root / "data" / "raw_cache").exists()  # nothing was downloaded
    # pbuf-data, from a sub-folder, without --raw-dir: the same raw folder and tree
    status = subprocess.run([sys.executable, "-m", "pbuf_data", "status"], cwd=workflow.root / "config",
                            capture_output=True, text=True)
    assert f"corpus 'real': results in results/real/, raw folder {workflow.root.resolve()}/data/raw" in status.stdout
    for name in names:
        assert re.search(rf"^{name}\s+up to date$", status.stdout, re.M), status.stdout
