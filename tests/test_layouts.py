"""Release layouts added by a registry entry alone, each written into a temporary raw folder: values and loglike
against independent numpy/scipy computations and against Cobaya's own bao.generic reading the same files."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pbuf_data.core.errors import PbufDataError
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.registry import load_registry

from conftest import PROJECT

REGISTRY = load_registry(PROJECT / "config" / "registry.yaml")


def _entry(fmt_entry: dict, files: dict, options: dict, kind="bao", expected=None) -> dict:
    entry = copy.deepcopy(fmt_entry)
    entry.update(kind=kind, files=files, options=options)
    entry.pop("expected_points", None)
    if expected:
        entry["expected_points"] = expected
    return entry


def _validated(name, entry, raw, folder=None):
    """The entry through the registry schema (defaults filled, as the workflow reads it), then derived."""
    import yaml

    import hashlib

    for spec in entry["files"].values():  # pinned, as a real release's entry is
        spec.setdefault("sha256", hashlib.sha256((raw / spec["path"]).read_bytes()).hexdigest())
    path = (folder or raw.parent) / f"{name}.registry.yaml"
    path.write_text(yaml.safe_dump({"datasets": {name: entry}}))
    return derive_dataset(name, load_registry(path)[name], raw)


def _lya_grid(folder):
    """A (D_M/r_d, D_H/r_d) likelihood-ratio grid like eBOSS DR16 Lya: x slowest, y fastest, L = exp(-chi2/2)."""
    x, y = np.linspace(30.0, 45.0, 61), np.linspace(6.0, 11.0, 51)
    mean, icov = np.array([37.6, 8.93]), np.linalg.inv(np.array([[3.4, -0.35], [-0.35, 0.09]]))
    xx, yy = np.meshgrid(x, y, indexing="ij")
    d = np.stack([xx - mean[0], yy - mean[1]], axis=-1)
    chi2 = np.einsum("...i,ij,...j->...", d, icov, d)
    rows = [f"{a:.6f} {b:.6f} {np.exp(-c / 2):.10e}" for a, b, c in zip(xx.ravel(), yy.ravel(), chi2.ravel())]
    (folder / "lya_grid.txt").write_text("# DM/rd DH/rd likelihood ratio\n" + "\n".join(rows) + "\n")
    return x, y, mean, icov


def _cobaya_loglike(block, theory_values):
    """Cobaya's bao.generic on the block, with a provider returning the given observables (what its theory_fun maps)."""
    pytest.importorskip("cobaya")
    from cobaya.component import get_component_class

    own = get_component_class("bao.generic", kind="likelihood")
    cls = type(own.__name__, (own,), {"install_options": {}})
    lik = cls(block)
    lik.theory_fun = lambda z, obs: np.atleast_1d(theory_values[obs])
    return lik.logp()


def test_a_two_dimensional_likelihood_grid_by_entry_alone(tmp_path):
    raw = tmp_path / "raw"
    (raw / "bao_lya_toy").mkdir(parents=True)
    x, y, mean, icov = _lya_grid(raw / "bao_lya_toy")
    entry = _entry(REGISTRY["bao_desi_dr1"], {"table": {"path": "bao_lya_toy/lya_grid.txt"}},
                   {"observables": ["DM_over_rd", "DH_over_rd"], "z_eff": 2.334, "values": "likelihood"}, expected=2)
    entry["format"] = "likelihood_table"
    ds = _validated("bao_lya_toy", entry, raw)
    assert ds.observable_type.tolist() == ["DM_over_rd", "DH_over_rd"] and ds.z.tolist() == [2.334, 2.334]
    assert ds.likelihood().form == "grid_2d"
    # the Gaussian summary: the grid's moments of a Gaussian likelihood are its mean and covariance
    np.testing.assert_allclose(ds.observable, mean, rtol=1e-5)
    np.testing.assert_allclose(ds.covariance, np.linalg.inv(icov), rtol=2e-3, atol=1e-5)
    block = {"grid_file": str(raw / "bao_lya_toy/lya_grid.txt"), "observable_1": "DM_over_rs",
             "observable_2": "DH_over_rs", "redshift": 2.334, "path": str(raw), "measurements_file": None}
    for point in ([37.6, 8.93], [33.1, 9.7], [44.2, 6.4]):
        d = np.array(point) - mean
        # the file's 10 significant digits of L: ln L agrees with the exact quadratic form to ~1e-9
        assert ds.loglike(np.array(point)) == pytest.approx(-0.5 * d @ icov @ d, abs=1e-6)
        theirs = _cobaya_loglike(block, {"DM_over_rs": point[0], "DH_over_rs": point[1]})
        assert ds.loglike(np.array(point)) == pytest.approx(theirs, rel=1e-10, abs=1e-10)
    with pytest.raises(PbufDataError, match="outside the likelihood grid"):
        ds.chi2(np.array([29.0, 8.0]))


