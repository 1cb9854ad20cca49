"""Covariance files in every form a release writes them (options.covariance of sn_table): counted, square, packed
upper triangle in an .npz key, inverse with a scale factor, systematic-only, gzip-compressed; the releases that need
them (Union2, DES-SN5YR STATONLY, Moresco 2012) against SOURCES.md and against the field's readers."""

from __future__ import annotations

import copy
import gzip
import io

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.publish.validation import validate_dataset
from pbuf_data.read.derive import derive_dataset

from test_cobaya import COSMOLOGIES, FlatLCDM

# -- the training releases against their SOURCES.md ---------------------------------------------------------------


def test_union2_square_matrix_without_a_leading_n(real):
    ds = real("sn_union2")
    assert len(ds) == 557 and set(ds.observable_type.tolist()) == {"mu_offset_free"}
    assert (ds.columns["id"][0], ds.z[0], ds.observable[0], ds.uncertainty[0]) == (
        "1993ah", 0.028488, 35.3355510594, 0.226143925635)
    assert (ds.columns["id"][-1], ds.z[-1], ds.observable[-1], ds.uncertainty[-1]) == (
        "2001hb", 1.03, 44.2516558833, 0.142160782046)
    assert (ds.z.min(), ds.z.max()) == (0.015, 1.4)
    assert ds.covariance[0, 0] == 0.0511417772921 and ds.covariance[556, 556] == 0.0202097927454
    assert ds.covariance[0, 1] == 0.0
    np.testing.assert_array_equal(ds.columns["zHEL"], ds.z)  # the file's only redshift
    assert ds.metadata["covariance"]["layout"] == "square" and ds.metadata["covariance"]["gives"] == "covariance"


def test_des_sn5yr_statonly_gzip_systematic_only(real, raw_dir):
    ds = real("sn_des5yr_statonly")
    assert len(ds) == 1829
    assert ds.covariance[0, 0] == pytest.approx(0.0968**2, rel=1e-15)
    assert ds.covariance[1828, 1828] == pytest.approx(0.2873**2, rel=1e-15)
    np.testing.assert_array_equal(ds.covariance - np.diag(np.diag(ds.covariance)), 0.0)  # every file element is 0
    np.testing.assert_array_equal(np.sqrt(np.diag(ds.covariance)), ds.columns["sigma_published"])
    text = gzip.decompress((raw_dir / "sn_des5yr_statonly" / "STATONLY.txt.gz").read_bytes())
    assert len(text) == 53_523_861 and text.startswith(b"1829\n 0.000000e+00  \n")
    assert ds.metadata["covariance"]["gives"] == "systematic_only"
    assert validate_dataset(ds, expected_points=1829)["verdict"] != "failed"


def test_moresco_2012_two_model_files(real):
    bc03, mastro = real("cc_hz_moresco2012_bc03"), real("cc_hz_moresco2012_mastro")
    np.testing.assert_array_equal(bc03.z, [0.1791, 0.1993, 0.3519, 0.5929, 0.6797, 0.7812, 0.8754, 1.037])
    assert (bc03.observable[0], bc03.uncertainty[0], bc03.observable[-1], bc03.uncertainty[-1]) == (75, 4, 154, 20)
    assert (mastro.observable[0], mastro.uncertainty[0], mastro.observable[-1], mastro.uncertainty[-1]) == (
        81, 5, 113, 15)
    assert bc03.covariance[0, 0] == 16 and np.sqrt(mastro.covariance[7, 7]) == 15
    np.testing.assert_array_equal(bc03.covariance, np.diag(bc03.uncertainty**2))


# -- the field's readers -----------------------------------------------------------------------------------------


def _mu(model, z, zhel):
    return 5 * np.log10((1 + zhel) * model.comoving(z)) + 25


def test_union2_chi2_equals_montepython_sn_reader(real, raw_dir):
    """MontePython's `sn` likelihood, written here from its description: lines with '#' skipped, columns z and mu,
    the covariance inverted, chi2 = A - B^2/C (an additive offset marginalized), mu = 5 log10((1+z)^2 D_A) + 25."""
    ds = real("sn_union2")
    folder = raw_dir / "sn_union2"
    rows = [ln.split() for ln in (folder / "sn_z_mu_dmu_union2.txt").read_text().splitlines() if "#" not in ln and ln.strip()]
    z = np.array([float(r[1]) for r in rows])
    mu = np.array([float(r[2]) for r in rows])
    inv = np.linalg.inv(np.loadtxt(folder / "sn_covmat_nosys_union2.txt"))
    for cosmo in COSMOLOGIES:
        model = FlatLCDM(**cosmo)
        theory = 5 * np.log10((1 + z) ** 2 * model.comoving(z) / (1 + z)) + 25
        delta = theory - mu
        a, b, c = delta @ inv @ delta, np.sum(inv @ delta), np.sum(inv)
        assert ds.chi2(_mu(model, ds.z, ds.columns["zHEL"])) == pytest.approx(a - b * b / c, rel=1e-9, abs=1e-9)


