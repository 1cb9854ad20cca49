"""Hostile input: content swapped during a derivation, links, FIFOs and folders in place of files,
YAML bombs, absurd values, full or read-only disks. Every case ends in the derivation using only
the pinned bytes or in one clear PbufDataError; none in a traceback or a hang."""

import copy
import errno
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import PROJECT, cli, copy_project
from pbuf_data import PbufDataError
from pbuf_data.core import logs
from pbuf_data.core.integrity import verify_tree
from pbuf_data.core.layout import Tree
from pbuf_data.model import dataset as dataset_module
from pbuf_data.model.dataset import Dataset, load_dataset, read_dataset
from pbuf_data.operate.joblog import JobFailed, run_step
from pbuf_data.publish.validation import validate_dataset
from pbuf_data.read import registry as registry_module
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.formats import bao_mean_cov as bao_module
from pbuf_data.read.registry import load_registry, read_yaml
from pbuf_data.read.schema import load_schema, validate

DESI = "bao_desi_dr1"
DESI_MEAN = "bao_desi_dr1/desi_2024_gaussian_bao_ALL_GCcomb_mean.txt"
CC_TABLE = "cc_moresco/HzTable_MM_BC32.txt"


def _in_time(function, seconds=20):
    """Run ``function`` in a thread; fail (instead of hanging the suite) if it does not finish in time."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (hangs)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _same_data(a: Dataset, b: Dataset):
    for key in ("z", "observable", "uncertainty", "covariance"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.observable_type.tolist() == b.observable_type.tolist()


# -- pins bind content --------------------------------------------------------------------------------

def test_content_swapped_after_the_pin_check_is_not_parsed(registry, writable_raw, monkeypatch):
    """The file changes between the hash and the parse: the parse still sees the pinned bytes."""
    entry = registry[DESI]
    pristine = derive_dataset(DESI, entry, writable_raw)
    path = writable_raw / DESI_MEAN
    altered = path.read_text().replace("7.92512927", "8.92512927")
    original = bao_module.derive

    def swap_then_parse(options, files):
        path.write_text(altered)  # after the read and the pin check, before the parse
        return original(options, files)

    monkeypatch.setattr(bao_module, "derive", swap_then_parse)
    raced = derive_dataset(DESI, entry, writable_raw)
    _same_data(raced, pristine)
    assert raced.observable[0] == pytest.approx(7.92512927)  # the published DESI DR1 value of the file
    assert raced.provenance["raw_files"][0]["sha256"] == entry["files"]["mean"]["sha256"]
    with pytest.raises(PbufDataError, match="sha256 pin"):  # the altered file itself is refused
        derive_dataset(DESI, entry, writable_raw)


def _streamed(monkeypatch):
    """Files above 1 MiB are not kept in memory (as files above 64 MiB are): the mock SN covariance is one."""
    from pbuf_data.read import textio

    monkeypatch.setattr(textio, "MAX_TEXT_BYTES", 1 << 20)
    return textio


def test_a_covariance_not_kept_in_memory_is_parsed_from_the_bytes_it_hashed(sn_files, monkeypatch):
    """Above MAX_TEXT_BYTES the covariance is hashed without being kept, then read again and hashed again
    by the parse: the same dataset as from memory, with the file's sha256 (sha256sum) in its provenance."""
    folder, entry = sn_files
    in_memory = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    textio = _streamed(monkeypatch)
    relative = entry["files"]["covariance"]["path"]
    raw = textio.RawFile.read(folder, relative, "mock_sn_pantheon_plus")
    assert raw.data is None and raw.nbytes == (folder / relative).stat().st_size > 1 << 20
    streamed = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    _same_data(streamed, in_memory)
    expected = subprocess.run(["sha256sum", str(folder / relative)], capture_output=True, text=True).stdout.split()[0]
    records = {r["role"]: r for r in streamed.provenance["raw_files"]}
    assert records["covariance"]["sha256"] == expected and records["covariance"]["bytes"] == raw.nbytes


