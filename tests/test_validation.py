"""The covariance checks of validation.py against numpy's exact spectrum and norms."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from pbuf_data.model import matrix as pbuf_matrix
from pbuf_data.model.dataset import Dataset
from pbuf_data.publish import validation
from pbuf_data.publish.validation import (
    EXACT_CONDITION_BELOW,
    PARALLEL_FROM_BYTES,
    cholesky_factor,
    condition_number,
    threads_for,
    validate_dataset,
)


def with_spectrum(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    """Q diag(eigenvalues) Q^T with a random orthogonal Q."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((eigenvalues.size, eigenvalues.size)))
    matrix = (q * eigenvalues) @ q.T
    return 0.5 * (matrix + matrix.T)


def sn_like(n: int, seed: int) -> np.ndarray:
    """Pantheon+-like: measurement errors, scatter shared by repeated light curves, a smooth systematic."""
    rng = np.random.default_rng(seed)
    sn = np.sort(rng.integers(0, int(n / 1.1), n))
    smooth = 0.02 * np.linspace(0.0, 1.0, n)
    return np.diag((0.08 + 0.1 * rng.uniform(size=n)) ** 2) + 0.01 * (sn[:, None] == sn[None, :]) + np.outer(smooth, smooth)


CASES = {
    "sn_like_800": lambda: sn_like(800, 1),
    "sn_like_1500": lambda: sn_like(1500, 2),
    "log_spectrum_cond_1e8": lambda: with_spectrum(np.logspace(-8, 0, 700), 3),
    # the smallest eigenvalues in a tight cluster (the hard case for Lanczos on C^-1)
    "clustered_minimum": lambda: with_spectrum(np.concatenate([1e-4 * (1 + 1e-3 * np.arange(300)), np.linspace(0.5, 2, 400)]), 4),
}


def exact_one_norm_condition(matrix: np.ndarray) -> float:
    """||C||_1 ||C^-1||_1 from the explicit inverse (numpy), written out here."""
    inverse = np.linalg.inv(matrix)
    return float(np.abs(matrix).sum(axis=0).max() * np.abs(inverse).sum(axis=0).max())


@pytest.mark.parametrize("case", sorted(CASES))
def test_condition_number_is_within_a_factor_of_the_exact_one_norm_condition(case):
    """LAPACK's estimate from the Cholesky factor: a lower bound of ||C^-1||_1 (up to rounding), within a factor
    of 3 of it; on matrices built here, the exact value from the explicit inverse."""
    matrix = CASES[case]()
    exact = exact_one_norm_condition(matrix)
    assert exact == pytest.approx(np.linalg.cond(matrix, 1), rel=1e-6)
    estimate = condition_number(matrix, np.linalg.cholesky(matrix))
    assert exact / 3 <= estimate <= exact * (1 + 1e-6), (estimate, exact)


@pytest.mark.parametrize("n", [499, 1323])
def test_condition_number_reads_the_factor_in_either_order(n):
    """The lower factor as numpy gives it (C order) or as a Fortran-order array (cholesky_factor from 500 rows):
    the same estimate; the covariance's 1-norm summed by slices of rows is numpy's."""
    matrix = sn_like(n, 11)
    factor = np.linalg.cholesky(matrix)
    assert validation.one_norm(matrix) == pytest.approx(np.linalg.norm(matrix, 1), rel=1e-13)
    assert condition_number(matrix, np.asfortranarray(factor)) == pytest.approx(condition_number(matrix, factor), rel=1e-12)
    assert condition_number(matrix, cholesky_factor(matrix)) == pytest.approx(exact_one_norm_condition(matrix), rel=2 / 3)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_one_scan_gives_numpys_extremes_and_one_norm(monkeypatch, threads):
    """matrix.scan, by slices of rows shared among the job's threads: numpy's min, max and 1-norm, whatever the
    shape; a NaN anywhere (a slice's first row, the middle, the last entry) makes both extremes NaN, an infinity
    the extreme it is."""
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    monkeypatch.setattr(pbuf_matrix, "SCAN_BYTES", 4096)  # 5 rows of 100 a slice
    rng = np.random.default_rng(int(threads))
    for shape in [(1000, 100), (7, 100), (1, 1), (333, 333)]:
        matrix = rng.standard_normal(shape) * 10.0 ** rng.integers(-5, 5, shape)
        low, high, norm = pbuf_matrix.scan(matrix)
        assert (low, high) == (matrix.min(), matrix.max())
        assert norm == pytest.approx(np.linalg.norm(matrix, 1), rel=1e-13)
    for where in [(5, 0), (500, 50), (999, 99)]:
        broken = rng.standard_normal((1000, 100))
        broken[where] = np.nan
        assert all(np.isnan(pbuf_matrix.scan(broken)[:2]))
        broken[where] = -np.inf
        assert pbuf_matrix.scan(broken)[0] == -np.inf and np.isfinite(pbuf_matrix.scan(broken)[1])