def test_des_statonly_chi2_equals_cobaya_desy5_on_the_raw_files(real, raw_dir, tmp_path):
    """Cobaya's own sn.desy5 class, given the raw HD table and the gzip STATONLY matrix through a .dataset file
    (it adds MUERR_FINAL^2 to the diagonal and marginalizes the offset)."""
    pytest.importorskip("cobaya")
    from cobaya.likelihoods.sn.desy5 import DESy5

    from test_cobaya import NumpyTheory

    folder = raw_dir / "sn_des5yr_statonly"
    (tmp_path / "config.dataset").write_text(
        f"name = DES-SN5YR\ndata_file = {folder / 'DES-SN5YR_HD.csv'}\nmag_covmat_file = {folder / 'STATONLY.txt.gz'}\n")
    from cobaya.model import get_model

    own = type("DESy5", (DESy5,), {"install_options": {}})
    info = {"likelihood": {"desy5": {"external": own, "path": str(tmp_path), "dataset_file": "config.dataset"}},
            "theory": {"numpy_lcdm": {"external": NumpyTheory}},
            "params": {k: {"prior": {"min": 0.5 * min(c[k] for c in COSMOLOGIES), "max": 2 * max(c[k] for c in COSMOLOGIES)}}
                       for k in COSMOLOGIES[0]}}
    model = get_model(info)
    ds = real("sn_des5yr_statonly")
    for cosmo in COSMOLOGIES:
        theirs = -2 * float(np.sum(model.loglikes(dict(cosmo))[0]))
        ours = ds.chi2(_mu(FlatLCDM(**cosmo), ds.z, ds.columns["zHEL"]))
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)


# -- the guard: a systematic-only matrix taken as the total fails validation --------------------------------------


def test_statonly_matrix_taken_as_total_fails_validation(registry, raw_dir):
    entry = copy.deepcopy(registry["sn_des5yr_statonly"])
    entry["options"]["covariance"]["gives"] = "covariance"
    ds = derive_dataset("sn_des5yr_statonly", entry, raw_dir)
    report = validate_dataset(ds, expected_points=1829)
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert report["verdict"] == "failed" and verdicts["covariance_vs_published_sigma"] == "error"


def _toy_sn(tmp_path, n=6, seed=5):
    rng = np.random.default_rng(seed)
    z = np.sort(rng.uniform(0.02, 1.2, n)).tolist()
    sigma = np.array(rng.uniform(0.1, 0.2, n).tolist())
    a = rng.normal(size=(n, n)) * 0.03
    systematic = a @ a.T
    folder = tmp_path / "raw" / "sn_toy"
    folder.mkdir(parents=True)
    rows = ["name,zHD,zHEL,MU,MUERR"] + [f"sn{i},{z[i]!r},{z[i]!r},{40 + i},{float(sigma[i])!r}" for i in range(n)]
    (folder / "hd.csv").write_text("\n".join(rows) + "\n")
    entry = {
        "kind": "sn", "format": "sn_table", "title": "toy", "citation": "toy", "expected_points": n,
        "files": {"table": {"path": "sn_toy/hd.csv", "allow_unpinned": True},
                  "covariance": {"path": "sn_toy/cov", "allow_unpinned": True}},
        "options": {"table": {"delimiter": "comma"}, "observable_type": "mu_offset_free", "carry_columns": [],
                    "columns": {"id": "name", "z": "zHD", "zhel": "zHEL", "observable": "MU", "uncertainty": "MUERR",
                                "calibrator": None},
                    "selection": {"z_min": 0.0}, "covariance": {}},
    }
    return folder, entry, systematic, sigma


def validate_registry(document):
    """What loading a registry file does: the schema (defaults filled in), then the layout's cross-field rules."""
    from pbuf_data.read.registry import check_entry
    from pbuf_data.read.schema import load_schema, validate

    validate(document, load_schema("registry.schema.yaml"), what="registry")
    for name, entry in document["datasets"].items():
        check_entry(name, entry)


