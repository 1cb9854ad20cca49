"""Deployed as the Snakemake workflow catalog deploys workflows: used as a Snakemake module from another folder (rules
renamed with a prefix), installed with a non-editable ``pip install .``, described by ``.snakemake-workflow-catalog.yml``.
README "Using it as a Snakemake module"."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import PROJECT, Workflow, copy_project

NAMES = ["bao_desi_dr1", "cc_moresco", "cmb_planck2018"]  # small real releases: the test takes seconds per run

# What `snakedeploy deploy-workflow` writes (its use_module template), with a rule prefix; the module is read from
# this checkout instead of a GitHub tag.
MODULE_SNAKEFILE = """\
configfile: "config/config.yaml"


module pbuf:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from pbuf as pbuf_*
"""


def _published(root):
    """sha256 of every published dataset file of the real tree; the documents with their creation time left out."""
    derived = root / "results" / "real" / "derived"
    found = {}
    for path in sorted(derived.rglob("*.npz")):
        found[str(path.relative_to(derived))] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted(derived.glob("*.json")):
        document = json.loads(path.read_text())
        del document["provenance"]["created_utc"]
        found[path.name] = document
    return found


@pytest.mark.workflow
@pytest.mark.real
@pytest.mark.any_worker
def test_used_as_a_module_with_a_rule_prefix_it_publishes_what_a_direct_run_does(tmp_path, raw_dir):
    config = ["--config", f"raw_dir={raw_dir}", f"datasets=[{','.join(NAMES)}]", "retrieve=False"]
    direct = copy_project(tmp_path / "direct")
    direct.run("--cores", "2", *config)

    scratch = tmp_path / "scratch"  # a folder of its own: the deployment's config, the project's settings
    scratch.mkdir()
    shutil.copytree(PROJECT / "config", scratch / "config")  # what snakedeploy copies
    shutil.copytree(PROJECT / "profiles" / "default", scratch / "profiles" / "default")  # the settings to copy
    # the module in a folder whose name needs quoting: the rules run its scripts by their absolute path
    source = copy_project(tmp_path / "pbuf's module").root
    (scratch / "Snakefile").write_text(MODULE_SNAKEFILE.format(snakefile=source / "Snakefile"))
    module = Workflow(scratch)
    done = module.run("--cores", "2", *config)
    assert "Traceback" not in done.stderr
    for rule in ("pbuf_derive_dataset", "pbuf_export_dataset", "pbuf_manifest", "pbuf_all"):
        assert f"rule {rule}:" in done.stderr or f"localrule {rule}:" in done.stderr, rule
    assert "Using workflow specific profile profiles/default" in done.stdout + done.stderr
    export_log = (scratch / "results" / "real" / "logs" / "export" / "cc_moresco.log").read_text()
    script = shlex.quote(str(source / "scripts" / "export_dataset.py"))
    assert f"command: python3 {script} --dataset cc_moresco" in export_log

    published = _published(scratch)
    assert sorted(k for k in published if k.endswith(".json")) == [f"{name}.json" for name in NAMES]
    assert published == _published(direct.root)
    # the manifest verifies with sha256sum, a program of its own, in the module's working folder
    manifest = scratch / "results" / "real" / "manifests" / "derived.sha256"
    checked = subprocess.run(["sha256sum", "-c", "--strict", str(manifest.relative_to(scratch))], cwd=scratch,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (scratch / "results" / "real" / "plots" / "cc_moresco_observable.png").exists()
    again = module.run("--cores", "2", *config)  # up to date in the module's working folder too
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_non_editable_install_carries_its_schemas_and_runs_a_command(tmp_path):
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside the sources
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "results", "data", ".snakemake", "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    installed = target / "pbuf_data" / "schemas"
    assert sorted(p.name for p in installed.iterdir()) == ["config.schema.yaml", "registry.schema.yaml"]
    for path in installed.iterdir():  # the package's only copy, as installed
        assert path.read_bytes() == (PROJECT / "src" / "pbuf_data" / "schemas" / path.name).read_bytes()
    assert not (PROJECT / "config" / "schemas").exists()

    project = copy_project(tmp_path / "project").root
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg"}

    def pbuf(*args):
        return subprocess.run([sys.executable, "-m", "pbuf_data", *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import pbuf_data; print(pbuf_data.__file__)"], env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(target / "pbuf_data" / "__init__.py")  # the installed copy, not src/
    status = pbuf("status")
    assert status.returncode == 0, status.stderr
    assert "corpus 'mock'" in status.stdout + status.stderr
    # the installed schema is the one in force: a misspelt key is refused, named, with the nearest key
    config = project / "config" / "config.yaml"
    config.write_text(config.read_text().replace("retrieve: true", "retreive: true"))
    refused = pbuf("status")
    assert refused.returncode != 0
    assert "retreive" in refused.stderr and "retrieve" in refused.stderr and "Traceback" not in refused.stderr


CATALOG_KEYS = {  # what the catalog's generator reads (snakemake-workflow-catalog, scripts/generate-catalog.py)
    "usage": {"mandatory-flags": {"desc", "flags"}, "software-stack-deployment": {"conda", "apptainer",
                                                                                  "apptainer+conda"}, "report": None},
}


@pytest.mark.workflow
def test_the_catalog_file_says_only_what_the_catalog_reads_and_its_flags_work(tmp_path, raw_dir):
    settings = yaml.safe_load((PROJECT / ".snakemake-workflow-catalog.yml").read_text())
    assert set(settings) == set(CATALOG_KEYS)
    usage = settings["usage"]
    assert set(usage) <= set(CATALOG_KEYS["usage"])
    for key, allowed in CATALOG_KEYS["usage"].items():
        if allowed and key in usage:
            assert set(usage[key]) <= allowed, key
    assert usage["report"] is True and usage["software-stack-deployment"] == {"conda": True}
    assert (PROJECT / "config" / "README.md").is_file()  # the catalog shows it as the configuration's text
    # the mandatory flags, with the placeholder filled in, select the real registry
    flags = usage["mandatory-flags"]["flags"].replace("/path/to/raw", str(raw_dir)).split()
    dry = copy_project(tmp_path / "project").run("-n", *flags)
    assert f"corpus 'real': results in results/real/, raw folder {raw_dir}" in dry.stderr