@pytest.mark.parametrize("n", [EXACT_CONDITION_BELOW - 1, EXACT_CONDITION_BELOW + 200])
def test_the_cholesky_factor_is_numpys_from_the_lower_triangle(n):
    """Both paths (numpy below EXACT_CONDITION_BELOW, LAPACK on the transposed buffer above) give
    numpy.linalg.cholesky's factor, read from the lower triangle only, and refuse a matrix that is not
    positive definite."""
    matrix = sn_like(n, 7)
    lower_only = np.tril(matrix) + np.triu(np.full_like(matrix, 1e3), 1)  # the upper triangle is ignored
    factor = cholesky_factor(lower_only)
    np.testing.assert_allclose(factor, np.linalg.cholesky(matrix), rtol=1e-10, atol=1e-12 * np.abs(factor).max())
    np.testing.assert_array_equal(np.triu(factor, 1), 0.0)
    not_positive = matrix.copy()
    not_positive[n // 2, n // 2] = -1.0
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_factor(not_positive)


def test_condition_number_is_reproducible():
    matrix = sn_like(900, 5)
    factor = np.linalg.cholesky(matrix)
    assert condition_number(matrix, factor) == condition_number(matrix, factor)


def test_small_matrices_condition_number():
    matrix = with_spectrum(np.array([1.0, 2.0, 50.0]), 6)
    assert condition_number(matrix, np.linalg.cholesky(matrix)) == pytest.approx(exact_one_norm_condition(matrix), rel=1e-9)
    assert condition_number(np.diag([2.0, 8.0]), np.diag([2.0, 8.0]) ** 0.5) == pytest.approx(4.0, rel=1e-14)


def dataset_with(covariance: np.ndarray) -> Dataset:
    n = covariance.shape[0]
    return Dataset(
        name="synthetic", z=np.linspace(0.01, 2.0, n), observable=np.full(n, 40.0), uncertainty=np.sqrt(np.diag(covariance)),
        covariance=covariance, observable_type=np.full(n, "mu"), metadata={"kind": "sn"},
    )


@pytest.mark.parametrize(
    "top, verdict",
    # 2-norm condition numbers; the 1-norm one is 1 to 600 times it: against the default thresholds 1e10 / 1e14
    [(1e6, "pass"), (1e11, "warn"), (1e15, "error")],
)
def test_condition_check_verdicts(top, verdict):
    spectrum = np.logspace(0, np.log10(top), 600) * 1e-4
    matrix = with_spectrum(spectrum, 7)
    exact = exact_one_norm_condition(matrix)
    report = validate_dataset(dataset_with(matrix))
    check = next(c for c in report["checks"] if c["name"] == "covariance_condition_number")
    assert check["verdict"] == verdict
    assert exact / 3 <= check["value"] <= exact * 1.01  # the inverse itself carries cond * eps at 1e15


def test_not_positive_definite_is_an_error_without_a_condition_number():
    spectrum = np.concatenate([[-1e-6], np.linspace(1.0, 2.0, 599)])
    report = validate_dataset(dataset_with(with_spectrum(spectrum, 8) + 0.0))
    names = {c["name"]: c["verdict"] for c in report["checks"]}
    assert names["covariance_positive_definite"] == "error" and "covariance_condition_number" not in names
    assert report["verdict"] == "failed"


def test_symmetry_check_measures_the_largest_asymmetry():
    matrix = sn_like(700, 9)
    matrix[650, 3] += 2e-9  # one entry off by 2e-9 among 700^2, beyond the first block of rows
    report = validate_dataset(dataset_with(matrix))
    check = next(c for c in report["checks"] if c["name"] == "covariance_symmetric")
    assert check["value"] == pytest.approx(np.max(np.abs(matrix - matrix.T)) / np.max(np.abs(matrix)), rel=1e-12)
    assert check["verdict"] == "error"


@pytest.mark.parametrize("n, threads", [(1000, "1"), (1000, "2"), (1000, "3"), (200, "2"), (0, "2")])
def test_symmetry_by_blocks_on_threads_is_numpys(monkeypatch, n, threads):
    """matrix.max_abs_asymmetry and symmetrize, by blocks of rows on the job's threads, give numpy's
    max |C - C^T| and (C + C^T) / 2 of the whole matrix, bit for bit."""
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    matrix = np.random.default_rng(n).standard_normal((n, n))
    assert pbuf_matrix.max_abs_asymmetry(matrix) == (np.max(np.abs(matrix - matrix.T)) if n else 0.0)
    expected = (matrix + matrix.T) / 2
    pbuf_matrix.symmetrize(matrix)
    np.testing.assert_array_equal(matrix, expected)
    for where in [(0, 1), (n - 1, n // 2)] if n else []:  # a NaN anywhere: NaN, as numpy's
        broken = np.random.default_rng(n).standard_normal((n, n))
        broken[where] = np.nan
        assert np.isnan(pbuf_matrix.max_abs_asymmetry(broken)) and np.isnan(np.max(np.abs(broken - broken.T)))


@pytest.mark.parametrize("n, workers", [(1000, 1), (1000, 2), (1000, 3), (129, 2), (640, 2)])
def test_the_blocked_factor_is_numpys(monkeypatch, n, workers):
    """matrix.cholesky_lower, cut here into blocks of 64 columns and tasks of 48 rows (sizes that do not divide
    n), gives numpy.linalg.cholesky's factor, reading the lower triangle only and leaving C unchanged."""
    monkeypatch.setattr(pbuf_matrix, "BLOCK_COLUMNS", 64)
    monkeypatch.setattr(pbuf_matrix, "TASK_ROWS", 48)
    matrix = sn_like(n, 11)
    lower_only = np.tril(matrix) + np.triu(np.full_like(matrix, 1e3), 1)
    given = lower_only.copy()
    factor = pbuf_matrix.cholesky_lower(lower_only, workers)
    np.testing.assert_allclose(factor, np.linalg.cholesky(matrix), rtol=1e-10, atol=1e-12 * np.abs(factor).max())
    np.testing.assert_array_equal(np.triu(factor, 1), 0.0)
    np.testing.assert_array_equal(lower_only, given)


@pytest.mark.parametrize("broken", [5, 64, 700, 999])
def test_the_blocked_factor_refuses_a_matrix_that_is_not_positive_definite(monkeypatch, broken):
    """Wherever the first leading minor that is not positive lies (first block, a block's first row, the
    last row), LinAlgError names its order, as LAPACK's potrf counts it."""
    monkeypatch.setattr(pbuf_matrix, "BLOCK_COLUMNS", 64)
    monkeypatch.setattr(pbuf_matrix, "TASK_ROWS", 48)
    matrix = sn_like(1000, 12)
    matrix[broken, broken] = -1.0
    with pytest.raises(np.linalg.LinAlgError, match=f"order {broken + 1} "):
        pbuf_matrix.cholesky_lower(matrix, 2)


def test_a_large_covariance_is_factored_on_the_given_threads(monkeypatch):
    """From BLOCKED_FROM rows on with two workers cholesky_factor is the blocked factor on two threads; with one
    worker or fewer rows, LAPACK's on one thread. All are numpy's factor. (BLOCKED_FROM lowered to 700 here.)"""
    monkeypatch.setattr(validation, "BLOCKED_FROM", 700)
    used = []
    blocked = pbuf_matrix.cholesky_lower
    monkeypatch.setattr(validation, "cholesky_lower",
                        lambda c, workers, **kw: used.append((len(c), workers)) or blocked(c, workers, **kw))
    for n, workers in ((700, 2), (700, 1), (699, 2)):
        matrix = sn_like(n, 13)
        expected = np.linalg.cholesky(matrix)
        np.testing.assert_allclose(cholesky_factor(matrix, workers), expected, rtol=1e-10, atol=1e-12 * expected.max())
        # with overwrite, the same factor in the matrix's own buffer (no second N x N array)
        factor = cholesky_factor(matrix, workers, overwrite=True)
        assert np.shares_memory(factor, matrix)
        np.testing.assert_allclose(factor, expected, rtol=1e-10, atol=1e-12 * expected.max())
    assert used == [(700, 2), (700, 2)]


def test_validation_with_the_factor_in_place_reports_the_same(monkeypatch):
    """validate_dataset(factor_in_place=True) (a job's validation) gives the report of a validation that keeps
    the covariance, on both factor paths: the checks that read C after its factorization (the diagonal against
    the errors, the published sigmas) read what C held, not its factor."""
    monkeypatch.setattr(validation, "BLOCKED_FROM", 700)
    for n, threads in ((700, "2"), (650, "1")):
        monkeypatch.setattr(validation, "blas_threads", lambda threads=threads: int(threads))
        original = sn_like(n, 5)
        matrix = original.copy()
        matrix[3, 3] *= 1.2  # sqrt(C_33) 10 % off its error: the diagonal check warns
        kept = validate_dataset(replace(dataset_with(original), covariance=matrix.copy()))
        dataset = replace(dataset_with(original), covariance=matrix.copy())
        in_place = validate_dataset(dataset, factor_in_place=True)
        assert not np.array_equal(dataset.covariance, matrix)  # the buffer now holds the factor
        # the same report; the condition number's estimate to rounding (LAPACK on another buffer's alignment)
        condition = [[c.pop("value") for c in report["checks"] if c["name"] == "covariance_condition_number"]
                     for report in (in_place, kept)]
        assert condition[0] == pytest.approx(condition[1], rel=1e-12)
        assert in_place == kept
        checks = {c["name"]: c for c in kept["checks"]}
        assert checks["diag_covariance_vs_uncertainty"]["verdict"] == "warn"
        assert condition[1][0] == pytest.approx(exact_one_norm_condition(matrix), rel=2 / 3)


@pytest.mark.parametrize("points, workers", [(None, 2), (1200, 2), (700, 1)],
                         ids=["real BAO", "1200 points, blocks in place", "700 points, potrf in place"])
def test_a_jobs_validation_in_memory_reports_what_its_staged_files_read_back_do(points, workers, registry, raw_dir,
                                                                                 real, tmp_path, monkeypatch):
    """A dataset's job (steps.prepare) validates the dataset as derived, in memory, while a thread writes its staged
    pair, and then factors its covariance in its own buffer. For a real BAO release (12 points: its factor is a
    copy) and for dense SN-like covariances factored in place (by blocks on two threads; by LAPACK's potrf) with a
    writer made slow and a slow disk: the factor overwrites the derived covariance's buffer only after the writer has
    written the archive's bytes, but without waiting for the disk (its fsync); the staged archive holds the derived
    values, not the factor; its sha256 (hashlib) is the one its document records and the published archive's; and
    the report the job wrote is that of the staged pair read back from disk and validated keeping its
    covariance. The staging thread then makes the copy publication puts in place of <name>.npz, which publication
    takes: no temporary file is left."""
    from pbuf_data.core.layout import Tree
    from pbuf_data.model import dataset as dataset_module
    from pbuf_data.model.dataset import read_dataset
    from pbuf_data.operate import steps
    from pbuf_data.publish import publication
    from pbuf_data.read import derive as derive_module

    config = yaml.safe_load((Path(__file__).parent.parent / "config" / "config.yaml").read_text())
    thresholds, fiducial = config["validation"], config["fiducial_cosmology"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(validation, "BLOCKED_FROM", 1000)
    monkeypatch.setattr(validation, "blas_threads", lambda: workers)
    write_npz = dataset_module.write_npz

    events, made = [], []

    def slow_writer(fh, arrays):
        time.sleep(0.5)
        write_npz(fh, arrays)
        events.append(("written", time.perf_counter()))

    fsync, written_copies, write_copy = os.fsync, [], publication._write_copy

    def watched_copy(plain, *args, **kwargs):
        written_copies.append(threading.current_thread().name.split("_")[0])
        return write_copy(plain, *args, **kwargs)

    def slow_disk(fd):  # the staging thread's fsyncs of archives: the staged one, then publication's copy
        fsync(fd)
        if threading.current_thread().name.startswith("pbuf-stage") and os.fstat(fd).st_size > 1 << 20:
            time.sleep(0.5)
            events.append(("fsynced", time.perf_counter(), Path(os.readlink(f"/proc/self/fd/{fd}")).parent.name))

    factor = validation.cholesky_factor

    def watched_factor(covariance, *args, overwrite=False, **kwargs):
        events.append(("factor", time.perf_counter(), overwrite, any(np.shares_memory(covariance, d.covariance)
                                                                      for d in made)))
        return factor(covariance, *args, overwrite=overwrite, **kwargs)

    def job_dataset(*args, **kwargs):
        made.append(replace(derived, covariance=derived.covariance.copy()))
        return made[-1]

    monkeypatch.setattr(dataset_module, "write_npz", slow_writer)
    monkeypatch.setattr(os, "fsync", slow_disk)
    monkeypatch.setattr(publication, "_write_copy", watched_copy)
    monkeypatch.setattr(validation, "cholesky_factor", watched_factor)
    if points is None:
        name = "bao_desi_dr1"
        entry, derived = registry[name], real(name)
    else:
        name, entry, fiducial = "sn_like", {"kind": "sn", "format": "sn_table"}, None  # a flat mu: no pulls
        derived = replace(dataset_with(sn_like(points, 7)), name=name)
        monkeypatch.setattr(derive_module, "derive_dataset", job_dataset)
    tree, expected = Tree("real"), entry.get("expected_points")
    paths = {role: str(raw_dir / spec["path"]) for role, spec in entry.get("files", {}).items()}
    logs = {"validate": tmp_path / "validate.log", "publish": tmp_path / "publish.log"}
    steps.prepare(tree, name, entry, paths, logs, tmp_path / "receipt.json", expected_points=expected,
                  thresholds=thresholds, fiducial=fiducial)

    if points is not None:  # the archive's bytes written, then the derived covariance's own buffer factored
        (written, *_), (factored, *_, overwrite, shared), (fsynced, _, folder), (copied, _, where) = events
        assert (written, factored, overwrite, shared) == ("written", "factor", True, True)
        assert (fsynced, folder, copied, where) == ("fsynced", "staging", "fsynced", "derived")
        assert events[0][1] <= events[1][1] < events[2][1]  # the factor did not wait for the disk
    # publication's copy of the archive is made once, by the staging thread
    assert written_copies == ["pbuf-stage"]
    assert not list(Path(tree.derived).glob(".*.tmp"))
    npz, doc = Path(tree.staged(name, "npz")), Path(tree.staged(name, "json"))
    sha256 = hashlib.sha256(npz.read_bytes()).hexdigest()
    assert json.loads(doc.read_text())["npz_sha256"] == sha256
    assert hashlib.sha256(Path(tree.published(name, "npz")).read_bytes()).hexdigest() == sha256
    staged = read_dataset(npz, doc)
    assert staged.covariance_diagonal is None
    for key in ("z", "observable", "uncertainty", "covariance"):
        np.testing.assert_array_equal(getattr(staged, key), getattr(derived, key))
    written = json.loads(Path(tree.report(name, "json")).read_text())
    assert written["state"] == "published"
    kept = json.loads(json.dumps(validate_dataset(staged, expected_points=expected, thresholds=thresholds,
                                                  fiducial=fiducial)))
    condition = [[c.pop("value") for c in report["checks"] if c["name"] == "covariance_condition_number"]
                 for report in (written, kept)]
    assert condition[0] == pytest.approx(condition[1], rel=1e-12)
    assert written["checks"] == kept["checks"] and written["verdict"] == kept["verdict"]


def test_a_staged_pair_not_written_while_the_dataset_is_validated_is_a_failed_derivation(tmp_path, monkeypatch):
    """The disk fills while the staging thread writes the archive and validation runs beside it (and fails too: a
    wrong point count): the job fails as a failed derivation (report state and processing summary), naming the
    cause; nothing is published, no receipt."""
    import errno
    import threading

    from pbuf_data.core.errors import PbufDataError
    from pbuf_data.core.layout import Tree
    from pbuf_data.operate import steps
    from pbuf_data.read import derive as derive_module

    monkeypatch.chdir(tmp_path)
    derived = replace(dataset_with(sn_like(600, 3)), name="sn_like")
    monkeypatch.setattr(derive_module, "derive_dataset", lambda *args, **kwargs: derived)
    fsync = os.fsync

    def full_disk_for_staging(fd):
        if threading.current_thread().name.startswith("pbuf-stage"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_for_staging)
    tree = Tree("real")
    logs = {"validate": tmp_path / "validate.log", "publish": tmp_path / "publish.log"}
    with pytest.raises(PbufDataError, match="No space left on device"):
        steps.prepare(tree, "sn_like", {"kind": "sn", "format": "sn_table"}, {}, logs, tmp_path / "receipt.json",
                      expected_points=1)
    report = json.loads(Path(tree.report("sn_like", "json")).read_text())
    assert report["state"] == "failed derive" and "No space left on device" in report["reason"]
    [summary] = (tmp_path / tree.logs / "transformations").glob("sn_like_processing_summary_*.json")
    summary = json.loads(summary.read_text())
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
    assert not (tmp_path / tree.derived).exists() and not (tmp_path / "receipt.json").exists()


def test_a_bug_beside_a_failed_staging_is_raised_as_it_is_and_the_staging_error_logged(tmp_path, monkeypatch, caplog):
    """steps._Staging: the writer's error is the outcome only of a block that ended without one; a block that raised
    something else (a bug, an interruption) raises it as it is, the writer's error logged beside it, and the writer
    is waited for in both cases."""
    from pbuf_data.core.errors import PbufDataError
    from pbuf_data.core.layout import Tree
    from pbuf_data.operate import steps

    monkeypatch.chdir(tmp_path)
    dataset = replace(dataset_with(sn_like(50, 1)), name="sn_like")

    def full_disk(npz, json_path, arrays_written=None):
        time.sleep(0.2)
        raise PbufDataError("cannot write it: No space left on device", check="write")

    monkeypatch.setattr(dataset, "save", full_disk)
    with pytest.raises(PbufDataError, match="No space left"):
        with steps._Staging(Tree("real"), "sn_like", dataset, "a.npz", "a.json"):
            pass
    with caplog.at_level("ERROR", logger="pbuf_data"), pytest.raises(KeyError, match="a bug"):
        with steps._Staging(Tree("real"), "sn_like", dataset, "a.npz", "a.json") as staging:
            raise KeyError("a bug")
    assert staging._writing.done() and staging.ended is None
    assert "sn_like: the staged pair was not written either: " in caplog.text and "No space left" in caplog.text


@pytest.mark.parametrize("threads", ["1", "2"])
def test_blas_threads_are_the_jobs_threads(threads):
    """Snakemake gives a job of N threads OPENBLAS_NUM_THREADS=N (and the like); the validation's factor takes
    as many workers."""
    code = "import numpy, scipy.linalg; from pbuf_data.publish.validation import blas_threads; print(blas_threads())"
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert int(out) == min(int(threads), len(os.sched_getaffinity(0)))  # OpenBLAS takes no more than the CPUs


def test_factors_in_threads_side_by_side_leave_the_blas_threads_as_they_were(monkeypatch):
    """The one-thread limit of each factorization is process-wide: two factorizations started side by side in
    threads of one process are both numpy's factor, and afterwards the BLAS has the threads it had before."""
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(pbuf_matrix, "BLOCK_COLUMNS", 64)

    def counts():
        return sorted(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")

    import scipy.linalg  # noqa: F401  (its BLAS counted too)

    before = counts()
    matrices = [sn_like(n, 14 + n) for n in (1200, 1500)]
    with ThreadPoolExecutor(2) as pool:
        factors = list(pool.map(lambda m: pbuf_matrix.cholesky_lower(m, 2), matrices))
    for matrix, factor in zip(matrices, factors):
        np.testing.assert_allclose(factor, np.linalg.cholesky(matrix), rtol=1e-10, atol=1e-12 * np.abs(factor).max())
    assert counts() == before


@pytest.mark.parametrize("shape", [(6, 7), (7, 6), (6,), (2, 3, 3)])
def test_the_blocked_factor_refuses_a_matrix_that_is_not_square(shape):
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        pbuf_matrix.cholesky_lower(np.ones(shape), 2)


def test_threads_for_large_raw_files():
    assert threads_for(PARALLEL_FROM_BYTES - 1) == 1
    assert threads_for(PARALLEL_FROM_BYTES) == 2


def test_non_finite_entries_are_counted():
    """finite_<array>: an error whose value is the number of NaN and infinite entries (none: the check passes)."""
    matrix = sn_like(40, 9)
    assert {c["name"]: c["value"] for c in validate_dataset(dataset_with(matrix))["checks"]}["finite_covariance"] == 0
    matrix[1, 2], matrix[2, 1], matrix[5, 5] = np.nan, np.nan, np.inf
    dataset = dataset_with(matrix)
    dataset.observable[7] = -np.inf
    checks = {c["name"]: c for c in validate_dataset(dataset)["checks"]}
    assert (checks["finite_covariance"]["verdict"], checks["finite_covariance"]["value"]) == ("error", 3)
    assert (checks["finite_observable"]["verdict"], checks["finite_observable"]["value"]) == ("error", 1)
    assert checks["finite_uncertainty"]["value"] == 1  # sqrt of the infinite C_55


def test_publications_copy_made_ahead_is_removed_when_the_job_does_not_publish(tmp_path, monkeypatch):
    """The staging thread's copy of the archive for publication (publication.prepare_copy) is made while the dataset
    is validated; a dataset that then fails validation, equals its published copy (not republished) or meets a bug
    in its validation leaves no temporary file in the derived folder, and its published copy as it was."""
    from pbuf_data.core.errors import PbufDataError
    from pbuf_data.core.layout import Tree
    from pbuf_data.operate import steps
    from pbuf_data.publish import publication
    from pbuf_data.read import derive as derive_module

    monkeypatch.chdir(tmp_path)
    derived = replace(dataset_with(sn_like(600, 3)), name="sn_like")
    monkeypatch.setattr(derive_module, "derive_dataset",
                        lambda *args, **kwargs: replace(derived, covariance=derived.covariance.copy()))
    made = []
    prepare_copy, validate = publication.prepare_copy, validation.validate_dataset

    def watched_copy(npz, folder):
        prepare_copy(npz, folder)
        made.extend(Path(folder).glob(".sn_like.npz.*.tmp"))

    def slow_validation(*args, **kwargs):  # the copy is made before the verdict
        report = validate(*args, **kwargs)
        time.sleep(0.5)
        if bug:
            raise KeyError("a bug")
        return report

    monkeypatch.setattr(publication, "prepare_copy", watched_copy)
    monkeypatch.setattr(validation, "validate_dataset", slow_validation)
    tree, bug = Tree("real"), False
    logs = {"validate": tmp_path / "validate.log", "publish": tmp_path / "publish.log"}
    entry = {"kind": "sn", "format": "sn_table"}

    def job(expected_points):
        steps.prepare(tree, "sn_like", entry, {}, logs, tmp_path / "receipt.json", expected_points=expected_points)

    job(600)
    published = Path(tree.published("sn_like", "npz")).read_bytes()
    assert len(made) == 1 and not made[0].exists()  # taken by publication
    with pytest.raises(PbufDataError, match="validation failed"):
        job(1)
    job(600)  # equal to its published copy: not republished
    bug = True
    with pytest.raises(KeyError, match="a bug"):
        job(600)
    assert len(made) == 4 and not any(path.exists() for path in made)
    assert not list(Path(tree.derived).glob(".*.tmp"))
    assert Path(tree.published("sn_like", "npz")).read_bytes() == published
