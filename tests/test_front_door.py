"""What a person sees first: the project is found from any sub-folder, typos get a "did you mean",
and a user mistake is one clean message — never a traceback — from the CLI, the API and Snakemake."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pbuf_data import PbufDataError, prepare_dataset

from conftest import PROJECT


def _pbuf(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pbuf_data", *args], cwd=cwd, capture_output=True, text=True)


def _clean(output: str) -> None:
    assert "Traceback" not in output and 'File "' not in output, output


def test_cli_finds_the_project_from_a_sub_folder_and_refuses_outside(workflow, tmp_path):
    at_root = _pbuf(workflow.root, "verify")
    below = _pbuf(workflow.root / "src" / "pbuf_data" / "schemas", "verify")
    assert (below.returncode, below.stdout) == (at_root.returncode, at_root.stdout)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    refused = _pbuf(outside, "verify")
    assert refused.returncode == 2  # could not run (README: exit codes)
    assert "not a pbuf-data project" in refused.stderr and "use --root" in refused.stderr
    assert "MISSING" not in refused.stdout + refused.stderr
    _clean(refused.stdout + refused.stderr)
    explicit = _pbuf(outside, "--root", str(workflow.root / "rules"), "verify")
    assert (explicit.returncode, explicit.stdout) == (at_root.returncode, at_root.stdout)


def test_dataset_name_typo_on_the_command_line_suggests_the_nearest(workflow):
    proc = _pbuf(workflow.root / "rules", "reprocess", "mock_bao_bos_dr12")
    assert proc.returncode == 2
    assert "unknown dataset 'mock_bao_bos_dr12' (did you mean 'mock_bao_boss_dr12'" in proc.stderr
    _clean(proc.stdout + proc.stderr)
    assert not (workflow.root / "results").exists()  # refused before any job


def test_dataset_name_typo_in_the_api_suggests_the_nearest(workflow):
    with pytest.raises(PbufDataError, match=r"not in the active registry \(corpus 'mock': results in results/mock/.*\) \(did you mean 'mock_cc_moresco'\?\)"):
        prepare_dataset("mock_cc_morseco", root=workflow.root / "config")
    assert not (workflow.root / "results").exists()


def _snakemake_n(workflow, *args):
    proc = workflow.run("-n", *args, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    _clean(output)
    return output


def test_config_typos_are_one_clean_block(workflow):
    output = _snakemake_n(workflow, "--config", "datasets=[mock_bao_boss_dr21]")
    assert "config 'datasets' names 'mock_bao_boss_dr21' (did you mean 'mock_bao_boss_dr12'" in output
    output = _snakemake_n(workflow, "--config", "raw_dri=x")
    assert "unknown key 'raw_dri' (did you mean 'raw_dir'?)" in output


@pytest.mark.parametrize("target", ["results/mock/state/mock_cc_morseco.json", "results/mock/plots/mock_cc_morsco_observable.png",
                                    "results/mock/exports/mock_bao_6dgfs.sacc.fits"])
def test_a_typo_in_a_target_path_is_one_clean_block(workflow, target):
    output = _snakemake_n(workflow, target)
    assert "target path names '" in output and "(did you mean 'mock_" in output
    assert "InputFunctionException" not in output and "Wildcards" not in output


def test_registry_mistakes_are_all_listed_in_words(workflow):
    path = workflow.root / "config" / "registry_mock.yaml"
    registry = yaml.safe_load(path.read_text())
    registry["datasets"]["mock_bao_6dfgs"]["files"]["table"]["path"] = "../escape.txt"
    registry["datasets"]["mock_cc_moresco"]["kind"] = "cosmic"
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    output = _snakemake_n(workflow)
    assert "2 schema errors" in output
    assert "at 'datasets.mock_bao_6dfgs.files.table.path': path must stay inside the raw folder: '..'" in output
    assert "at 'datasets.mock_cc_moresco.kind': 'cosmic' is not one of" in output


def test_the_lock_file_pins_what_pyproject_pins():
    """requirements.lock (every transitive pin) agrees with the direct pins of pyproject.toml."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    direct = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    lock = {}
    for line in (PROJECT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for requirement in direct:
        name, version = requirement.split("==")
        assert lock.get(name.lower().replace("_", "-")) == version, requirement
    assert project["requires-python"] == ">=3.11,<3.14"
