"""Fit-ready outputs in the workflow: exports of every dataset, combinations, and refused double counting."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import sacc
import yaml

from conftest import Workflow
from pbuf_data import load_dataset

pytestmark = pytest.mark.workflow

COMBINATION = "combinations={bao_desi_boss: {datasets: [bao_desi_dr1, bao_boss_dr12]}}"


def test_real_run_exports_every_dataset_and_a_combination(project, raw_dir, registry):
    """The datasets' exports are those of the session's finished real-corpus run (a copy of conftest
    ``finished_run``); the combination is then added to that run's configuration, and the run that follows derives,
    validates, publishes and exports it from the published members."""
    workflow = Workflow(project)
    cfg = f"raw_dir={raw_dir}"
    proc = workflow.run("--cores", "2", "--config", cfg, COMBINATION, check=False)
    root = workflow.root
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (root / "results" / "real" / "validation" / "summary.txt").read_text()
    assert "bao_desi_boss                published              18 points" in summary
    joint, desi, boss = (load_dataset(n, root=root, verify=True) for n in ("bao_desi_boss", "bao_desi_dr1", "bao_boss_dr12"))
    np.testing.assert_array_equal(joint.observable, np.concatenate([desi.observable, boss.observable]))
    theory = joint.observable * 0.98
    assert joint.chi2(theory) == pytest.approx(desi.chi2(theory[:12]) + boss.chi2(theory[12:]), rel=1e-12)
    exports = root / "results" / "real" / "exports"
    for name in [*registry, "bao_desi_boss"]:
        block = yaml.safe_load((exports / f"{name}.cobaya.yaml").read_text())["likelihood"]
        assert block[f"pbuf_{name}"] == {"class": "pbuf_data.fit.cobaya.Dataset", "dataset": name, "root": "results/real"}
        back = sacc.Sacc.load_fits(str(exports / f"{name}.sacc.fits"))
        points = [d.value for d in back.data if d.data_type != "pbuf_lnL"]  # not the ln L nodes of a table
        assert np.array_equal(points, load_dataset(name, root=root).observable)
        receipt = json.loads((root / "results" / "real" / "state" / f"{name}.exports.json").read_text())
        assert f"results/real/exports/{name}.sacc.fits" in receipt["files"]
    # the exports are in the manifest (verify checks them) and a rerun does nothing
    manifest = (root / "results" / "real" / "manifests" / "derived.sha256").read_text()
    assert "results/real/exports/bao_desi_boss.bao_cov.txt" in manifest and "results/real/exports/sn_pantheon.lcparam.txt" in manifest
    assert workflow.jobs("--config", cfg, COMBINATION) == {}


def test_the_same_release_under_another_name_is_refused_before_any_job(workflow, raw_dir, registry):
    twin = copy.deepcopy(registry["bao_desi_dr1"])
    (workflow.root / "config" / "twin.yaml").write_text(yaml.safe_dump({"datasets": {"bao_desi_dr1_again": twin}}))
    proc = workflow.run("-n", "--config", f"raw_dir={raw_dir}", "extra_registries=[config/twin.yaml]",
                        "combinations={desi_twice: {datasets: [bao_desi_dr1, bao_desi_dr1_again]}}", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "combination 'desi_twice' would count one sample twice: 'bao_desi_dr1' and 'bao_desi_dr1_again'" in text
    assert "Traceback" not in text and not (workflow.root / "results").exists()
    # with a reason it runs, and the reason is recorded
    allowed = ("combinations={desi_twice: {datasets: [bao_desi_dr1, bao_desi_dr1_again], allow_overlap: "
               "[{pair: [bao_desi_dr1, bao_desi_dr1_again], reason: closure test}]}}")
    proc = workflow.run("--cores", "2", "--config", f"raw_dir={raw_dir}", "extra_registries=[config/twin.yaml]",
                        "datasets=[bao_desi_dr1, bao_desi_dr1_again]", allowed, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    joint = load_dataset("desi_twice", root=workflow.root)
    assert joint.provenance["allowed_overlaps"][0]["reason"] == "closure test"
