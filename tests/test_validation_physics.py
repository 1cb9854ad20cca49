"""Physics guards of validation: each observable type's worst pull against the configured fiducial cosmology.

Thresholds (config ``validation.pull_warn`` / ``pull_error``: 4 and 10) are set from the shipped corpus, whose worst
pull is 3.8 (a Pantheon+ SN), and from mislabelled entries, which sit at tens to hundreds of sigma.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import yaml

from pbuf_data.publish.validation import fiducial_pulls, validate_dataset
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import write_mock_file
from pbuf_data.read.registry import load_registry

from conftest import PROJECT

CONFIG = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
FIDUCIAL, THRESHOLDS = CONFIG["fiducial_cosmology"], CONFIG["validation"]
REGISTRY = load_registry(PROJECT / "config" / "registry.yaml")
MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")


def _checks(report, prefix="fiducial_pull"):
    return {c["name"]: c for c in report["checks"] if c["name"].startswith(prefix)}


def _derived(name, entry, raw, tmp_path):
    for spec in entry["files"].values():
        spec.setdefault("sha256", hashlib.sha256((raw / spec["path"]).read_bytes()).hexdigest())
    path = tmp_path / f"{name}.registry.yaml"
    path.write_text(yaml.safe_dump({"datasets": {name: entry}}))
    return derive_dataset(name, load_registry(path)[name], raw)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_shipped_real_dataset_passes_its_pull_checks(real, name):
    ds = real(name)
    report = validate_dataset(ds, expected_points=REGISTRY[name].get("expected_points"), thresholds=THRESHOLDS,
                              fiducial=FIDUCIAL)
    checks = _checks(report)
    assert set(checks) == {f"fiducial_pull[{t}]" for t in set(ds.observable_type.tolist())}
    assert all(c["verdict"] == "pass" for c in checks.values()), checks
    assert report["n_errors"] == 0


def test_every_mock_dataset_passes_its_pull_checks(tmp_path):
    for name, entry in MOCKS.items():
        for role, spec in entry["files"].items():
            write_mock_file(entry, role, tmp_path / spec["path"], FIDUCIAL, entry["mock"]["seed"])
        report = validate_dataset(derive_dataset(name, entry, raw_dir=tmp_path), thresholds=THRESHOLDS,
                                  fiducial=FIDUCIAL)
        assert report["n_errors"] == 0 and all(c["verdict"] == "pass" for c in _checks(report).values()), name


def _lya(tmp_path, observables):
    """An eBOSS DR16 Lya-like (D_M/r_d, D_H/r_d) grid at z = 2.334: D_M/r_d = 37.6 +/- 1.8, D_H/r_d = 8.93 +/- 0.3."""
    raw = tmp_path / "raw"
    (raw / "lya").mkdir(parents=True)
    x, y = np.linspace(30.0, 45.0, 61), np.linspace(6.0, 11.0, 51)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    d = np.stack([xx - 37.6, yy - 8.93], axis=-1)
    chi2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv([[3.4, -0.35], [-0.35, 0.09]]), d)
    rows = [f"{a:.6f} {b:.6f} {np.exp(-c / 2):.10e}" for a, b, c in zip(xx.ravel(), yy.ravel(), chi2.ravel())]
    (raw / "lya" / "grid.txt").write_text("# x y likelihood\n" + "\n".join(rows) + "\n")
    entry = copy.deepcopy(REGISTRY["bao_desi_dr1"])
    entry.pop("expected_points", None)
    entry.update(format="likelihood_table", files={"table": {"path": "lya/grid.txt"}},
                 options={"observables": observables, "z_eff": 2.334, "values": "likelihood"})
    return _derived("bao_lya", entry, raw, tmp_path)


def test_a_lya_grid_passes_and_with_its_axes_swapped_fails_naming_the_point(tmp_path):
    good = _lya(tmp_path / "good", ["DM_over_rd", "DH_over_rd"])
    assert validate_dataset(good, thresholds=THRESHOLDS, fiducial=FIDUCIAL)["n_errors"] == 0
    swapped = _lya(tmp_path / "swapped", ["DH_over_rd", "DM_over_rd"])
    # an independent pull: D_H/r_d = c / (H r_d) of the fiducial at z = 2.334 is about 8.6, the grid says 37.6
    from pbuf_data.model.cosmology import Fiducial

    fid = Fiducial.from_config(FIDUCIAL)
    expected = (37.6 - 299792.458 / fid.H(2.334) / fid.r_d) / swapped.uncertainty[0]
    assert fiducial_pulls(swapped, FIDUCIAL)[0] == pytest.approx(expected, rel=1e-3)
    report = validate_dataset(swapped, thresholds=THRESHOLDS, fiducial=FIDUCIAL)
    assert report["verdict"] == "failed"
    failed = {c["name"]: c for c in report["checks"] if c["verdict"] == "error"}
    assert set(failed) == {"fiducial_pull[DH_over_rd]", "fiducial_pull[DM_over_rd]"}
    message = failed["fiducial_pull[DH_over_rd]"]["message"]
    assert "point 0 (DH_over_rd at z = 2.334: 37.5999 +/- 1.84, fiducial 8.6" in message
    assert "sigma from the configured fiducial" in message
    assert failed["fiducial_pull[DH_over_rd]"]["value"]["pull"] > 15  # measured 15.7
    assert failed["fiducial_pull[DM_over_rd]"]["value"]["pull"] < -80  # D_M/r_d = 8.93 +/- 0.30 against 39


def test_an_alpha_scan_labelled_as_a_distance_fails(raw_dir, tmp_path):
    """The SDSS MGS chi2(alpha) file with its alpha grid (values ~ 1) published as D_V/r_d (~ 4.3 at z = 0.15)."""
    raw = tmp_path / "raw"
    (raw / "mgs").mkdir(parents=True)
    (raw / "mgs" / "prob.txt").write_bytes((raw_dir / "bao_sdss_mgs" / "sdss_MGS_prob.txt").read_bytes())
    entry = copy.deepcopy(REGISTRY["bao_sdss_mgs"])
    entry.pop("expected_points", None)
    entry.update(format="likelihood_table", files={"table": {"path": "mgs/prob.txt"}},
                 options={"observables": ["DV_over_rd"], "z_eff": 0.15, "values": "chi2",
                          "grid": {"min": 0.8005, "max": 1.1985}})
    ds = _derived("bao_mgs_alpha", entry, raw, tmp_path)
    assert 0.9 < ds.observable[0] < 1.1  # alpha, inside the range check's [0.1, 100]: only the pull sees it
    report = validate_dataset(ds, thresholds=THRESHOLDS, fiducial=FIDUCIAL)
    assert [c["name"] for c in report["checks"] if c["verdict"] == "error"] == ["fiducial_pull[DV_over_rd]"]
    # scaled by the fiducial D_V/r_d of the release (the registry's grid) it passes
    entry["options"]["grid"] = {"min": 0.8005 * 4.29720761315, "max": 1.1985 * 4.29720761315}
    scaled = _derived("bao_mgs_scaled", entry, raw, tmp_path)
    assert validate_dataset(scaled, thresholds=THRESHOLDS, fiducial=FIDUCIAL)["n_errors"] == 0


def test_a_point_between_the_thresholds_warns_and_publishes(real):
    from dataclasses import replace

    ds = real("bao_desi_dr1")
    moved = ds.observable.copy()
    moved[3] += 6 * ds.uncertainty[3] - fiducial_pulls(ds, FIDUCIAL)[3] * ds.uncertainty[3]  # 6 sigma from it
    report = validate_dataset(replace(ds, observable=moved), thresholds=THRESHOLDS, fiducial=FIDUCIAL)
    check = _checks(report)[f"fiducial_pull[{ds.observable_type[3]}]"]
    assert check["verdict"] == "warn" and check["value"]["point"] == 3
    assert check["value"]["pull"] == pytest.approx(6.0)
    assert report["n_errors"] == 0


@pytest.mark.workflow
def test_the_workflow_validates_against_the_configured_fiducial(finished_run):
    """The dataset jobs pass the configuration's fiducial_cosmology to validation: every report holds the pull checks."""
    import json

    for name in ("cmb_planck2018", "bao_desi_dr1", "sn_pantheon_plus"):
        report = json.loads((finished_run / "results" / "real" / "validation" / f"{name}.json").read_text())
        checks = _checks(report)
        assert checks and all(c["verdict"] == "pass" and c["threshold"] == [4.0, 10.0] for c in checks.values()), name


def test_the_four_parameter_cmb_marginal_is_checked_against_the_fiducial_n_s(raw_dir):
    entry = REGISTRY["cmb_planck2018"]
    four = {**entry, "expected_points": 4, "options": {**entry["options"], "covariance_from": "correlation",
                                                        "parameters": ["R", "l_A", "omega_b_h2", "n_s"]}}
    report = validate_dataset(derive_dataset("cmb", four, raw_dir), thresholds=THRESHOLDS, fiducial=FIDUCIAL)
    checks = _checks(report)
    assert set(checks) == {f"fiducial_pull[{t}]" for t in ("R", "l_A", "omega_b_h2", "n_s")}
    # Chen et al.'s n_s = 0.9649 +/- 0.0043 is the configured fiducial's n_s
    assert checks["fiducial_pull[n_s]"]["value"]["pull"] == pytest.approx((0.9649 - FIDUCIAL["n_s"]) / 0.0043)
    assert all(c["verdict"] == "pass" for c in checks.values())
