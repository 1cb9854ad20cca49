"""Tracebacks and hangs of the commands, each now one clear message: a table reduced to its header, a read-only
published folder, a config value of the wrong type, a list file that is not a text file, a FIFO among the
processing summaries, Snakemake's state folder read-only or full, an overlong id."""

import builtins
import copy
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_project
from pbuf_data import PbufDataError
from pbuf_data.model.dataset import Dataset, load_dataset
from pbuf_data.publish.publication import publish
from pbuf_data.read.derive import derive_dataset

PANTHEON = "sn_pantheon_plus/Pantheon+SH0ES.dat"


def _pbuf(root, *args, timeout=120):
    """``pbuf-data --root ROOT ARGS``, bounded in time (a hang fails the test instead of the suite)."""
    proc = subprocess.run([sys.executable, "-m", "pbuf_data", "--root", str(root), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def _unpinned(entry):
    entry = copy.deepcopy(entry)
    for spec in entry["files"].values():
        spec.pop("sha256", None)
        spec["allow_unpinned"] = True
    return entry


# -- tables --------------------------------------------------------------------------------------------------------

def test_an_sn_table_reduced_to_its_header_is_one_message(registry, raw_dir, tmp_path):
    table = tmp_path / PANTHEON
    table.parent.mkdir(parents=True)
    table.write_text((raw_dir / PANTHEON).read_text().split("\n", 1)[0] + "\n")
    with pytest.raises(PbufDataError) as err:
        derive_dataset("sn_pantheon_plus", _unpinned(registry["sn_pantheon_plus"]), tmp_path)
    assert str(err.value) == ("dataset 'sn_pantheon_plus' (file 'sn_pantheon_plus/Pantheon+SH0ES.dat', line 1, check "
                              "'non-empty'): the table has a header but no data rows")


def test_an_overlong_id_is_refused_at_its_own_row(registry, raw_dir, tmp_path):
    """Row 500 of Pantheon+ (line 501) given a 20,000-character CID: the message names line 501, not the point
    number the row would have had after the selection."""
    table = tmp_path / PANTHEON
    table.parent.mkdir(parents=True)
    lines = (raw_dir / PANTHEON).read_text().split("\n")
    cid, rest = lines[500].split(" ", 1)
    lines[500] = "C" * 20_000 + " " + rest
    table.write_text("\n".join(lines))
    with pytest.raises(PbufDataError, match=r"the id holds a string of 20000 characters \('CCCCCCCCCCCCCCCCCCCC'\.\.\.\); "
                                            r"per-point strings are limited to 64") as err:
        derive_dataset("sn_pantheon_plus", _unpinned(registry["sn_pantheon_plus"]), tmp_path)
    assert (err.value.line, err.value.column, err.value.check) == (501, "1 (CID)", "string length")


# -- a read-only published folder ------------------------------------------------------------------------------------

def _read_only(monkeypatch, folder: Path):
    """Every write, creation or removal below ``folder`` fails with EROFS, as on a read-only mount (the tests run
    as any user: root ignores permission bits)."""
    top = str(folder.resolve())

    def inside(path):
        return str(Path(os.fsdecode(path)).resolve()).startswith(top)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_mkstemp, real_open, real_unlink = tempfile.mkstemp, builtins.open, os.unlink

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and inside(dir):
            refuse(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def opened(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+") and inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def unlink(path, *args, **kwargs):
        if inside(path):
            refuse(path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(builtins, "open", opened)
    monkeypatch.setattr(os, "unlink", unlink)


def test_publishing_into_a_read_only_folder_is_one_message_and_changes_nothing(tmp_path, monkeypatch):
    z = np.array([0.1, 0.5])
    derived, staging = tmp_path / "tree" / "derived", tmp_path / "staging"
    staging.mkdir()
    for offset in (0.0, 1.0):
        Dataset(name="alpha", z=z, observable=z + offset, uncertainty=z, covariance=np.diag(z),
                observable_type=np.array(["H"] * 2)).save(staging / "alpha.npz", staging / "alpha.json")
        if offset == 0.0:
            publish(staging / "alpha.npz", staging / "alpha.json", derived)
    before = {p: p.read_bytes() for p in sorted(derived.rglob("*")) if p.is_file()}
    _read_only(monkeypatch, derived)
    with pytest.raises(PbufDataError, match="Read-only file system") as err:
        publish(staging / "alpha.npz", staging / "alpha.json", derived)
    assert err.value.check == "write"
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in sorted(derived.rglob("*")) if p.is_file()} == before
    np.testing.assert_array_equal(load_dataset("alpha", root=tmp_path / "tree").observable, z)


def test_a_disk_error_in_any_command_is_one_line(tmp_path, monkeypatch, capsys):
    """An OSError a command does not expect (e.g. restore's staging folder on a read-only tree): one line naming
    the file, no traceback."""
    from pbuf_data.operate import cli

    root = copy_project(tmp_path / "project").root

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(root / "results" / "mock" / ".restore-x"))

    monkeypatch.setattr(cli.Project, "open", read_only)
    assert cli.main(["--root", str(root), "restore"]) == 2  # could not run (README: exit codes)
    assert capsys.readouterr().err == f"ERROR: {root}/results/mock/.restore-x: Read-only file system\n"


# -- configuration and list files ----------------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "project").root


@pytest.mark.parametrize("command", [["verify"], ["backups"], ["restore"]])
def test_a_backup_dir_that_is_not_a_path_is_one_message(project, command):
    config = project / "config" / "config.yaml"
    text = config.read_text()
    assert "  dir: data/backups\n" in text
    config.write_text(text.replace("  dir: data/backups\n", "  dir: 123\n", 1))
    proc = _pbuf(project, *command)
    assert proc.returncode != 0
    assert "check 'backup.dir'): backup.dir 123 is not a folder path" in proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", ["missing", "folder", "binary", "fifo"])
def test_reprocess_from_a_file_that_is_not_a_list_is_one_message(project, tmp_path, kind):
    path = tmp_path / "names.txt"
    if kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"cc_moresco\n\x7fELF\x02\x01\x01\x00\x00")
    elif kind == "fifo":
        os.mkfifo(path)  # no writer: a blocking read would wait for ever
    expected = {"missing": "no such file", "folder": "is a directory, not a text file of names",
                "binary": "not UTF-8 text (a binary file?): byte 19 (NUL byte)",
                "fifo": "is a FIFO (named pipe), not a text file of names"}[kind]
    proc = _pbuf(project, "reprocess", "--from-file", str(path), timeout=60)
    assert proc.returncode != 0
    assert f"ERROR: pbuf_data (file '{path}', check 'list file'): {expected}" in proc.stderr


def test_a_fifo_among_the_processing_summaries_does_not_hang_trends(project):
    folder = project / "results" / "mock" / "logs" / "transformations"
    folder.mkdir(parents=True)
    good = {"dataset": "mock_cc_moresco", "status": "success", "processing_duration": 0.25, "peak_memory_mb": 70.0}
    (folder / "mock_cc_moresco_processing_summary_0.json").write_text(json.dumps(good))
    os.mkfifo(folder / "mock_cc_moresco_processing_summary_1.json")
    proc = _pbuf(project, "trends", "--corpus", "mock", timeout=60)
    assert proc.returncode == 0
    assert "mock_cc_moresco_processing_summary_1.json: unreadable: not a regular file" in proc.stderr
    assert proc.stderr.count("processing summary left out") == 1


# -- Snakemake's state folder ------------------------------------------------------------------------------------------

def _mount(*args) -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None and \
        subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.mark.workflow
def test_snakemake_state_that_cannot_be_written_is_one_line(project):
    (project / ".snakemake").write_text("a file where Snakemake keeps its folder\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n"], cwd=project, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    assert "(file '.snakemake', check 'write'): cannot write .snakemake/: File exists (Snakemake keeps its state " \
           "there: make it writable, or free space, and run again)" in proc.stdout + proc.stderr


@pytest.mark.workflow
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_a_read_only_or_full_snakemake_state_folder_is_one_line(project, fault):
    """On a real read-only bind mount or a full 1 MiB tmpfs (needs root; skipped otherwise)."""
    state = project / ".snakemake"
    state.mkdir()
    mounted = _mount("--bind", str(state), str(state)) and _mount("-o", "remount,bind,ro", str(state)) \
        if fault == "read-only" else _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(state))
    if not mounted:
        pytest.skip("mounting needs root")
    try:
        if fault == "full":
            with open(state / "filler", "wb") as fh:
                with pytest.raises(OSError):
                    fh.write(bytes(2 << 20))
                    fh.flush()
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=project, capture_output=True,
                              text=True, timeout=300)
    finally:
        subprocess.run(["umount", str(state)], capture_output=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    reason = "Read-only file system" if fault == "read-only" else "No space left on device"
    assert f"cannot write .snakemake/: {reason} (Snakemake keeps its state there" in proc.stdout + proc.stderr