def _derive(tmp_path, entry):
    validate_registry({"datasets": {"sn_toy": entry}})
    return derive_dataset("sn_toy", entry, tmp_path / "raw")


def test_systematic_only_nonzero_matrix_adds_sigma_and_the_guard_catches_it_as_total(tmp_path):
    folder, entry, systematic, sigma = _toy_sn(tmp_path)
    (folder / "cov").write_text(f"{len(sigma)}\n" + "\n".join(map(repr, systematic.ravel().tolist())) + "\n")
    entry["options"]["covariance"] = {"layout": "counted", "gives": "systematic_only"}
    ds = _derive(tmp_path, copy.deepcopy(entry))
    np.testing.assert_allclose(ds.covariance, systematic + np.diag(sigma**2), rtol=1e-15, atol=0)
    assert validate_dataset(ds)["verdict"] != "failed"
    entry["options"]["covariance"]["gives"] = "covariance"
    wrong = _derive(tmp_path, entry)
    checks = {c["name"]: c for c in validate_dataset(wrong)["checks"]}
    assert checks["covariance_vs_published_sigma"]["verdict"] == "error"
    assert checks["covariance_positive_definite"]["verdict"] == "pass"  # only the guard sees it


def test_an_entry_that_does_not_say_which_matrix_is_refused(tmp_path):
    _, entry, _, _ = _toy_sn(tmp_path)
    del entry["options"]["covariance"]
    with pytest.raises(PbufDataError, match="options.covariance.gives"):
        validate_registry({"datasets": {"sn_toy": entry}})
    entry["options"]["covariance"] = {"layout": "square"}
    with pytest.raises(PbufDataError, match="gives"):
        validate_registry({"datasets": {"sn_toy": entry}})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_upper_npz_inverse_equals_cobaya_reader(tmp_path, dtype):
    """An inverse covariance packed as its upper triangle, row-major, in an .npz key: the matrix equals the one
    Cobaya's SN base class reads from the same archive (`_read_inv_covmat`: n first, the triangle second)."""
    pytest.importorskip("cobaya")
    from cobaya.likelihoods.base_classes.sn import SN

    folder, entry, systematic, sigma = _toy_sn(tmp_path)
    n = len(sigma)
    covariance = systematic + np.diag(sigma**2)
    inverse = np.linalg.inv(covariance)
    packed = inverse[np.triu_indices(n)].astype(dtype)
    buffer = io.BytesIO()
    np.savez(buffer, n=np.array([n]), invcov_upper=packed)
    (folder / "cov").write_bytes(buffer.getvalue())
    entry["options"]["covariance"] = {"layout": "packed_upper_npz", "npz_key": "invcov_upper", "gives": "inverse"}
    ds = _derive(tmp_path, entry)
    theirs = SN._read_inv_covmat(None, folder / "cov")
    np.testing.assert_allclose(ds.covariance, np.linalg.inv(theirs), rtol=1e-12, atol=1e-15)
    if dtype == np.float64:
        np.testing.assert_allclose(ds.covariance, covariance, rtol=1e-10, atol=1e-14)
    entry["options"]["covariance"]["npz_key"] = "other"
    with pytest.raises(PbufDataError, match="no key 'other'"):
        _derive(tmp_path, entry)


@pytest.mark.parametrize("broken", ["nan", "overflow"])
def test_a_matrix_that_is_not_finite_is_refused_naming_the_file(tmp_path, broken):
    """A NaN in a binary matrix, or values a scale takes beyond float64: a PbufDataError naming the file and the
    check, not a traceback (nor a dataset whose metadata cannot be written)."""
    folder, entry, systematic, sigma = _toy_sn(tmp_path)
    n = len(sigma)
    packed = (systematic + np.diag(sigma**2))[np.triu_indices(n)]
    if broken == "nan":
        packed[3] = np.nan
    else:
        packed *= 1e20  # times the scale below: beyond float64
    buffer = io.BytesIO()
    np.savez(buffer, n=np.array([n]), cov_upper=packed)
    (folder / "cov").write_bytes(buffer.getvalue())
    scale = 1e300 if broken == "overflow" else 1
    entry["options"]["covariance"] = {"layout": "packed_upper_npz", "npz_key": "cov_upper", "gives": "covariance",
                                      "scale": scale}
    with pytest.raises(PbufDataError, match=r"sn_toy/cov.*finite.*not finite numbers"):
        _derive(tmp_path, entry)


