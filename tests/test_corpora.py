"""One result tree per corpus: mock and real runs cannot see or overwrite each other; retired datasets are pruned."""

import hashlib
import json
import shutil

import pytest
import yaml

from pbuf_data import PbufDataError, load_dataset
from pbuf_data.read.registry import load_registry

from conftest import N_REAL, PROJECT, cli
from pbuf_data.read.registry import load_registry

N_MOCK = len(load_registry(PROJECT / "config" / "registry_mock.yaml"))

pytestmark = pytest.mark.workflow


def digest(folder):
    """sha256 of every file under ``folder`` (logs left out: they are history, appended to by any command)."""
    sums = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "logs" not in path.relative_to(folder).parts:
            sums[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def test_mock_and_real_results_live_in_trees_of_their_own(project, raw_dir):
    from conftest import Workflow

    workflow = Workflow(project)
    real_before = digest(project / "results" / "real")
    assert real_before and not (project / "results" / "mock").exists()
    # after a real run, the embedded default is not "nothing to be done": its own tree is empty
    mock = ("--config", "corpus=mock")  # the embedded default (this project copy is configured with corpus: real)
    dry = workflow.run("-n", "--cores", "2", *mock)
    assert "pbuf-data: corpus 'mock': results in results/mock/" in dry.stderr
    assert "Nothing to be done" not in dry.stdout + dry.stderr
    workflow.run("--cores", "2", *mock)
    assert digest(project / "results" / "real") == real_before  # the mock run changed nothing of the real results
    mock_summary = (project / "results" / "mock" / "validation" / "summary.txt").read_text()
    real_summary = (project / "results" / "real" / "validation" / "summary.txt").read_text()
    names = {tree: [line.split()[0] for line in text.splitlines()[1:]] for tree, text in (("mock", mock_summary), ("real", real_summary))}
    assert mock_summary.startswith(f"{N_MOCK}/{N_MOCK} datasets published") and all(n.startswith("mock_") for n in names["mock"])
    assert real_summary.startswith(f"{N_REAL}/{N_REAL} datasets published") and "cc_moresco" in names["real"]
    assert not any(n.startswith("mock_") for n in names["real"])
    mock_manifest = (project / "results" / "mock" / "manifests" / "derived.sha256").read_text()
    assert "results/real/" not in mock_manifest and "results/mock/derived/mock_cc_moresco.json" in mock_manifest
    # each command says which tree it uses, and each tree verifies on its own
    for args, tree in ((("--raw-dir", str(raw_dir)), "real"), (("--corpus", "mock"), "mock")):
        proc = cli(project, "verify", *args)
        assert proc.returncode == 0, proc.stdout
        assert proc.stdout.startswith(f"corpus '{tree}': results in results/{tree}/")
    every = cli(project, "verify")  # not told a corpus: every tree present, each named before its verdict
    lines = every.stdout.splitlines()
    assert every.returncode == 0 and lines[0] == "every result tree present: mock, real", every.stdout
    assert [line.split(":")[0] for line in lines if line.startswith("corpus ")] == ["corpus 'mock'", "corpus 'real'"]
    assert sum(line.startswith("verify OK") for line in lines) == 2
    status = cli(project, "status", "--corpus", "mock")
    assert status.stdout.startswith("corpus 'mock': results in results/mock/") and f"{N_MOCK} of {N_MOCK} datasets up to date" in status.stdout
    # a real run after the mock one: nothing to redo, and the mock tree untouched
    mock_before = digest(project / "results" / "mock")
    assert workflow.jobs("--config", f"raw_dir={raw_dir}") == {}
    workflow.run("--cores", "2", "--config", f"raw_dir={raw_dir}")
    assert digest(project / "results" / "mock") == mock_before
    # load_dataset finds the one tree that holds a name; a name in two trees needs corpus=
    assert load_dataset("mock_cc_moresco", root=project).name == "mock_cc_moresco"
    assert load_dataset("cc_moresco", root=project).name == "cc_moresco"
    shutil.copytree(project / "results" / "real", project / "results" / "dr2")
    with pytest.raises(PbufDataError, match=r"several result trees \(results/dr2, results/real\): pass corpus="):
        load_dataset("cc_moresco", root=project)
    assert len(load_dataset("cc_moresco", root=project, corpus="dr2")) == 32


def test_a_named_corpus_gets_its_own_tree(workflow, raw_dir):
    workflow.run("--cores", "2", "--config", f"raw_dir={raw_dir}", "corpus=dr1", "datasets=[cc_moresco]")
    assert (workflow.root / "results" / "dr1" / "derived" / "cc_moresco.json").is_file()
    assert not (workflow.root / "results" / "real").exists()
    proc = cli(workflow.root, "verify", "--corpus", "dr1")
    assert proc.returncode == 0 and proc.stdout.startswith("corpus 'dr1': results in results/dr1/"), proc.stdout
    present = cli(workflow.root, "verify")  # not told a corpus: the trees present (dr1), not the empty default
    assert present.returncode == 0 and present.stdout.startswith("corpus 'dr1': results in results/dr1/"), present.stdout
    missing = cli(workflow.root, "verify", "--corpus", "mock")  # a tree without results: said, with the others
    assert missing.returncode == 1
    assert "no results yet; results exist for corpus 'dr1': pass --corpus NAME" in missing.stdout.splitlines()[0]
    bad = workflow.run("-n", "--config", "corpus=Bad/Name", check=False)
    assert bad.returncode != 0 and "corpus" in bad.stdout + bad.stderr and "Traceback" not in bad.stdout + bad.stderr


def test_prune_lists_then_removes_the_outputs_of_retired_datasets(project, raw_dir):
    path = project / "config" / "registry.yaml"
    registry = yaml.safe_load(path.read_text())
    del registry["datasets"]["bao_6dfgs"]
    path.write_text(yaml.safe_dump(registry, sort_keys=False))
    tree = project / "results" / "real"
    rebuilt = ("validation/summary", "plots/summary", "state/summary", "manifests/")  # the summary (its page and the
    # page's sums) and the manifest
    kept = {k: v for k, v in digest(tree).items() if "bao_6dfgs" not in k and not k.startswith(rebuilt)}
    dry = cli(project, "prune", "--raw-dir", str(raw_dir))
    assert dry.returncode == 0, dry.stderr
    listed = [line.strip() for line in dry.stdout.splitlines() if line.startswith("    ")]
    assert "results/real/derived/bao_6dfgs.json" in listed and "results/real/exports/bao_6dfgs.sacc.fits" in listed
    assert "results/real/plots/bao_6dfgs_observable.png" in listed and "results/real/state/bao_6dfgs.json" in listed
    assert any(p.startswith("results/real/derived/.versions/bao_6dfgs-") for p in listed)
    assert all("bao_6dfgs" in p for p in listed)  # nothing of another dataset (bao_boss_dr12 and _fs share a prefix)
    assert (tree / "derived" / "bao_6dfgs.json").exists()  # a dry run removes nothing
    applied = cli(project, "prune", "--apply", "--raw-dir", str(raw_dir))
    assert applied.returncode == 0 and "removed" in applied.stdout, applied.stdout + applied.stderr
    assert not [p for p in tree.rglob("*bao_6dfgs*") if "logs" not in p.relative_to(tree).parts]
    assert {k: v for k, v in digest(tree).items() if k in kept} == kept  # every other file byte-identical
    summary = json.loads((tree / "validation" / "summary.json").read_text())
    assert "bao_6dfgs" not in summary["datasets"] and len(summary["datasets"]) == N_REAL - 1
    verify = cli(project, "verify", "--raw-dir", str(raw_dir))
    assert verify.returncode == 0, verify.stdout
    again = cli(project, "prune", "--raw-dir", str(raw_dir))
    assert "nothing to prune" in again.stdout