def test_a_one_dimensional_table_with_its_grid_in_the_entry_is_cobayas_prob_dist(real, raw_dir, tmp_path):
    """The SDSS MGS chi2(alpha) file as a likelihood_table: the same loglike as Cobaya's sdss_dr7_mgs settings."""
    raw = tmp_path / "raw"
    (raw / "bao_mgs").mkdir(parents=True)
    source = real("bao_sdss_mgs")
    published = raw_dir / "bao_sdss_mgs" / "sdss_MGS_prob.txt"
    (raw / "bao_mgs" / "prob.txt").write_bytes(published.read_bytes())
    fid = 4.29720761315
    entry = _entry(REGISTRY["bao_sdss_mgs"], {"table": {"path": "bao_mgs/prob.txt"}},
                   {"observables": ["DV_over_rd"], "z_eff": 0.15, "values": "chi2",
                    "grid": {"min": 0.8005 * fid, "max": 1.1985 * fid}}, expected=1)
    entry["format"] = "likelihood_table"
    ds = _validated("bao_mgs", entry, raw, tmp_path)
    assert ds.likelihood().form == "table_1d"
    block = {"prob_dist": str(published), "prob_dist_bounds": [0.8005, 1.1985],
             "measurements_file": None, "path": str(raw)}
    for value in (4.3171, 4.4669, 4.62555, 3.6, 5.1):
        ours = ds.loglike(np.array([value]))
        assert ours == pytest.approx(source.loglike(np.array([value])), rel=1e-12, abs=1e-12)
        lik = _cobaya_prob_dist(block)
        assert ours == pytest.approx(float(lik.logpdf(np.array([value / fid]))), rel=1e-9, abs=1e-9)


def _cobaya_prob_dist(block):
    pytest.importorskip("cobaya")
    from cobaya.component import get_component_class

    own = get_component_class("bao.generic", kind="likelihood")
    cls = type(own.__name__, (own,), {"install_options": {}})
    return cls({**block, "measurements_file": None, "data": [0.15, 4.4669, "DV_over_rs"]})


@pytest.mark.parametrize(
    "mutate, match",
    [(lambda rows: rows[:-1], "not a rectangular grid"),
     (lambda rows: [rows[1], rows[0], *rows[2:]], "out of order"),
     (lambda rows: rows[:5] + [rows[5].rsplit(" ", 1)[0] + " -1.0"] + rows[6:], "negative likelihood"),
     (lambda rows: rows[:5] + [rows[5].rsplit(" ", 1)[0] + " nan"] + rows[6:], "line 7")],
)
def test_a_bad_grid_is_an_error_naming_file_and_line(tmp_path, mutate, match):
    raw = tmp_path / "raw"
    (raw / "bao_lya_toy").mkdir(parents=True)
    _lya_grid(raw / "bao_lya_toy")
    path = raw / "bao_lya_toy" / "lya_grid.txt"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *mutate(rows)]) + "\n")
    entry = _entry(REGISTRY["bao_desi_dr1"], {"table": {"path": "bao_lya_toy/lya_grid.txt"}},
                   {"observables": ["DM_over_rd", "DH_over_rd"], "z_eff": 2.334, "values": "likelihood"})
    entry["format"] = "likelihood_table"
    with pytest.raises(PbufDataError, match=match) as info:
        _validated("bao_lya_toy", entry, raw)
    assert "bao_lya_toy/lya_grid.txt" in str(info.value)


