"""The covariance reader (textio.RawFile.counted_matrix): its values against numpy's and pandas' own readers, the
digest of the bytes it parsed against sha256sum, and the digests later steps trust (integrity.trusted_sha256)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import PROJECT
from pbuf_data.core import integrity
from pbuf_data.core.errors import PbufDataError
from pbuf_data.read import blockparse, textio
from pbuf_data.read.textio import RawFile


def sha256sum(path) -> str:
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


@pytest.fixture(scope="module")
def mock_covariance(mock_registry, tmp_path_factory):
    """The mock Pantheon+ covariance (1701 x 1701, the release's layout), written once."""
    from pbuf_data.read.mock import mock_files

    entry = mock_registry["mock_sn_pantheon_plus"]
    config = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    folder = tmp_path_factory.mktemp("cov")
    (folder / "sn").mkdir()
    path = folder / "sn" / "cov.txt"
    path.write_text(mock_files(entry, config["fiducial_cosmology"], entry["mock"]["seed"])["covariance"])
    return path


@pytest.fixture(scope="module")
def real_counted(raw_dir, tmp_path_factory):
    """A real release's covariance (Union2, 580 x 580, written row by row) in the counted layout: N, then the
    release's own number strings one per line, as written."""
    text = (raw_dir / "sn_union2" / "sn_covmat_nosys_union2.txt").read_text()
    tokens = text.split()
    n = int(round(len(tokens) ** 0.5))
    assert n * n == len(tokens)
    folder = tmp_path_factory.mktemp("real")
    (folder / "sn").mkdir()
    path = folder / "sn" / "cov.txt"
    path.write_text(f"{n}\n" + "\n".join(tokens) + "\n")
    return path, n


def _read(path, n, monkeypatch, *, streamed: bool, threads: int, block: int):
    """counted_matrix of ``path``, from memory or (streamed) read by its parse, in blocks of ``block`` bytes."""
    monkeypatch.setattr(textio, "BLOCK_BYTES", block)
    monkeypatch.setattr(blockparse, "parse_threads", lambda: threads)
    if streamed:
        monkeypatch.setattr(textio, "MAX_TEXT_BYTES", 16)
    raw = RawFile.read(path.parent.parent, f"{path.parent.name}/{path.name}", "x")
    assert (raw.data is None) == streamed
    return raw, raw.counted_matrix(n)


@pytest.mark.parametrize("streamed, threads, block", [(False, 1, 16 << 20), (True, 1, 65_536), (True, 2, 65_536),
                                                      (True, 3, 1_000_003)])
def test_mock_covariance_is_exactly_numpys_and_pandas(mock_covariance, monkeypatch, streamed, threads, block):
    """Every value bit for bit numpy.loadtxt's (correctly rounded, Python's float) and pandas' read_csv of the
    whole file, whatever the blocks (many block boundaries inside lines) and threads."""
    expected = np.loadtxt(mock_covariance, skiprows=1)
    n = int(round(expected.size ** 0.5))
    by_pandas = pd.read_csv(mock_covariance, header=None, skiprows=1, dtype=np.float64)[0].to_numpy()
    raw, values = _read(mock_covariance, n, monkeypatch, streamed=streamed, threads=threads, block=block)
    np.testing.assert_array_equal(values.ravel(), expected)
    np.testing.assert_array_equal(values.ravel(), by_pandas)
    assert raw.digest() == sha256sum(mock_covariance)
    assert raw.nbytes == mock_covariance.stat().st_size


@pytest.mark.parametrize("streamed, threads", [(False, 1), (True, 2)])
def test_real_release_numbers_are_read_exactly(real_counted, monkeypatch, streamed, threads):
    """The Union2 covariance's own number strings: the values of numpy.loadtxt of the release file itself."""
    path, n = real_counted
    _, values = _read(path, n, monkeypatch, streamed=streamed, threads=threads, block=50_001)
    expected = np.array([float(t) for t in path.read_text().split()[1:]]).reshape(n, n)
    np.testing.assert_array_equal(values, expected)


def _write(tmp_path, data: bytes):
    (tmp_path / "sn").mkdir(exist_ok=True)
    path = tmp_path / "sn" / "cov.txt"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "variant",
    ["crlf", "bom", "no final newline", "blank lines", "spaces around values", "form feed after a value"],
)
def test_layout_variants_read_the_same_values_and_hash_the_bytes_read(tmp_path, monkeypatch, variant):
    """Variants of the layout give the same values (pandas' reader for most, the line-by-line scan for a form
    feed, which pandas does not take); the digest is always that of the file's bytes (sha256sum)."""
    rng = np.random.default_rng(3)
    n = 40
    values = rng.standard_normal(n * n) * 10.0 ** rng.integers(-9, 3, n * n)
    lines = [repr(v) for v in values.tolist()]
    if variant == "spaces around values":
        lines = [f"  {t}\t " for t in lines]
    if variant == "form feed after a value":
        lines[777] += "\x0c"
    if variant == "blank lines":
        lines[100:100] = ["", "   "]
    text = f"{n}\n" + "\n".join(lines) + ("" if variant == "no final newline" else "\n")
    data = text.replace("\n", "\r\n").encode() if variant == "crlf" else text.encode()
    path = _write(tmp_path, (b"\xef\xbb\xbf" if variant == "bom" else b"") + data)
    raw, read = _read(path, n, monkeypatch, streamed=True, threads=2, block=4096)
    np.testing.assert_array_equal(read.ravel(), values)
    assert raw.digest() == sha256sum(path)