@pytest.mark.parametrize("change", ["value", "not a number"])
def test_a_covariance_not_kept_is_checked_against_its_pin_by_its_parse(sn_files, monkeypatch, change):
    """The file not kept in memory is read once, by its parse, which hashes the bytes it parses: a file changed
    since it was pinned is refused by its pin, and a line the changed bytes cannot parse is not reported as a
    problem of the pinned file (the pin error is)."""
    folder, entry = sn_files
    _streamed(monkeypatch)
    path = folder / entry["files"]["covariance"]["path"]
    entry = copy.deepcopy(entry)
    pinned = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True).stdout.split()[0]
    entry["files"]["covariance"]["sha256"] = pinned
    assert derive_dataset("mock_sn_pantheon_plus", entry, folder).provenance["raw_files"][1]["sha256"] == pinned
    lines = path.read_text().split("\n")
    lines[10] = "1.5e-03" if change == "value" else "oops!!!"
    path.write_text("\n".join(lines))
    changed = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True).stdout.split()[0]
    with pytest.raises(PbufDataError, match=rf"check 'sha256 pin'\): sha256 {changed} differs from the registry pin {pinned}"):
        derive_dataset("mock_sn_pantheon_plus", entry, folder)
    del entry["files"]["covariance"]["sha256"]  # unpinned (a mock): the changed file's own verdict
    if change == "value":
        assert derive_dataset("mock_sn_pantheon_plus", entry, folder).covariance is not None
    else:
        with pytest.raises(PbufDataError, match=r"line 11, column 1\): 'oops!!!' is not a number"):
            derive_dataset("mock_sn_pantheon_plus", entry, folder)


def test_bytes_appended_after_the_end_of_a_covariance_not_kept_are_not_parsed(sn_files, monkeypatch):
    """The file grows once its parse has opened it (its last value without a newline, so that an appended 'e300'
    would change it, not add one): the parse ends where the file ended when it was first opened."""
    folder, entry = sn_files
    path = folder / entry["files"]["covariance"]["path"]
    path.write_text(path.read_text().rstrip("\n"))
    pristine = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    _streamed(monkeypatch)
    from pbuf_data.read import rawio

    original, opened = rawio.open_confined, []

    def open_then_grow(root, relative):
        fd = original(root, relative)
        opened.append(relative)
        if relative == entry["files"]["covariance"]["path"] and opened.count(relative) == 2:  # the parse's open
            with open(path, "a") as f:
                f.write("e300\n")
        return fd

    monkeypatch.setattr(rawio, "open_confined", open_then_grow)
    streamed = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    assert opened.count(entry["files"]["covariance"]["path"]) == 2 and path.read_text().endswith("e300\n")
    _same_data(streamed, pristine)
    assert streamed.provenance["raw_files"][1]["sha256"] == pristine.provenance["raw_files"][1]["sha256"]


def test_a_read_error_of_a_covariance_not_kept_is_one_message(sn_files, monkeypatch):
    """An I/O error while the file is read again (a disk or network filesystem failing) names the dataset,
    the file and the check; no traceback."""
    folder, entry = sn_files
    textio = _streamed(monkeypatch)

    def failing_read(fd, buffers):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(textio.os, "readv", failing_read)
    relative = entry["files"]["covariance"]["path"]
    with pytest.raises(PbufDataError, match=re.escape(f"file '{relative}', check 'readable'): cannot read file: Input/output error")):
        derive_dataset("mock_sn_pantheon_plus", entry, folder)


def test_a_file_not_kept_is_never_read_line_by_line(tmp_path):
    """A file not kept in memory (above the limit when it was opened, whatever its size since) is refused by
    the line readers with the size-limit message, not a traceback."""
    from pbuf_data.read.textio import MAX_TEXT_BYTES, RawFile

    raw = RawFile(tmp_path / "d" / "t.txt", "d/t.txt", "x", None, "0" * 64, size=100, root=tmp_path)
    with pytest.raises(PbufDataError, match=f"files read line by line are limited to {MAX_TEXT_BYTES}"):
        raw.table(2)


