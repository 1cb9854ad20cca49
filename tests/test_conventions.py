"""The ecosystem's conventions: documented configuration, a conda environment Snakemake can build
(same pins as the lock file, no editable install), a licence matching the package metadata, and
jobs that run this folder's package and print no empty shell commands."""

import json
import tomllib

import pytest
import yaml

from conftest import PROJECT


def _lock() -> dict:
    pins = {}
    for line in (PROJECT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def _schema_keys(schema: dict, prefix="") -> list[str]:
    keys = []
    for key, sub in schema.get("properties", {}).items():
        keys.append(prefix + key)
        keys += _schema_keys(sub, f"{prefix}{key}.")
    return keys


def test_config_readme_explains_every_key_of_the_schema():
    schema = yaml.safe_load((PROJECT / "src" / "pbuf_data" / "schemas" / "config.schema.yaml").read_text())
    text = (PROJECT / "config" / "README.md").read_text()
    keys = _schema_keys(schema)
    assert len(keys) > 30
    missing = [key for key in keys if f"`{key.rsplit('.', 1)[-1]}`" not in text]
    assert not missing, f"config/README.md does not explain {missing}"


def test_conda_environment_is_buildable_and_pinned_like_the_lock():
    env = yaml.safe_load((PROJECT / "envs" / "pbuf.yaml").read_text())
    assert set(env) == {"name", "channels", "dependencies"}
    assert "conda-forge" in env["channels"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    python = [d for d in conda if d.startswith("python=")]
    assert len(python) == 1 and "pip" in conda
    requires = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.14" and python[0].split("=")[1] in ("3.11", "3.12", "3.13")
    lock = _lock()
    for requirement in pip:
        assert not requirement.startswith("-"), f"no pip options (such as -e ..) in a Snakemake conda env: {requirement}"
        name, version = requirement.split("==")
        assert lock[name.lower().replace("_", "-")] == version, requirement
    # every runtime import of the package is provided
    runtime = {r.split("==")[0].lower() for r in tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]}
    provided = {r.split("==")[0].lower() for r in pip}
    assert runtime - provided <= {"snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep"}
    for rules in (PROJECT / "rules").glob("*.smk"):
        for line in rules.read_text().splitlines():
            if line.strip().startswith('"../envs/'):
                assert (PROJECT / "rules" / line.strip().strip('",')).resolve() == PROJECT / "envs" / "pbuf.yaml"


def test_licence_and_catalog_metadata():
    licence = (PROJECT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in licence
    assert tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["license"] == {"text": "MIT"}
    catalog = yaml.safe_load((PROJECT / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["software-stack-deployment"]["conda"] is True
    assert catalog["usage"]["report"] is True
    assert "raw_dir=" in catalog["usage"]["mandatory-flags"]["flags"]


@pytest.mark.workflow
def test_jobs_run_this_folders_package_and_print_no_empty_shell_command(workflow):
    """The copy's src/ (not an installed package) runs in the jobs: its version reaches the provenance."""
    init = workflow.root / "src" / "pbuf_data" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.0+this-copy"'))
    proc = workflow.run("--cores", "2", "--config", "datasets=[mock_bao_6dfgs]")
    assert "Shell command: None" not in proc.stdout + proc.stderr
    document = json.loads((workflow.root / "results" / "mock" / "derived" / "mock_bao_6dfgs.json").read_text())
    assert document["provenance"]["software"]["pbuf_data"] == "0.1.0+this-copy"