@pytest.mark.parametrize("token, message", [("1e400", "beyond the range of float64"), ("nan", "non-finite value"),
                                            ("1,5", "'1,5' is not a number"), ('"0.5"', "is not a number")])
def test_a_value_pandas_reads_differently_is_named_by_its_line(tmp_path, monkeypatch, token, message):
    lines = ["0.5"] * 16
    lines[9] = token
    path = _write(tmp_path, ("4\n" + "\n".join(lines) + "\n").encode())
    with pytest.raises(PbufDataError, match=rf"line 11, column 1[^)]*\): .*{message}"):
        _read(path, 4, monkeypatch, streamed=True, threads=2, block=16)


def test_later_steps_trust_the_digest_of_the_bytes_parsed_while_the_file_is_unchanged(mock_covariance, monkeypatch,
                                                                                       tmp_path):
    """After the parse, the file's digest is known without reading it again (the job's audit record asks for it);
    once the file changes, it is hashed again."""
    mine = _write(tmp_path, mock_covariance.read_bytes())
    raw, _ = _read(mine, 1701, monkeypatch, streamed=True, threads=2, block=1 << 20)
    hashed = []
    original = integrity._sha256_stream
    monkeypatch.setattr(integrity, "_sha256_stream", lambda fh: hashed.append(Path(fh.name)) or original(fh))
    assert integrity.trusted_sha256(mine) == raw.digest() == sha256sum(mine) and not hashed
    other = tmp_path / "other.txt"
    other.write_bytes(mine.read_bytes())
    assert integrity.trusted_sha256(other) == raw.digest() and hashed == [other]  # another file: hashed
    with open(mine, "r+b") as fh:  # the same file, changed: hashed again, its new digest
        fh.write(b"99")
    assert integrity.trusted_sha256(mine) == sha256sum(mine) != raw.digest()
    assert hashed[-1] == mine


@pytest.mark.parametrize("keep", [0, 1, 2, 3])
def test_a_block_stays_as_read_until_keep_more_are_taken_then_its_buffer_serves_again(tmp_path, keep):
    """rawio.BlockReader.blocks(size, keep): blocks of whole lines (lines longer than a block included) that
    together are the file's bytes; each unchanged while ``keep`` more are taken, its buffer then reused (memory of
    ``keep + 1`` blocks, whatever the file's size); the digest is sha256sum's."""
    from pbuf_data.read import rawio

    rng = np.random.default_rng(keep)
    lines = [b"x" * int(rng.integers(0, 200)) for _ in range(400)] + [b"y" * 1000]
    path = _write(tmp_path, b"\n".join(lines) + b"\nno final newline")
    raw = RawFile.read(tmp_path, "sn/cov.txt", "x")
    raw = RawFile(raw.path, raw.name, "x", None, size=path.stat().st_size, root=tmp_path)  # read from the file
    taken = []
    with rawio.BlockReader(raw, 1 << 20) as reader:
        for block in reader.blocks(300, keep):
            taken.append((block, bytes(block)))
            for view, copy in taken[-keep - 1:]:
                assert view == copy
    assert b"".join(copy for _, copy in taken) == path.read_bytes()
    assert all(copy.endswith(b"\n") for _, copy in taken[:-1])
    assert any(len(copy) > 1000 for _, copy in taken)  # the long line whole in one block
    buffers = {id(view.obj) for view, _ in taken}
    # keep + 1 in turn, a larger one for the line longer than two blocks, the unterminated end's own bytes
    assert len(buffers) <= keep + 3 < len(taken)
    assert raw.digest() == sha256sum(path)