def test_symlink_swapped_in_after_the_path_check_is_not_followed(registry, writable_raw, tmp_path, monkeypatch):
    outside = tmp_path / "outside.txt"
    outside.write_text((writable_raw / DESI_MEAN).read_text())  # same bytes: only the link may refuse it
    original = registry_module.resolve_raw_path

    def check_then_swap(root, relative, *, dataset):
        checked = original(root, relative, dataset=dataset)
        if relative == DESI_MEAN:
            checked.unlink()
            checked.symlink_to(outside)
        return checked

    monkeypatch.setattr(registry_module, "resolve_raw_path", check_then_swap)
    with pytest.raises(PbufDataError, match="symbolic link") as err:
        derive_dataset(DESI, registry[DESI], writable_raw)
    assert "check 'path confinement'" in str(err.value) and DESI_MEAN in str(err.value)


def test_folder_swapped_for_a_link_out_of_the_raw_folder_is_not_followed(registry, writable_raw, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    (writable_raw / "bao_desi_dr1").rename(elsewhere)
    (writable_raw / "bao_desi_dr1").mkdir()  # the check sees a plain folder ...
    for name in ("desi_2024_gaussian_bao_ALL_GCcomb_mean.txt", "desi_2024_gaussian_bao_ALL_GCcomb_cov.txt"):
        (writable_raw / "bao_desi_dr1" / name).write_bytes((elsewhere / name).read_bytes())
    original = registry_module.resolve_raw_path

    def check_then_swap(root, relative, *, dataset):
        checked = original(root, relative, dataset=dataset)
        folder = writable_raw / "bao_desi_dr1"
        if not folder.is_symlink():  # ... then a link to a folder outside takes its place
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
            folder.symlink_to(elsewhere, target_is_directory=True)
        return checked

    monkeypatch.setattr(registry_module, "resolve_raw_path", check_then_swap)
    with pytest.raises(PbufDataError, match="symbolic link"):
        derive_dataset(DESI, registry[DESI], writable_raw)


def test_a_concurrent_writer_never_gets_unpinned_content_derived(registry, writable_raw):
    """A writer flips the file between the pinned and an altered content while 150 derivations run:
    each either uses exactly the pinned content or fails on the pin."""
    entry = registry[DESI]
    pristine = derive_dataset(DESI, entry, writable_raw)
    path = writable_raw / DESI_MEAN
    good = path.read_bytes()
    bad = good.replace(b"7.92512927", b"9.92512927")
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            for content in (bad, good):
                with open(path, "r+b") as fh:  # in place, as an editor or a download would
                    fh.truncate(0)
                    fh.write(content)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    outcomes = {"derived": 0, "refused": 0}
    try:
        for _ in range(150):
            try:
                dataset = derive_dataset(DESI, entry, writable_raw)
            except PbufDataError as exc:
                assert "check 'sha256 pin'" in str(exc), str(exc)
                outcomes["refused"] += 1
            else:
                _same_data(dataset, pristine)
                assert dataset.provenance["raw_files"][0]["sha256"] == entry["files"]["mean"]["sha256"]
                outcomes["derived"] += 1
    finally:
        stop.set()
        thread.join()
    assert outcomes["refused"] > 0, outcomes  # the race really happened


# -- pins required for real entries ---------------------------------------------------------------------

def test_unpinned_real_file_is_refused_unless_allowed(registry, raw_dir):
    entry = copy.deepcopy(registry["bao_6dfgs"])
    del entry["files"]["table"]["sha256"]
    with pytest.raises(PbufDataError, match="no sha256 pin") as err:
        derive_dataset("bao_6dfgs", entry, raw_dir)
    pin = registry["bao_6dfgs"]["files"]["table"]["sha256"]
    assert pin in str(err.value)  # the message gives the value to pin
    entry["files"]["table"]["allow_unpinned"] = True
    dataset = derive_dataset("bao_6dfgs", entry, raw_dir)
    assert dataset.metadata["unpinned_raw_files"] == [entry["files"]["table"]["path"]]
    assert dataset.provenance["raw_files"][0]["pinned"] is False
    checks = {c["name"]: c["verdict"] for c in validate_dataset(dataset)["checks"]}
    assert checks["raw_files_pinned"] == "warn"
    pinned = derive_dataset("bao_6dfgs", registry["bao_6dfgs"], raw_dir)
    assert pinned.metadata["unpinned_raw_files"] == []
    assert "raw_files_pinned" not in {c["name"] for c in validate_dataset(pinned)["checks"]}


def test_allow_unpinned_must_be_a_boolean(tmp_path):
    document = yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())
    document["datasets"]["bao_6dfgs"]["files"]["table"]["allow_unpinned"] = "yes"
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PbufDataError, match="allow_unpinned"):
        load_registry(path)


