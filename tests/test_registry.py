"""Registry and config schemas: typos fail before any job, naming the key."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from pbuf_data import PbufDataError
from pbuf_data.read.registry import load_registry, resolve_raw_path
from pbuf_data.read.schema import load_schema, validate

PROJECT = Path(__file__).resolve().parents[1]


def _write(tmp_path, document, name="registry.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def real_document():
    return yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())


def test_registries_load_and_every_real_file_is_pinned(registry, mock_registry):
    assert sorted(registry) == sorted(
        ["sn_pantheon_plus", "sn_pantheon", "sn_des5yr", "bao_boss_dr12", "bao_boss_dr12_fs", "bao_desi_dr1", "bao_6dfgs",
         "bao_sdss_mgs", "cmb_planck2018", "cc_moresco", "rsd_fsigma8", "bao_boss_dr12_lya_auto",
         "bao_boss_dr12_lya_cross", "bao_boss_dr12_lya_comb", "bao_des_y3",
         "sn_union2", "sn_des5yr_statonly", "cc_hz_moresco2012_bc03", "cc_hz_moresco2012_mastro",
         "bao_mp_compilation_2014", "bao_boss_dr11_cmass_gauss"]
    )
    for name, entry in registry.items():
        for spec in entry["files"].values():
            assert len(spec["sha256"]) == 64, name
    assert all("mock" in e for e in mock_registry.values())


def test_pins_match_the_shared_files(registry, raw_dir):
    from pbuf_data.core.integrity import sha256_file

    for entry in registry.values():
        for spec in entry["files"].values():
            assert sha256_file(raw_dir / spec["path"]) == spec["sha256"], spec["path"]


def test_defaults_are_filled(registry):
    sn = registry["sn_pantheon_plus"]["options"]
    assert sn["columns"]["z"] == "zHD" and sn["selection"]["z_max"] is None
    assert registry["cc_moresco"]["options"]["systematics"] == ["IMF", "mod_ooo"]


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d["datasets"]["bao_boss_dr12"].update(optons={}), "datasets.bao_boss_dr12"),
        (lambda d: d["datasets"]["bao_boss_dr12"]["options"].update(rs_fidd=1), "datasets.bao_boss_dr12.options"),
        (lambda d: d["datasets"]["cc_moresco"].update(kind="cosmic"), "datasets.cc_moresco.kind"),
        (lambda d: d["datasets"]["cc_moresco"]["options"].update(systematics=["IMG"]), "datasets.cc_moresco.options.systematics.0"),
        (lambda d: d["datasets"]["bao_desi_dr1"]["files"]["mean"].update(sha256="xyz"), "datasets.bao_desi_dr1.files.mean.sha256"),
        (lambda d: d["datasets"]["bao_6dfgs"]["files"]["table"].update(path="../../etc/passwd"), "datasets.bao_6dfgs.files.table.path"),
        (lambda d: d["datasets"]["bao_6dfgs"]["files"]["table"].update(path="/etc/passwd"), "datasets.bao_6dfgs.files.table.path"),
        (lambda d: d["datasets"].update({"Bad Name": d["datasets"]["bao_6dfgs"]}), "datasets"),
        (lambda d: d["datasets"]["sn_pantheon_plus"].update(format="bao_table"), "datasets.sn_pantheon_plus"),
    ],
)
def test_schema_errors_name_the_key(tmp_path, real_document, mutate, key):
    document = copy.deepcopy(real_document)
    mutate(document)
    with pytest.raises(PbufDataError) as err:
        load_registry(_write(tmp_path, document))
    assert f"at '{key}" in str(err.value)


def test_duplicated_dataset_name_in_one_file_is_refused(tmp_path):
    text = (PROJECT / "config" / "registry.yaml").read_text()
    block = text[text.index("  bao_6dfgs:") : text.index("  bao_sdss_mgs:")]
    path = tmp_path / "dup.yaml"
    path.write_text(text + "\n" + block)
    with pytest.raises(PbufDataError, match="duplicated key 'bao_6dfgs'"):
        load_registry(path)


def test_duplicated_dataset_name_across_registries_is_refused(tmp_path, real_document):
    extra = _write(tmp_path, {"datasets": {"bao_6dfgs": real_document["datasets"]["bao_6dfgs"]}})
    with pytest.raises(PbufDataError, match="defined twice"):
        load_registry(PROJECT / "config" / "registry.yaml", extra)


def test_cross_field_rules(tmp_path, real_document):
    document = copy.deepcopy(real_document)
    del document["datasets"]["bao_boss_dr12"]["options"]["rs_fid"]
    with pytest.raises(PbufDataError, match="rs_fid"):
        load_registry(_write(tmp_path, document))
    del document["datasets"]["cc_moresco"]["files"]["systematics"]
    with pytest.raises(PbufDataError) as err:  # every entry's mistake, at once
        load_registry(_write(tmp_path, document))
    assert "2 registry errors" in str(err.value)
    assert "dataset 'bao_boss_dr12'" in str(err.value) and "dataset 'cc_moresco'" in str(err.value)


def test_a_validated_registry_is_kept_and_read_back_only_for_the_same_bytes_and_code(tmp_path, real_document, monkeypatch):
    import shutil

    import pbuf_data.read.registry as registry_module
    import pbuf_data.read.schema as schema_module

    cache = tmp_path / "cache"
    path = _write(tmp_path, real_document)
    fresh = load_registry(path)
    assert load_registry(path, cache=cache) == fresh and len(list(cache.glob("registry-*.json"))) == 1
    # read back without validating: the same result, key for key and in the same order
    validated = []
    monkeypatch.setattr(registry_module, "_load_registry", lambda paths, texts, samples: validated.append(paths) or fresh)
    again = load_registry(path, cache=cache)
    assert again == fresh and list(again) == list(fresh) and not validated
    monkeypatch.undo()
    # other bytes: validated again (and refused when wrong), never the kept copy
    document = copy.deepcopy(real_document)
    del document["datasets"]["bao_boss_dr12"]["options"]["rs_fid"]
    with pytest.raises(PbufDataError, match="rs_fid"):
        load_registry(_write(tmp_path, document, "changed.yaml"), cache=cache)
    # another schema (or code) is another key: the rule it adds is checked
    schemas = tmp_path / "schemas"
    shutil.copytree(schema_module.SCHEMA_DIR, schemas)
    monkeypatch.setattr(schema_module, "SCHEMA_DIR", schemas)
    schema = yaml.safe_load((schemas / "registry.schema.yaml").read_text())
    schema["properties"]["datasets"]["maxProperties"] = 1
    (schemas / "registry.schema.yaml").write_text(yaml.safe_dump(schema))
    with pytest.raises(PbufDataError, match="datasets"):
        load_registry(path, cache=cache)
    monkeypatch.undo()
    # a FIFO named as a registry is refused as before, not waited on to compute the name
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(PbufDataError, match="not a regular file"):
        load_registry(tmp_path / "fifo.yaml", cache=cache)
    # the package's code changed on disk since this process imported it: validated with the loaded code, nothing kept
    monkeypatch.setattr(registry_module, "_CODE_AT_IMPORT", ())
    validated.clear()
    monkeypatch.setattr(registry_module, "_load_registry", lambda paths, texts, samples: validated.append(paths) or fresh)
    assert load_registry(path, cache=cache) == fresh and validated
    monkeypatch.undo()
    # a damaged copy is not trusted: validated again and rewritten
    (kept,) = cache.glob("registry-*.json")
    kept.write_text('{"datasets": tru')
    assert load_registry(path, cache=cache) == fresh
    assert json.loads(kept.read_text()) == fresh
    # nor is a FIFO or a nesting bomb in its place: validated again, not waited on, no traceback
    kept.unlink()
    os.mkfifo(kept)
    assert load_registry(path, cache=cache) == fresh
    kept.unlink()
    kept.write_text("[" * 200_000 + "]" * 200_000)
    assert load_registry(path, cache=cache) == fresh


def test_the_workflow_and_the_cli_keep_the_validated_registry_beside_snakemakes_state(tmp_path):
    import shutil

    from pbuf_data.operate.project import Project, read_config

    shutil.copytree(PROJECT / "config", tmp_path / "config")
    project = Project(tmp_path, read_config(tmp_path))
    assert project.registry == load_registry(tmp_path / "config" / "registry_mock.yaml")
    (kept,) = (tmp_path / ".snakemake" / "pbuf-data").glob("registry-*.json")
    assert json.loads(kept.read_text()) == project.registry


def test_symlink_escape_is_refused(tmp_path):
    raw = tmp_path / "raw"
    (raw / "ds").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("x")
    (raw / "ds" / "file.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(PbufDataError, match="symlink escape"):
        resolve_raw_path(raw, "ds/file.txt", dataset="ds")


def test_config_schema_accepts_the_shipped_config_and_rejects_typos():
    schema = load_schema("config.schema.yaml")
    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    validate(copy.deepcopy(config), schema, what="config")
    bad = copy.deepcopy(config)
    bad["fiducial_cosmology"]["Omega_m"] = 1.5
    with pytest.raises(PbufDataError, match="fiducial_cosmology.Omega_m"):
        validate(bad, schema, what="config")
    bad = copy.deepcopy(config)
    bad["raw_dri"] = "x"
    with pytest.raises(PbufDataError, match="raw_dri"):
        validate(bad, schema, what="config")


def test_schema_errors_are_words_and_all_reported_at_once(tmp_path, real_document):
    """Three mistakes in three entries: one error lists the three, each at its key, in words (no regex)."""
    document = copy.deepcopy(real_document)
    document["datasets"]["bao_6dfgs"]["files"]["table"]["path"] = "../outside/6dfgs.txt"
    document["datasets"]["cc_moresco"]["kind"] = "cosmic"
    document["datasets"]["bao_boss_dr12"]["optons"] = {}
    with pytest.raises(PbufDataError) as err:
        load_registry(_write(tmp_path, document))
    message = str(err.value)
    assert "schema errors:" in message
    assert "at 'datasets.bao_6dfgs.files.table.path': path must stay inside the raw folder: '..'" in message
    assert "at 'datasets.cc_moresco.kind': 'cosmic' is not one of sn, bao, cmb, cc, rsd" in message
    assert "at 'datasets.bao_boss_dr12': unknown key 'optons' (did you mean 'options'?)" in message
    assert "^" not in message and "[A-Za-z" not in message  # no raw regular expression
    assert "Traceback" not in message


def test_kind_that_contradicts_the_format_is_explained(tmp_path, real_document):
    document = copy.deepcopy(real_document)
    document["datasets"]["cc_moresco"]["kind"] = "bao"
    with pytest.raises(PbufDataError, match="kind 'bao' does not go with format 'cc_hz_table', which is of kind 'cc'"):
        load_registry(_write(tmp_path, document))


# -- survey samples (config/samples.yaml) -------------------------------------------------------------------------


def test_every_shipped_entry_names_its_samples_from_the_vocabulary(registry, mock_registry):
    from pbuf_data.read.registry import load_samples

    samples = load_samples()
    for name, entry in {**registry, **mock_registry}.items():
        assert entry.get("samples") and set(entry["samples"]) <= set(samples), name
    # overlaps are symmetric once loaded, whichever side declares them
    assert "eboss_dr16_qso" in samples["eboss_dr14_qso"]["overlaps"] and "eboss_dr14_qso" in samples["eboss_dr16_qso"]["overlaps"]
    assert "desi_dr2_lrg" in samples["desi_dr1_lrg"]["overlaps"]


def test_every_point_lies_in_the_redshift_range_of_one_of_its_samples(registry, real):
    """The vocabulary's ranges and the entries' samples agree with the data: a point no sample of its entry covers
    is a sample left out (the Gold-2018 eBOSS quasars at z = 0.98-1.94 were)."""
    import numpy as np

    from pbuf_data.read.registry import load_samples

    samples = load_samples()
    for name, entry in registry.items():
        ranges = [(samples[s]["z_min"], samples[s]["z_max"]) for s in entry["samples"]]
        for z in real(name).z[np.isfinite(real(name).z)]:
            assert any(lo <= z <= hi for lo, hi in ranges), (name, z)
    gold = registry["rsd_fsigma8"]
    without_qso = [samples[s] for s in gold["samples"] if s != "eboss_dr14_qso"]
    assert not any(s["z_min"] <= 1.944 <= s["z_max"] for s in without_qso)


def test_a_misspelt_sample_is_refused_naming_the_entry_and_the_nearest_name(tmp_path, real_document):
    document = copy.deepcopy(real_document)
    document["datasets"]["rsd_fsigma8"]["samples"][-1] = "eboss_dr14_qs0"
    document["datasets"]["bao_boss_dr12"]["samples"] = ["boss_dr12_cmas"]
    with pytest.raises(PbufDataError) as info:
        load_registry(_write(tmp_path, document))
    message = str(info.value)
    assert "2 registry errors" in message
    assert ("dataset 'rsd_fsigma8' (check 'samples'): sample 'eboss_dr14_qs0' is not in config/samples.yaml "
            "(did you mean 'eboss_dr14_qso'") in message
    assert "dataset 'bao_boss_dr12'" in message and "did you mean 'boss_dr12_cmass'" in message


@pytest.mark.parametrize("supersedes, expected", [
    (["bao_desi_dr"], "supersedes 'bao_desi_dr', which the registry does not define (did you mean 'bao_desi_dr1'"),
    (["bao_boss_dr12_fs"], "supersedes a dataset that supersedes it (a cycle through bao_boss_dr12, bao_boss_dr12_fs)"),
    (["bao_boss_dr12"], "supersedes itself"),
])
def test_supersedes_names_other_datasets_of_the_registry(tmp_path, real_document, supersedes, expected):
    document = copy.deepcopy(real_document)
    document["datasets"]["bao_boss_dr12"]["supersedes"] = supersedes
    with pytest.raises(PbufDataError) as info:
        load_registry(_write(tmp_path, document))
    assert expected in str(info.value) and "dataset 'bao_boss_dr12'" in str(info.value)


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s["boss_dr12_cmass"].update(overlaps=["eboss_dr16_lgr"]), "'boss_dr12_cmass' overlaps 'eboss_dr16_lgr', which is not a sample (did you mean 'eboss_dr16_lrg'"),
    (lambda s: s["union2_sn"].update(z_min=2.0), "'union2_sn': z_min 2.0 is above z_max 1.4"),
    (lambda s: s["union2_sn"].pop("tracer"), "at 'samples.union2_sn': required key 'tracer' is missing"),
    (lambda s: s.update(Union3=s["union2_sn"]), "name 'Union3' should start with a lowercase letter"),
])
def test_the_samples_file_is_checked(tmp_path, mutate, expected):
    from pbuf_data.read.registry import SAMPLES_FILE, load_samples

    document = yaml.safe_load(SAMPLES_FILE.read_text())
    mutate(document["samples"])
    path = _write(tmp_path, document, "samples.yaml")
    with pytest.raises(PbufDataError) as info:
        load_samples(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_a_changed_samples_file_is_another_kept_registry(tmp_path, real_document, monkeypatch):
    import pbuf_data.read.registry as registry_module
    import pbuf_data.read.schema as schema_module

    cache, path = tmp_path / "cache", _write(tmp_path, real_document)
    load_registry(path, cache=cache)
    document = yaml.safe_load(registry_module.SAMPLES_FILE.read_text())
    del document["samples"]["cc_borghi2022"]
    monkeypatch.setattr(registry_module, "SAMPLES_FILE", _write(tmp_path, document, "samples.yaml"))
    with pytest.raises(PbufDataError, match="dataset 'cc_moresco' .*sample 'cc_borghi2022' is not in"):
        load_registry(path, cache=cache)