def test_inverse_with_a_scale_factor_square_and_gzip_table(tmp_path):
    """A square inverse matrix written divided by 1e-4 (scale 1e-4, as WiggleZ's), and a gzip table: the pin is the
    sha256 of the bytes as stored, the reader sees the text."""
    import hashlib

    folder, entry, systematic, sigma = _toy_sn(tmp_path)
    covariance = systematic + np.diag(sigma**2)
    written = np.linalg.inv(covariance) / 1e-4
    (folder / "cov").write_text("\n".join("\t".join(map(repr, row)) + "\t" for row in written.tolist()) + "\n")
    table = (folder / "hd.csv").read_bytes()
    stored = gzip.compress(table, mtime=0)
    (folder / "hd.csv.gz").write_bytes(stored)
    entry["files"]["table"] = {"path": "sn_toy/hd.csv.gz", "sha256": hashlib.sha256(stored).hexdigest()}
    entry["options"]["covariance"] = {"layout": "square", "gives": "inverse", "scale": 1e-4}
    ds = _derive(tmp_path, entry)
    np.testing.assert_allclose(ds.covariance, covariance, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ds.columns["sigma_published"], sigma)
    (folder / "hd.csv.gz").write_bytes(stored[:-12])  # truncated: the pin refuses it first
    with pytest.raises(PbufDataError, match="sha256"):
        _derive(tmp_path, entry)
    entry["files"]["table"] = {"path": "sn_toy/hd.csv.gz", "allow_unpinned": True}
    with pytest.raises(PbufDataError, match="gzip"):
        _derive(tmp_path, entry)


def test_gzip_limits_are_errors_naming_the_file(tmp_path, monkeypatch):
    """A gzip file above 64 MiB as stored is refused (store it decompressed), and so is one that decompresses past
    the limit (limits lowered here to keep the test small)."""
    from pbuf_data.read import rawio, textio

    folder, entry, systematic, sigma = _toy_sn(tmp_path)
    n = len(sigma)
    text = f"{n}\n" + "\n".join(map(repr, systematic.ravel().tolist())) + "\n"
    stored = gzip.compress(text.encode(), compresslevel=0, mtime=0)  # larger than the table
    (folder / "cov").write_bytes(stored)
    assert len(stored) > 600 > (folder / "hd.csv").stat().st_size
    entry["options"]["covariance"] = {"layout": "counted", "gives": "systematic_only"}
    monkeypatch.setattr(rawio, "MAX_GZIP_BYTES", 100)
    with pytest.raises(PbufDataError, match=r"sn_toy/cov.*decompresses to more than 100 bytes"):
        _derive(tmp_path, copy.deepcopy(entry))
    monkeypatch.setattr(rawio, "MAX_GZIP_BYTES", 4 << 30)
    monkeypatch.setattr(textio, "MAX_TEXT_BYTES", 600)
    with pytest.raises(PbufDataError, match=r"sn_toy/cov.*gzip files are read up to 600 bytes as stored"):
        _derive(tmp_path, entry)