# -- files that are not regular files -------------------------------------------------------------------

def test_fifo_as_raw_file_is_refused_without_hanging(registry, writable_raw):
    path = writable_raw / DESI_MEAN
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(PbufDataError, match="FIFO") as err:
        _in_time(lambda: derive_dataset(DESI, registry[DESI], writable_raw))
    assert "check 'regular file'" in str(err.value) and f"dataset '{DESI}'" in str(err.value)


def test_folder_as_raw_file_is_refused(registry, writable_raw):
    path = writable_raw / DESI_MEAN
    path.unlink()
    path.mkdir()
    with pytest.raises(PbufDataError, match="directory, not a regular file"):
        derive_dataset(DESI, registry[DESI], writable_raw)


@pytest.mark.parametrize("kind", ["fifo", "folder", "binary", "png"])
def test_non_text_registry_is_refused(tmp_path, kind):
    path = tmp_path / "registry.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(np.random.default_rng(1).bytes(2048))
    else:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(PbufDataError) as err:
        _in_time(lambda: load_registry(path))
    assert str(path) in str(err.value) and len(str(err.value)) < 400


def test_oversized_yaml_is_refused_unread(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("datasets: {}\n" + "# padding\n" * (registry_module.YAML_MAX_BYTES // 10 + 1))
    with pytest.raises(PbufDataError, match="larger than"):
        load_registry(path)


# -- YAML bounds ------------------------------------------------------------------------------------------

def _alias_bomb(levels=9, width=9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_fails_fast_with_a_short_message(tmp_path):
    text = _alias_bomb()
    assert 300 < len(text) < 700  # 9^9 = 387 million values once expanded
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(PbufDataError, match="alias") as err:
        load_registry(path)
    assert time.perf_counter() - start < 2.0
    assert len(str(err.value)) < 300


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("datasets: &d {x: *d}\n")
    with pytest.raises(PbufDataError, match="recursive alias"):
        load_registry(path)


def test_modest_aliases_still_load(tmp_path):
    """Anchors shared by a few entries are ordinary YAML and stay allowed."""
    document = (PROJECT / "config" / "registry.yaml").read_text()
    path = tmp_path / "registry.yaml"
    path.write_text(document.replace("    kind: bao\n", "    kind: &bao bao\n", 1).replace("    kind: bao\n", "    kind: *bao\n"))
    assert set(load_registry(path)) == set(load_registry(PROJECT / "config" / "registry.yaml"))


def test_duplicate_key_in_config_is_refused(tmp_path):
    text = (PROJECT / "config" / "config.yaml").read_text() + "retrieve: false\n"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(text)
    from pbuf_data.operate.project import read_config as load_config

    with pytest.raises(PbufDataError, match="duplicated key 'retrieve'") as err:
        load_config(tmp_path)
    assert f"line {text.count(chr(10))}" in str(err.value)


def test_error_messages_never_echo_a_huge_value(tmp_path):
    document = yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())
    document["datasets"]["bao_6dfgs"]["kind"] = "x" * 1_000_000
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PbufDataError, match="bao_6dfgs") as err:
        load_registry(path)
    assert len(str(err.value)) < 2500


@pytest.mark.parametrize("name", ["bao_x\n", "bao_x\n\n", "Bao", "bao x", "_bao"])
def test_dataset_name_pattern_is_anchored(tmp_path, name):
    document = yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())
    document["datasets"][name] = document["datasets"].pop("bao_6dfgs")
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PbufDataError, match="schema"):
        load_registry(path)
    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    config["datasets"] = [name]
    with pytest.raises(PbufDataError, match="datasets"):
        validate(config, load_schema("config.schema.yaml"), what="config")