def test_the_pinned_pandas_takes_block_after_block_in_one_reader():
    """The reused reader (blockparse._Reused, pandas' own parallel read_csv path) is there with the pinned pandas:
    an upgrade that removes it makes this fail (the public per-block read_csv, slower, would run instead)."""
    assert blockparse.reusable()


def test_a_reused_reader_gives_read_csvs_values_block_after_block():
    """One reader given block after block (values, blank lines, CRLF, spaces, a block of blank lines or an empty one
    before a good one, a block that fails in between) gives what pandas.read_csv of each block gives (the public
    path), and None where that fails."""
    rng = np.random.default_rng(5)
    values = (rng.standard_normal(3000) * 10.0 ** rng.integers(-300, 300, 3000)).tolist()
    good = [
        "".join(f"{v!r}\n" for v in values[:1000]).encode(),
        "".join(f"  {v:.17e}\r\n" for v in values[1000:2000]).encode(),
        b"\n\n",
        ("\n".join(f"{v:.6g}" for v in values[2000:]) + "\n\n").encode(),
        b"",
        b"1.5",
    ]
    bad = [b"1,2\n3\n", b"3\nx\n", b'"1"\n', b"1 2\n", b"\xff\n", b"1_000\n"]
    parse = blockparse._Parsers()
    assert parse.reuse
    try:
        for block in [good[0], bad[0], good[1], bad[1], good[2], good[5], bad[2], good[3], bad[3], good[4], good[1],
                      bad[4], good[5], bad[5], good[0]]:
            public = blockparse.parse_column(block)
            reused = parse(memoryview(block))
            if block in bad:
                assert public is None and reused is None, block
            else:
                assert public is not None and public.dtype == reused.dtype == np.float64
                np.testing.assert_array_equal(reused, public)
    finally:
        parse.close()
    np.testing.assert_array_equal(blockparse.parse_column(good[0]), values[:1000])


def test_without_the_reused_reader_the_public_read_csv_gives_the_same_matrix(mock_covariance, monkeypatch):
    """Where pandas lacks the reused reader, each block goes through pandas.read_csv: the same values."""
    expected = np.loadtxt(mock_covariance, skiprows=1)
    monkeypatch.setattr(blockparse, "reusable", lambda: False)
    _, values = _read(mock_covariance, 1701, monkeypatch, streamed=True, threads=2, block=65_536)
    np.testing.assert_array_equal(values.ravel(), expected)


@pytest.mark.parametrize("threads", [2, 3])
def test_blocks_waiting_for_a_slow_parser_are_not_overwritten(mock_covariance, monkeypatch, threads):
    """The reader reuses its buffers while blocks wait for the parser threads (blockparse.window): with every block's
    parse made slow, each still parses the bytes that were read into it (the line-by-line scan, which would
    mend a parse that went wrong, is not called)."""
    expected = np.loadtxt(mock_covariance, skiprows=1)
    call = blockparse._Parsers.__call__
    monkeypatch.setattr(RawFile, "_scan_values", lambda *args: pytest.fail("the parse of the blocks failed"))

    def slow(self, block):
        time.sleep(0.002)
        return call(self, block)

    monkeypatch.setattr(blockparse._Parsers, "__call__", slow)
    _, values = _read(mock_covariance, 1701, monkeypatch, streamed=True, threads=threads, block=65_536)
    np.testing.assert_array_equal(values.ravel(), expected)
