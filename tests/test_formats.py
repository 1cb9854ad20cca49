"""One format, one place: each registry format is one module of pbuf_data/read/formats plus its schema block.

The tests check it structurally (the schema's formats are the folder's modules, each implements the interface, no
other code names a format), that the staleness fingerprint follows a layout's own files, and, end to end, that a
layout added as a module and a schema block alone (in a copy of the package) derives, mocks, validates and plots.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from conftest import PROJECT
from pbuf_data.read import formats
from pbuf_data.read.derive import code_fingerprint
from pbuf_data.read.schema import load_schema

PACKAGE = PROJECT / "src" / "pbuf_data"
SCHEMA = load_schema("registry.schema.yaml")
FORMATS = SCHEMA["$defs"]["dataset"]["properties"]["format"]["enum"]


def _then_blocks() -> dict:
    """format -> the ``then`` of its ``allOf`` block in the registry schema."""
    return {rule["if"]["properties"]["format"]["const"]: rule["then"] for rule in SCHEMA["$defs"]["dataset"]["allOf"]}


def test_the_formats_of_the_schema_are_the_layout_modules():
    assert sorted(FORMATS) == formats.names()
    assert sorted(_then_blocks()) == sorted(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_layout_module_implements_the_interface(fmt):
    module = formats.layout(fmt)
    missing = [name for name in formats.INTERFACE if not hasattr(module, name)]
    assert not missing, f"formats/{fmt}.py lacks {missing}"
    for function in ("derive", "check_entry", "mock_files", "fiducial_prediction"):
        assert callable(getattr(module, function))
    assert module.FIGURE in formats.FIGURES
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in module.AXIS_LABELS.items())
    then = _then_blocks()[fmt]
    assert module.KIND == then["properties"]["kind"]["const"]  # the module and its schema block agree on the kind
    assert then["properties"]["options"] == {"$ref": f"#/$defs/options_{fmt}"}
    assert f"options_{fmt}" in SCHEMA["$defs"]


def _code_files():
    """Every file of code that could dispatch on a format: the package, the scripts, the rules, the Snakefile."""
    yield from PACKAGE.rglob("*.py")
    yield from (PROJECT / "scripts").glob("*.py")
    yield from (PROJECT / "rules").glob("*.smk")
    yield PROJECT / "Snakefile"


def test_no_module_but_its_own_names_a_format():
    offenders = []
    for path in _code_files():
        text = path.read_text()
        for fmt in FORMATS:
            if path == PACKAGE / "read" / "formats" / f"{fmt}.py":
                continue
            if re.search(rf"(?<![A-Za-z0-9_]){fmt}(?![A-Za-z0-9_])", text):
                offenders.append(f"{path.relative_to(PROJECT)} names '{fmt}'")
    assert not offenders, offenders


def test_the_finder_would_see_a_format_named_elsewhere(tmp_path):
    """The scan above can fail: a dispatch on a format name in another module is found."""
    planted = "if entry['format'] == \"cc_hz_table\":\n    pass\n"
    assert re.search(r"(?<![A-Za-z0-9_])cc_hz_table(?![A-Za-z0-9_])", planted)
    assert not re.search(r"(?<![A-Za-z0-9_])sn_table(?![A-Za-z0-9_])", "from ._mock import x; _release_sn_table = 1")


def test_every_observable_type_a_mock_derives_has_axis_text(mock_registry, tmp_path):
    """The layout's AXIS_LABELS cover the types its reader produces (for every mock of the embedded default)."""
    from pbuf_data.read.derive import derive_dataset
    from pbuf_data.read.mock import mock_files

    fiducial = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
    for name, entry in mock_registry.items():
        for role, text in mock_files(entry, fiducial, entry["mock"]["seed"]).items():
            if role in entry["files"]:
                path = tmp_path / entry["files"][role]["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode())
        dataset = derive_dataset(name, entry, tmp_path)
        labels = formats.layout(entry["format"]).AXIS_LABELS
        assert set(dataset.observable_type.tolist()) <= set(labels), (name, sorted(labels))


# -- staleness: the fingerprint follows each layout's own files ---------------------------------------------------


def _package_copy(tmp_path):
    copy = tmp_path / "pbuf_data"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _append(path, text="\n# a change\n"):
    path.write_text(path.read_text() + text)


def test_a_change_to_one_layout_module_changes_the_fingerprint_of_that_layout_only(tmp_path):
    copy = _package_copy(tmp_path)
    before = {fmt: code_fingerprint(fmt, copy) for fmt in FORMATS}
    assert before == {fmt: code_fingerprint(fmt) for fmt in FORMATS}  # the copy is the installed package
    assert len(set(before.values())) == len(FORMATS)  # one fingerprint per layout

    _append(copy / "read" / "formats" / "bao_table.py")
    after = {fmt: code_fingerprint(fmt, copy) for fmt in FORMATS}
    assert [fmt for fmt in FORMATS if after[fmt] != before[fmt]] == ["bao_table"]

    # a shared helper reruns exactly the layouts that import it
    _append(copy / "read" / "formats" / "_bao.py")
    again = {fmt: code_fingerprint(fmt, copy) for fmt in FORMATS}
    changed = sorted(fmt for fmt in FORMATS if again[fmt] != after[fmt])
    assert changed == sorted(fmt for fmt in FORMATS if "_bao.py" in [p.name for p in formats.source_files(fmt)])
    assert changed == ["bao_alpha_grid", "bao_alpha_table", "bao_correlated_pair", "bao_mean_cov", "bao_table", "bao_type_coded",
                       "likelihood_table"]

    # common code reruns everything
    _append(copy / "read" / "textio.py")
    assert all(code_fingerprint(fmt, copy) != again[fmt] for fmt in FORMATS)


def test_the_source_files_of_a_layout_are_its_module_and_the_helpers_it_imports():
    names = {fmt: [p.name for p in formats.source_files(fmt)] for fmt in FORMATS}
    assert names["cmb_distance_priors"] == ["_common.py", "_matrix.py", "_mock.py", "_table.py", "cmb_distance_priors.py"]
    assert names["rsd_fsigma8"] == ["_common.py", "_mock.py", "_table.py", "rsd_fsigma8.py"]
    for fmt in FORMATS:
        assert f"{fmt}.py" in names[fmt]
        assert not [n for n in names[fmt] if n != f"{fmt}.py" and not n.startswith("_")]  # no layout imports another


# -- a layout added as a module and a schema block, nothing else -------------------------------------------------

TOY_MODULE = '''
"""Toy layout: a CSV of z, H, sigma with a header line (test only)."""

import numpy as np

from ._common import Result, predict_by_type
from ._mock import lines
from ._table import read_columns

KIND = "cc"
FIGURE = "panels"
AXIS_LABELS = {"H": "H(z) [km/s/Mpc]"}


def check_entry(name, entry):
    pass


def derive(options, files):
    numbers, cols = read_columns(files["table"], {"delimiter": "comma", "header": "first_line",
                                                   "header_extra_names": 0}, options["columns"])
    return Result(z=cols["z"], observable=cols["value"], uncertainty=cols["sigma"],
                  covariance=cols["sigma"] ** 2, observable_type=np.full(len(numbers), "H"),
                  units={"H": "km/s/Mpc"})


def fiducial_prediction(dataset, fiducial):
    return predict_by_type(dataset, fiducial)


def mock_files(entry, fid, rng, roles=None):
    z = np.array([0.1, 0.4, 0.9, 1.5])
    h = fid.H(z) * (1 + 0.05 * rng.standard_normal(z.size))
    return {"table": lines(["redshift,hubble,err", *(f"{a:.2f},{b:.3f},{0.05 * b:.3f}" for a, b in zip(z, h))])}
'''

TOY_SCRIPT = '''
import json, sys
from pathlib import Path
import yaml
from pbuf_data.fit.plots import observable_figure
from pbuf_data.model.cosmology import Fiducial
from pbuf_data.publish.validation import validate_dataset
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import write_mock_file
from pbuf_data.read.registry import load_registry

root = Path(sys.argv[1])
entry = load_registry(root / "registry_toy.yaml")["mock_toy"]
fiducial = yaml.safe_load((root / "config" / "config.yaml").read_text())["fiducial_cosmology"]
write_mock_file(entry, "table", root / "raw" / entry["files"]["table"]["path"], fiducial, entry["mock"]["seed"])
ds = derive_dataset("mock_toy", entry, root / "raw")
report = validate_dataset(ds, expected_points=entry["expected_points"])
fig = observable_figure(ds, Fiducial.from_config(fiducial))
print(json.dumps({"z": ds.z.tolist(), "H": ds.observable.tolist(), "sigma": ds.uncertainty.tolist(),
                  "verdict": report["verdict"], "format": ds.metadata["format"],
                  "ylabels": [ax.get_ylabel() for ax in fig.axes]}))
'''


def test_a_layout_added_as_a_module_and_a_schema_block_alone_derives_mocks_validates_and_plots(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "config", root / "config")
    package = _package_copy(root / "src")
    (package / "read" / "formats" / "toy_hz_csv.py").write_text(textwrap.dedent(TOY_MODULE))
    # the schema block: the format in the enum, its allOf rule and its options
    schema = yaml.safe_load((package / "schemas" / "registry.schema.yaml").read_text())
    dataset = schema["$defs"]["dataset"]
    dataset["properties"]["format"]["enum"].append("toy_hz_csv")
    dataset["allOf"].append({"if": {"properties": {"format": {"const": "toy_hz_csv"}}},
                             "then": {"properties": {"kind": {"const": "cc"}, "files": {"required": ["table"]},
                                                     "options": {"$ref": "#/$defs/options_toy_hz_csv"}}}})
    schema["$defs"]["options_toy_hz_csv"] = {
        "type": "object", "additionalProperties": False, "required": ["columns"],
        "properties": {"columns": {"type": "object", "additionalProperties": False, "required": ["z", "value", "sigma"],
                                   "properties": {r: {"$ref": "#/$defs/column"} for r in ("z", "value", "sigma")}}},
    }
    (package / "schemas" / "registry.schema.yaml").write_text(yaml.safe_dump(schema, sort_keys=False))
    (root / "registry_toy.yaml").write_text(yaml.safe_dump({"datasets": {"mock_toy": {
        "kind": "cc", "format": "toy_hz_csv", "title": "toy", "citation": "none", "expected_points": 4,
        "files": {"table": {"path": "toy/hz.csv"}}, "mock": {"seed": 3},
        "options": {"columns": {"z": "redshift", "value": "hubble", "sigma": "err"}}}}}))
    (root / "run.py").write_text(TOY_SCRIPT)
    env = {"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(root / "run.py"), str(root)], capture_output=True, text=True, env=env,
                          cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # the values are the mock file's, parsed independently here
    text = (root / "raw" / "toy" / "hz.csv").read_text().splitlines()
    assert text[0] == "redshift,hubble,err"
    table = np.array([[float(v) for v in row.split(",")] for row in text[1:]])
    np.testing.assert_array_equal(result["z"], table[:, 0])
    np.testing.assert_array_equal(result["H"], table[:, 1])
    np.testing.assert_array_equal(result["sigma"], table[:, 2])
    assert result["format"] == "toy_hz_csv"
    assert result["verdict"] in ("passed", "passed with warnings")
    assert "H(z) [km/s/Mpc]" in result["ylabels"]  # the axis text came from the new module