def test_raw_path_with_a_final_newline_is_refused(tmp_path):
    document = yaml.safe_load((PROJECT / "config" / "registry.yaml").read_text())
    document["datasets"]["bao_6dfgs"]["files"]["table"]["path"] += "\n"
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PbufDataError, match="files.table.path"):
        load_registry(path)


# -- strict numbers, byte-order marks, line breaks ---------------------------------------------------------

@pytest.mark.parametrize("token", ["\u0661\u0669", "1_9", "\uff11\uff19", "\U0001d7d9\U0001d7e1"])
def test_numbers_are_ascii_only(registry, writable_raw, token):
    float(token)  # Python itself would take it: the strict reader is what refuses it
    entry = copy.deepcopy(registry["cc_moresco"])
    entry["files"]["table"]["allow_unpinned"] = True
    entry["files"]["table"].pop("sha256", None)
    path = writable_raw / CC_TABLE
    lines = path.read_text().split("\n")
    lines[3] = f"0.17 83 {token}"
    path.write_text("\n".join(lines))
    with pytest.raises(PbufDataError, match="is not a number") as err:
        derive_dataset("cc_moresco", entry, writable_raw)
    assert "line 4" in str(err.value) and "column 3" in str(err.value)


def test_byte_order_mark_is_not_part_of_the_data(registry, writable_raw):
    entry = copy.deepcopy(registry[DESI])
    entry["files"]["mean"]["allow_unpinned"] = True
    entry["files"]["mean"].pop("sha256")
    pristine = derive_dataset(DESI, registry[DESI], writable_raw)
    path = writable_raw / DESI_MEAN
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    _same_data(derive_dataset(DESI, entry, writable_raw), pristine)


@pytest.mark.parametrize("separator", ["\f", "\u2028", "\v", "\x1c", "\u0085"])
def test_only_newlines_end_lines(registry, writable_raw, separator):
    """str.splitlines() also breaks at these; the error must still name the true line."""
    entry = copy.deepcopy(registry["cc_moresco"])
    entry["files"]["table"]["allow_unpinned"] = True
    entry["files"]["table"].pop("sha256", None)
    path = writable_raw / CC_TABLE
    lines = path.read_text().split("\n")
    lines[1] = lines[1].replace(" ", separator, 1)  # a field separator inside line 2
    lines[5] = "0.199 75 abc"
    path.write_text("\n".join(lines))
    with pytest.raises(PbufDataError, match="'abc' is not a number") as err:
        derive_dataset("cc_moresco", entry, writable_raw)
    assert "line 6" in str(err.value), str(err.value)


def test_sn_covariance_size_line_is_strict(sn_files, tmp_path):
    folder, entry = sn_files
    cov = folder / entry["files"]["covariance"]["path"]
    text = cov.read_text()
    cov.write_text("1_701" + text[text.index("\n"):])
    with pytest.raises(PbufDataError, match="first line must be the matrix size N"):
        derive_dataset("mock_sn_pantheon_plus", entry, folder)
    cov.write_text(text)
    pristine = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    cov.write_text("\ufeff" + text)  # a byte-order mark before N is not an error
    _same_data(derive_dataset("mock_sn_pantheon_plus", entry, folder), pristine)