@pytest.mark.parametrize("path,spec", [
    ("cov.txt.gz", {"layout": "counted", "gives": "systematic_only", "scale": 1}),
    ("cov.npz", {"layout": "packed_upper_npz", "npz_key": "invcov", "gives": "inverse", "scale": 1}),
])
def test_mock_sn_in_every_matrix_form(tmp_path, mock_registry, path, spec):
    """The Pantheon+-format mock written in the entry's matrix form (gzip systematic-only; an inverse packed in an
    .npz key; the square and scaled forms are the toy tests above): the derived covariance is the matrix the file
    holds as numpy reads it back here, and the chi2 against the fiducial is that of a draw (N = 1590 +- a few
    sigma)."""
    import yaml

    from pbuf_data.model.cosmology import Fiducial
    from pbuf_data.read.mock import mock_files

    from conftest import PROJECT

    fiducial = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
    entry = copy.deepcopy(mock_registry["mock_sn_pantheon_plus"])
    entry["files"]["covariance"]["path"] = f"mock_sn/{path}"
    entry["files"]["table"]["path"] = "mock_sn/table.dat"
    entry["options"]["covariance"] = spec
    validate_registry({"datasets": {"mock_sn": entry}})
    (tmp_path / "mock_sn").mkdir()
    for role, content in mock_files(entry, fiducial, entry["mock"]["seed"]).items():  # one generation, both files
        (tmp_path / entry["files"][role]["path"]).write_bytes(content if isinstance(content, bytes) else content.encode())
    stored = (tmp_path / "mock_sn" / path).read_bytes()
    assert stored[:2] == b"\x1f\x8b" if path.endswith(".gz") else stored[:2] != b"\x1f\x8b"
    ds = derive_dataset("mock_sn", entry, tmp_path)
    if path.endswith(".npz"):
        matrix = np.load(tmp_path / "mock_sn" / path)["invcov"]
        n = int(round((np.sqrt(8 * matrix.size + 1) - 1) / 2))
        full = np.zeros((n, n))
        full[np.triu_indices(n)] = matrix
        full = full + np.triu(full, 1).T
    else:
        text = gzip.decompress(stored).decode() if path.endswith(".gz") else stored.decode()
        values = np.array(text.split(), dtype=float)
        full = values[1:].reshape(int(values[0]), -1) if spec["layout"] == "counted" else values.reshape(1701, 1701)
    full = full * spec["scale"]
    table = np.genfromtxt(tmp_path / "mock_sn" / "table.dat", names=True, dtype=None, encoding="utf-8")
    keep = table["zHD"] > 0.01
    if spec["gives"] == "inverse":
        full = np.linalg.inv(0.5 * (full + full.T))
    elif spec["gives"] == "systematic_only":
        full = full + np.diag(table["MU_SH0ES_ERR_DIAG"] ** 2)
    np.testing.assert_allclose(ds.covariance, 0.5 * (full + full.T)[np.ix_(keep, keep)], rtol=1e-9, atol=1e-12)
    assert validate_dataset(ds, expected_points=1590)["verdict"] != "failed"
    fid = Fiducial.from_config(fiducial)
    chi2 = ds.chi2(fid.mu(ds.z))
    assert abs(chi2 - 1590) < 6 * np.sqrt(2 * 1590)


def test_bao_inverse_covariance_with_a_scale_equals_cobaya_invcov_file(tmp_path):
    """A BAO vector whose matrix file is the inverse covariance written times 1e4 (scale 1e-4): its chi2 equals
    Cobaya's bao.generic reading the same mean file and the inverse (unscaled, its invcov_file) at three
    cosmologies."""
    pytest.importorskip("cobaya")
    from test_cobaya import _cobaya_chi2s

    folder = tmp_path / "raw" / "bao_inv"
    folder.mkdir(parents=True)
    rows = [(0.44, 11.55, "DM_over_rs"), (0.6, 14.94, "DM_over_rs"), (0.73, 17.56, "DM_over_rs")]
    (folder / "mean.txt").write_text("".join(f"{z} {v} {q}\n" for z, v, q in rows))
    cov = np.array([[0.31, 0.09, 0.0], [0.09, 0.25, 0.11], [0.0, 0.11, 0.36]])
    inverse = np.linalg.inv(cov)
    (folder / "invcov_x1e4.txt").write_text("\n".join(" ".join(map(repr, r)) for r in (inverse * 1e4).tolist()) + "\n")
    (folder / "invcov.txt").write_text("\n".join(" ".join(map(repr, r)) for r in inverse.tolist()) + "\n")
    entry = {"kind": "bao", "format": "bao_mean_cov", "title": "toy", "citation": "toy",
             "files": {"mean": {"path": "bao_inv/mean.txt", "allow_unpinned": True},
                       "covariance": {"path": "bao_inv/invcov_x1e4.txt", "allow_unpinned": True}},
             "options": {"labels": {"DM_over_rs": {"observable_type": "DM_over_rd"}},
                         "covariance": {"layout": "square", "gives": "inverse", "scale": 1e-4}}}
    validate_registry({"datasets": {"bao_inv": entry}})
    ds = derive_dataset("bao_inv", entry, tmp_path / "raw")
    np.testing.assert_allclose(ds.covariance, cov, rtol=1e-12, atol=1e-15)
    block = {"inv": {"class": "pbuf_data.fit.cobaya_theory.BaoGeneric", "path": str(folder), "measurements_file": "mean.txt",
                     "cov_file": None, "invcov_file": "invcov.txt", "rs_rescale": 1.0}}
    for cosmo, theirs in zip(COSMOLOGIES, _cobaya_chi2s(tmp_path, block, COSMOLOGIES)):
        model = FlatLCDM(**cosmo)
        assert ds.chi2(model.comoving(ds.z) / model.rdrag()) == pytest.approx(theirs, rel=1e-9)
    entry["options"]["covariance"]["gives"] = "systematic_only"
    with pytest.raises(PbufDataError, match="a mean file has none"):
        validate_registry({"datasets": {"bao_inv": entry}})