def _sn_rows(n=12, seed=11):
    rng = np.random.default_rng(seed)
    z = np.sort(rng.uniform(0.02, 1.2, n))
    zhel = z + rng.normal(scale=1e-3, size=n)
    mu = 5 * np.log10((1 + zhel) * 4280 * z * (1 + 0.3 * z)) + 25 + rng.normal(scale=0.1, size=n)
    sigma = rng.uniform(0.08, 0.2, n)
    return z, zhel, mu, sigma


def _sn_entry(options, path):
    return _entry(REGISTRY["sn_des5yr"], {"table": {"path": path}}, options, kind="sn", expected=12)


def test_a_headerless_positional_sn_table_by_entry_alone(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sn_toy").mkdir(parents=True)
    z, zhel, mu, sigma = _sn_rows()
    lines = [f"SN{i:03d}  {a!r}\t{b!r}  {c!r} {d!r}" for i, (a, b, c, d) in
             enumerate(zip(*(v.tolist() for v in (z, zhel, mu, sigma))))]
    (raw / "sn_toy" / "hd.txt").write_bytes(("\r\n".join(lines)).encode())  # CRLF, tabs, no final newline
    options = {"table": {"header": "none"}, "observable_type": "mu_offset_free", "carry_columns": [],
               "columns": {"id": 1, "z": 2, "zhel": 3, "observable": 4, "uncertainty": 5, "calibrator": None},
               "selection": {"z_min": 0.0}}
    ds = _validated("sn_toy", _sn_entry(options, "sn_toy/hd.txt"), raw)
    assert ds.columns["id"].tolist() == [f"SN{i:03d}" for i in range(12)]
    np.testing.assert_array_equal(ds.z, z)
    np.testing.assert_array_equal(ds.columns["zHEL"], zhel)
    np.testing.assert_array_equal(ds.observable, mu)
    # loglike against an independent computation: offset-free, diagonal
    theory = 5 * np.log10((1 + zhel) * 4280 * z * (1 + 0.3 * z)) + 25
    w = 1 / sigma**2
    r = mu - theory
    assert ds.chi2(theory) == pytest.approx(np.sum(w * r**2) - np.sum(w * r) ** 2 / np.sum(w), rel=1e-12)


def test_a_csv_with_renamed_columns_by_entry_alone(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sn_csv").mkdir(parents=True)
    z, zhel, mu, sigma = _sn_rows(seed=12)
    text = "\ufeffname,redshift_cmb,redshift_helio,distmod,distmod_err,survey\n" + "".join(
        f"s{i},{a!r},{b!r},{c!r},{d!r},{i % 3}\n" for i, (a, b, c, d) in
        enumerate(zip(*(v.tolist() for v in (z, zhel, mu, sigma)))))
    (raw / "sn_csv" / "table.csv").write_text(text)  # with a byte-order mark
    options = {"table": {"delimiter": "comma"}, "observable_type": "mu_offset_free", "carry_columns": ["survey"],
               "columns": {"id": "name", "z": "redshift_cmb", "zhel": "redshift_helio", "observable": "distmod",
                           "uncertainty": "distmod_err", "calibrator": None},
               "selection": {"z_min": 0.1}}
    entry = _sn_entry(options, "sn_csv/table.csv")
    entry["expected_points"] = int((z > 0.1).sum())
    ds = _validated("sn_csv", entry, raw)
    keep = z > 0.1
    np.testing.assert_array_equal(ds.z, z[keep])
    np.testing.assert_array_equal(ds.uncertainty, sigma[keep])
    np.testing.assert_array_equal(ds.columns["survey"], (np.arange(12) % 3)[keep])
    np.testing.assert_array_equal(ds.covariance, np.diag(sigma[keep] ** 2))


def test_a_mixed_bao_fsigma8_vector_with_a_skipped_label(raw_dir, tmp_path):
    """BOSS DR12 final consensus without its H*r_d rows: the covariance is sub-selected with the kept rows."""
    entry = copy.deepcopy(REGISTRY["bao_boss_dr12_fs"])
    entry.pop("supersedes")  # alone in its registry file: the release it supersedes is not defined there
    entry["options"]["labels"].pop("bao_Hz_rs")
    entry["options"]["skip_labels"] = ["bao_Hz_rs"]
    entry["expected_points"] = 6
    ds = _validated("bao_boss_fs_no_h", entry, raw_dir, tmp_path)
    rows = [ln.split() for ln in (raw_dir / "bao_boss_dr12_fs/sdss_DR12Consensus_final.dat").read_text().splitlines()]
    keep = [i for i, r in enumerate(rows) if r[2] != "bao_Hz_rs"]
    full = np.loadtxt(raw_dir / "bao_boss_dr12_fs/final_consensus_covtot_dM_Hz_fsig.txt")
    scale = np.array([1 / 147.78 if rows[i][2] == "DM_over_rs" else 1.0 for i in keep])
    np.testing.assert_allclose(ds.covariance, full[np.ix_(keep, keep)] * np.outer(scale, scale), rtol=1e-14)
    np.testing.assert_allclose(ds.observable, [float(rows[i][1]) * scale[k] for k, i in enumerate(keep)], rtol=1e-15)
    assert ds.observable_type.tolist() == ["DM_over_rd", "fsigma8"] * 3


def test_an_fsigma8_table_with_an_omega_m_column_and_a_block(tmp_path):
    """No LaTeX file: Omega_m,ref and the survey are columns; CRLF, no final newline, rows 2-4 correlated."""
    raw = tmp_path / "raw"
    (raw / "rsd_toy").mkdir(parents=True)
    z = [0.15, 0.44, 0.60, 0.73, 1.40]
    fs8, sigma = [0.49, 0.413, 0.39, 0.437, 0.482], [0.145, 0.08, 0.063, 0.072, 0.116]
    om = [0.31, 0.27, 0.27, 0.27, 0.27]
    survey = ["MGS", "WiggleZ", "WiggleZ", "WiggleZ", "FastSound"]
    rows = [f"{a}\t{b} {c}  {d} {e}" for a, b, c, d, e in zip(z, fs8, sigma, om, survey)]
    (raw / "rsd_toy" / "fs8.txt").write_bytes("\r\n".join(rows).encode())
    block = np.array([[6.4, 2.57, 0.0], [2.57, 3.969, 2.54], [0.0, 2.54, 5.184]]) * 1e-3
    (raw / "rsd_toy" / "wigglez.txt").write_bytes("\r\n".join(" ".join(map(repr, r.tolist())) for r in block).encode())
    entry = _entry(REGISTRY["rsd_fsigma8"], {"table": {"path": "rsd_toy/fs8.txt"}, "wigglez": {"path": "rsd_toy/wigglez.txt"}},
                   {"omega_m_ref_column": 4, "reference_column": 5,
                    "blocks": [{"file": "wigglez", "first_row": 2, "last_row": 4}]}, kind="rsd", expected=5)
    ds = _validated("rsd_toy", entry, raw)
    np.testing.assert_array_equal(ds.columns["omega_m_ref"], om)
    assert ds.columns["reference"].tolist() == survey
    expected = np.diag(np.array(sigma) ** 2)
    expected[1:4, 1:4] = block
    np.testing.assert_array_equal(ds.covariance, expected)
    theory = np.array(fs8) * 1.01
    r = ds.observable - theory
    assert ds.chi2(theory) == pytest.approx(r @ np.linalg.solve(expected, r), rel=1e-12)