def test_sn_covariance_with_a_huge_n_is_refused_before_allocating(tmp_path):
    from pbuf_data.read.textio import RawFile

    (tmp_path / "sn").mkdir()
    (tmp_path / "sn" / "c.cov").write_text("300000\n0.1\n0.1\n")  # N = 300,000: 720 GB as a matrix
    raw = RawFile.read(tmp_path, "sn/c.cov", "sn")
    with pytest.raises(PbufDataError, match="expected N\\*N = 90000000000"):
        _in_time(lambda: raw.counted_matrix(300_000), seconds=5)


# -- absurd magnitudes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", ["1e150", "1e40", "5000"])
def test_absurd_uncertainty_fails_validation(registry, writable_raw, sigma):
    entry = copy.deepcopy(registry["cc_moresco"])
    entry["files"]["table"]["allow_unpinned"] = True
    entry["files"]["table"].pop("sha256", None)
    path = writable_raw / CC_TABLE
    path.write_text(path.read_text().replace("0.17 83 8\n", f"0.17 83 {sigma}\n"))
    report = validate_dataset(derive_dataset("cc_moresco", entry, writable_raw))
    assert report["verdict"] == "failed"
    failed = {c["name"]: c for c in report["checks"] if c["verdict"] == "error"}
    assert failed["uncertainty_range[H]"]["value"] == pytest.approx(float(sigma), rel=0.01)


# -- storage: diagonal covariances and per-point strings ----------------------------------------------------

def test_diagonal_covariance_is_stored_without_zeros(real, raw_dir, tmp_path):
    sn = real("sn_pantheon_plus")  # the registry gives no covariance file: diagonal
    npz, doc = tmp_path / "sn.npz", tmp_path / "sn.json"
    sn.save(npz, doc)
    with np.load(npz) as f:
        assert "covariance" not in f.files
        matrix = np.diag(f["covariance_diagonal"])  # what README tells plain np.load users
    table = np.genfromtxt(raw_dir / "sn_pantheon_plus" / "Pantheon+SH0ES.dat", names=True, dtype=None, encoding="utf-8")
    sigma = table["MU_SH0ES_ERR_DIAG"][table["zHD"] > 0.01]
    np.testing.assert_array_equal(matrix, np.diag(sigma**2))
    np.testing.assert_array_equal(read_dataset(npz, doc).covariance, np.diag(sigma**2))
    assert npz.stat().st_size < 1590**2 * 8 / 20  # the dense matrix alone would be 20 MB


def test_large_diagonal_dataset_never_asks_for_the_dense_matrix(tmp_path):
    n = 300_000  # what a 100 MB SN table gives: the dense diagonal would be 670 GiB
    rng = np.random.default_rng(0)
    variances = rng.uniform(0.01, 0.1, n)
    big = Dataset("big", rng.uniform(0.01, 2, n), rng.uniform(30, 45, n), np.sqrt(variances), variances, np.full(n, "mu"))
    npz = tmp_path / "big.npz"
    big.save(npz, tmp_path / "big.json")
    assert npz.stat().st_size < 6 * 8 * n
    with np.load(npz) as f:
        np.testing.assert_array_equal(f["covariance_diagonal"], variances)
    with pytest.raises(PbufDataError, match="GiB; use covariance_diagonal") as err:
        big.covariance
    assert "check 'covariance size'" in str(err.value)


def test_sn_derivation_without_covariance_builds_no_matrix(sn_files):
    folder, entry = sn_files
    entry = copy.deepcopy(entry)
    del entry["files"]["covariance"]
    sn = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    assert "covariance" not in vars(sn)  # only the variances are held
    np.testing.assert_array_equal(sn.covariance_diagonal, sn.uncertainty**2)


def test_a_20000_character_id_is_refused(sn_files):
    folder, entry = sn_files
    table = folder / entry["files"]["table"]["path"]
    lines = table.read_text().split("\n")
    lines[-2] = "x" * 20_000 + lines[-2][lines[-2].index(" "):]  # the last row: z = 2.2, selected
    table.write_text("\n".join(lines))
    with pytest.raises(PbufDataError, match="string of 20000 characters") as err:
        derive_dataset("mock_sn_pantheon_plus", entry, folder)
    # the row it is on (not the point number it would have had), and its column
    assert err.value.line == len(lines) - 1 and err.value.column == "1 (CID)" and len(str(err.value)) < 400


def test_ids_up_to_the_limit_keep_the_archive_small(sn_files, tmp_path):
    folder, entry = sn_files
    base = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    base.save(tmp_path / "a.npz", tmp_path / "a.json")
    table = folder / entry["files"]["table"]["path"]
    lines = table.read_text().split("\n")
    lines[-2] = "x" * dataset_module.MAX_STRING_CHARS + lines[-2][lines[-2].index(" "):]
    table.write_text("\n".join(lines))
    long = derive_dataset("mock_sn_pantheon_plus", entry, folder)
    long.save(tmp_path / "b.npz", tmp_path / "b.json")
    assert (tmp_path / "b.npz").stat().st_size < 1.05 * (tmp_path / "a.npz").stat().st_size


# -- parse memory ------------------------------------------------------------------------------------------

_MEASURE = """
import json, resource, sys
import numpy, pandas, scipy
from pbuf_data.read.derive import derive_dataset
entry = json.loads(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
derive_dataset("mock_sn_pantheon_plus", entry, sys.argv[2])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_sn_parse_memory_is_within_the_documented_multiple(sn_files):
    """Worst case of the covariance layout: two bytes a value. Peak memory <= 5 x file + 64 MiB (textio.py)."""
    folder, entry = sn_files
    cov = folder / entry["files"]["covariance"]["path"]
    n = 1701
    cov.write_text(f"{n}\n" + "".join("1\n" if i % (n + 1) == 0 else "0\n" for i in range(n * n)))
    size = cov.stat().st_size + (folder / entry["files"]["table"]["path"]).stat().st_size
    proc = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(entry), str(folder)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) <= 5 * size + (64 << 20), (int(proc.stdout), size)


_MEASURE_LINES = """
import resource, sys
import numpy
from pbuf_data.read.textio import RawFile
raw = RawFile.read(sys.argv[1], "d/one_per_line.txt", "x")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
raw.table(1)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_line_reader_memory_is_within_the_documented_multiple(tmp_path):
    """Worst case of the line-by-line readers: one short value per line. Peak <= 150 x file (textio.py)."""
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "one_per_line.txt"
    path.write_text("".join(f"{10 + i % 90}\n" for i in range(1_000_000)))
    proc = subprocess.run([sys.executable, "-c", _MEASURE_LINES, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) <= 150 * path.stat().st_size, (int(proc.stdout), path.stat().st_size)


def test_files_read_line_by_line_are_size_limited(tmp_path, monkeypatch):
    from pbuf_data.read import textio

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.txt").write_text("1 2\n" * 1000)
    monkeypatch.setattr(textio, "MAX_TEXT_BYTES", 3000)
    with pytest.raises(PbufDataError, match="files read line by line are limited to 3000"):
        textio.RawFile.read(tmp_path, "d/t.txt", "x").table(2)


# -- logs, summaries, manifests ------------------------------------------------------------------------------

def _job(tmp_path, monkeypatch, capsys, log_file=None):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JobFailed) as failed:
        run_step(log_file or tmp_path / "job.log", lambda: None, logs_dir=Path(Tree("real").logs), dataset="bao_6dfgs",
                 rule="derive_dataset")
    err = capsys.readouterr().err + str(failed.value)
    assert "Traceback" not in err
    return err


def test_full_disk_while_logging_fails_the_job_cleanly(tmp_path, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    err = _job(tmp_path, monkeypatch, capsys)
    assert "No space left on device" in err and "check 'logging'" in err and "dataset 'bao_6dfgs'" in err


def test_read_only_log_folder_fails_the_job_cleanly(tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(logs, "open", read_only, raising=False)
    err = _job(tmp_path, monkeypatch, capsys)
    assert "Read-only file system" in err and "results/real/logs" in err


def test_folder_in_place_of_the_job_log_fails_cleanly(tmp_path, monkeypatch, capsys):
    (tmp_path / "job.log").mkdir()
    err = _job(tmp_path, monkeypatch, capsys, tmp_path / "job.log")
    assert "cannot write the job log" in err


def test_malformed_processing_summaries_are_left_out(tmp_path):
    folder = tmp_path / "results" / "real" / "logs" / "transformations"
    folder.mkdir(parents=True)
    good = {"dataset": "bao_6dfgs", "status": "success", "processing_duration": 0.5, "peak_memory_mb": 80.0}
    bad = {
        "a": "not json {",
        "b": "[1, 2]",
        "c": json.dumps({"dataset": 7}),
        "d": json.dumps({**good, "processing_duration": "slow"}),
        "e": json.dumps({**good, "peak_memory_mb": 1e999}),
    }
    (folder / "bao_6dfgs_processing_summary_0.json").write_text(json.dumps(good))
    for key, text in bad.items():
        (folder / f"{key}_processing_summary_1.json").write_text(text)
    (folder / "f_processing_summary_1.json").mkdir()
    (folder / "g_processing_summary_1.json").write_bytes(b"\xff\xfe\x00")
    problems = []
    trends = logs.processing_trends(tmp_path / "results" / "real" / "logs", problems)
    assert trends == {"bao_6dfgs": {"runs": 1, "failures": 0, "mean_duration_s": 0.5, "max_duration_s": 0.5,
                                    "mean_peak_memory_mb": 80.0, "max_peak_memory_mb": 80.0}}
    assert len(problems) == 7
    root = copy_project(tmp_path / "project").root
    (root / "results" / "real").mkdir(parents=True)
    (tmp_path / "results" / "real" / "logs").rename(root / "results" / "real" / "logs")
    proc = cli(root, "trends", "--corpus", "real")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.count("processing summary left out") == 7


def test_manifest_that_is_a_folder_is_reported(tmp_path):
    root = copy_project(tmp_path / "project").root
    (root / "results" / "real" / "manifests" / "derived.sha256").mkdir(parents=True)
    report = verify_tree(root, Tree("real"))
    assert not report.ok and any("cannot read the manifest" in p for p in report.problems)
    proc = cli(root, "verify", "--corpus", "real")
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "cannot read the manifest" in proc.stdout


# -- shared fixture ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sn_texts(mock_registry):
    """The mock Pantheon+ table and covariance (1701 rows), generated once."""
    from pbuf_data.read.mock import mock_files

    entry = mock_registry["mock_sn_pantheon_plus"]
    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    return entry, mock_files(entry, config["fiducial_cosmology"], entry["mock"]["seed"])


@pytest.fixture
def sn_files(sn_texts, tmp_path):
    """The mock Pantheon+ files in a writable folder, with a private copy of the entry."""
    entry, texts = sn_texts
    folder = tmp_path / "snraw"
    for role, spec in entry["files"].items():
        (folder / spec["path"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / spec["path"]).write_text(texts[role])
    return folder, copy.deepcopy(entry)


@pytest.mark.workflow
@pytest.mark.parametrize("case", ["duplicate", "bomb", "fifo"])
def test_hostile_config_file_stops_the_workflow_with_one_message(workflow, case):
    config = workflow.root / "config" / "config.yaml"
    if case == "duplicate":
        config.write_text(config.read_text() + "raw_dir: elsewhere\n")
    elif case == "bomb":
        config.write_text(_alias_bomb())
    else:
        config.unlink()
        os.mkfifo(config)
    start = time.perf_counter()
    proc = workflow.run("-n", check=False, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in output
    assert "config/config.yaml" in output
    assert {"duplicate": "duplicated key 'raw_dir'", "bomb": "alias bomb", "fifo": "FIFO"}[case] in output
    assert time.perf_counter() - start < 60 and len(output) < 5000
