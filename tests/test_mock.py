"""Mock surveys: determinism, fidelity to the real files' layouts, closure against the fiducial
cosmology they were drawn from, and the fiducial cosmology against independent numbers."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import integrate, stats

from pbuf_data.model.cosmology import C_KM_S, Fiducial
from pbuf_data.read.derive import derive_dataset
from pbuf_data.read.mock import mock_files, write_mock_file
from pbuf_data.read.registry import load_registry

from conftest import RAW_DIR, RAW_SKIP

PROJECT = Path(__file__).resolve().parents[1]
REAL_RAW = RAW_DIR  # PBUF_RAW_DIR, as every test module (conftest)
MOCKS = load_registry(PROJECT / "config" / "registry_mock.yaml")
FIDUCIAL_BLOCK = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]
FIDUCIAL = Fiducial.from_config(FIDUCIAL_BLOCK)
# Planck 2018 VI (A&A 641, A6), Table 2, TT,TE,EE+lowE: the chain behind Chen, Huang & Wang 2019
PLANCK_TTTEEE = dataclasses.replace(FIDUCIAL, H0=67.27, Omega_m=0.3166, Omega_b_h2=0.02236, sigma8=0.8120)


def generate(folder: Path, name: str, seed: int | None = None, roles=None) -> dict[str, Path]:
    """Write the mock files of dataset ``name`` under ``folder`` as the registry lays them out."""
    entry = MOCKS[name]
    seed = entry["mock"]["seed"] if seed is None else seed
    paths = {}
    for role in roles or entry["files"]:
        paths[role] = folder / entry["files"][role]["path"]
        write_mock_file(entry, role, paths[role], FIDUCIAL_BLOCK, seed)
    return paths


@pytest.fixture(scope="module")
def mock_raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mock_raw")
    for name in MOCKS:
        generate(folder, name)
    return folder


@pytest.fixture(scope="module")
def derived(mock_raw):
    return {name: derive_dataset(name, entry, raw_dir=mock_raw) for name, entry in MOCKS.items()}


def chi2_against(dataset, fiducial: Fiducial) -> float:
    """r^T C^-1 r with r = observable - fiducial prediction, by observable type."""
    prediction = np.array([fiducial.predict(t, z) for t, z in zip(dataset.observable_type, dataset.z)], dtype=float)
    residual = dataset.observable - prediction
    return float(residual @ np.linalg.solve(dataset.covariance, residual))


# -- (a) determinism -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MOCKS))
def test_same_seed_gives_identical_bytes(name, mock_raw):
    """A second generation (all files in one pass) reproduces every written file byte for byte."""
    entry = MOCKS[name]
    texts = mock_files(entry, FIDUCIAL_BLOCK, entry["mock"]["seed"])
    for role, spec in entry["files"].items():
        assert texts[role].encode() == (mock_raw / spec["path"]).read_bytes(), role


# sha256 of every mock file at the registry's seeds, as written by the generator before the fiducial
# cosmology was rewritten in numpy and each job began to build only its own file (astropy's
# FlatLambdaCDM and scipy's quad and solve_ivp then): the files must not change by a byte
# (the headers name the generator, pbuf_data.read.mock since the package's stage folders: its only change then)
MOCK_SHA256 = {
    # the likelihood-table mocks, recorded when their generator was written
    ("mock_bao_elg_table", "table"): "144345c40cca52cb41e5b8a3873b716f1d937012753722598947e0d19652bdb9",
    ("mock_bao_lya_grid", "table"): "36e2883b34f508f7059b7322d10512ebd2ca62d16e1e0b9a9fa83f6dc9da6a78",
    # the alpha-scan mocks (BOSS DR12 Lya scan with its aux and .data files; DES Y3 chi2(alpha) CSV)
    ("mock_bao_lya_scan", "grid"): "2b4d483054005ae7bedff684186a58b0a691bacfc9f2c8082c63e2ca1577d5b6",
    ("mock_bao_lya_scan", "aux"): "248e57f09e74bd0ae3650d3d944885f3f605e51f07183c82206a65118b4e21fa",
    ("mock_bao_lya_scan", "fiducial"): "59855f08cc9a3a687ec6594cc6c0baa01fd43e56ea215cfefd63b8676875fd91",
    ("mock_bao_alpha_table", "table"): "276aa0fd45d37f2e083cfa8b7e0cce37b70b01e59df8b3bc0a360a5ade768f89",
    ("mock_bao_mgs_chi2_table", "table"): "02fe77206c34ce36d93fbd93a0cf390e0f1ab1a5da494f0eddf82d12d84a1cbc",
    ("mock_bao_type_coded", "table"): "c3cbd8a452dca51e474bbbac8e22fd3a58ec2b0b1ddd15664e2a681895c31f7c",
    ("mock_bao_correlated_pair", "table"): "484e8306c31afe834623e7575a65a02d1e1e35ef7b0c6408b5b40849af099b41",
    ("mock_sn_pantheon_plus", "table"): "d69dc259151136169f0bc98269187d5c58da534bcb2ee4bb6667d55c68371812",
    ("mock_sn_pantheon_plus", "covariance"): "e1c08cd1c24e5d692ad1dfe70039c66cbc1162d908d20fad64dbd0b199a88412",
    ("mock_bao_boss_dr12", "mean"): "5cd1be1835743338d3dd568693474e85c5f483d03b4e17f8d71066125e2eddd3",
    ("mock_bao_boss_dr12", "covariance"): "16fab4381f8174e198cacb6a6d037e6742425faa9147243aab8fe941201c8f7e",
    ("mock_bao_desi_dr1", "mean"): "39eaaa67a6e6393889e297c0fffd43bb6a47a5ed320470b637ae8d4a78d07bdc",
    ("mock_bao_desi_dr1", "covariance"): "13a4f2a6b565cc3890a00576b08d09f2a0264ac5230e2e93a922c104916c5d5c",
    # written in the EH98 sound-horizon convention its registry label converts from (the release's convention)
    ("mock_bao_6dfgs", "table"): "31c894020b2bd288ebaa186ffbca37964406207456e5e7f0e56552471cc9a443",
    ("mock_bao_sdss_mgs", "table"): "1ce804834e20dc01826167df7c1fa867c200e144c2a189db102f966131de1742",
    ("mock_bao_sdss_mgs", "chi2_table"): "7390f4fdcf79d306f6685b3574c65878fbfe50d504401a101586fab0a84e429d",
    # the priors' convention (CMB_PRIOR_CONVENTION: recombination z*, CosmoMC's sound speed) replaced the Hu & Sugiyama
    # z* of the truth, with it the means
    ("mock_cmb_planck2018", "mean"): "3efe6ca8c7e573dd8a37bcbcfce471eb3acb2647e765cd19ca77b479cea1d112",
    ("mock_cmb_planck2018", "inverse_covariance"): "0f32c046d3eaa19312ec0bc6f7677ada3b4bb147d19d6b29e7317c13765488a8",
    ("mock_cc_moresco", "table"): "c8112d9425cae1fdbca59dd76c91468c0d15919d1c2c03117def30576ff535ed",
    ("mock_cc_moresco", "systematics"): "577ac2f346e346fe7cf94daa7b7000c05d04ebc8a029cda31e0d8643b956a485",
    ("mock_rsd_fsigma8", "table"): "6e6c1922eace8c58bcde9ee6edae7dac7ecd73753db891661c7af8f49a226dfb",
    ("mock_rsd_fsigma8", "reference_table"): "152498636a77b02dff27bbbc14ceacb508bb01ee3513434c2718b92129e6817c",
    ("mock_rsd_fsigma8", "wigglez"): "078506c771b01d70fac635d5c987de4d217208f745aba0a93e5886a84971fdb7",
    ("mock_rsd_fsigma8", "sdss"): "bb13b8ec45ef52bb2a4e7e0cac96a1a6c03823425e6f83a248ef5bc6d5ea1afc",
}


@pytest.mark.parametrize("name,role", sorted(MOCK_SHA256))
def test_mock_bytes_unchanged(name, role, mock_raw):
    assert hashlib.sha256((mock_raw / MOCKS[name]["files"][role]["path"]).read_bytes()).hexdigest() == MOCK_SHA256[name, role]


def test_every_mock_file_has_a_recorded_digest():
    assert set(MOCK_SHA256) == {(name, role) for name, entry in MOCKS.items() for role in entry["files"]}


@pytest.mark.parametrize("name", sorted(MOCKS))
def test_other_seed_gives_other_values(name, mock_raw, tmp_path):
    first_role = next(iter(MOCKS[name]["files"]))  # the table / mean file, which carries the noise
    path = generate(tmp_path, name, seed=MOCKS[name]["mock"]["seed"] + 1, roles=[first_role])[first_role]
    assert path.read_bytes() != (mock_raw / MOCKS[name]["files"][first_role]["path"]).read_bytes()


def test_no_temporary_files_left(mock_raw):
    assert not [p for p in mock_raw.rglob("*") if p.name.startswith(".")]


# -- (b) format fidelity ---------------------------------------------------------


def layout(data: bytes, comment: str | None = "#") -> tuple:
    """Line ending, final newline, and the number of fields of each (non-comment) line."""
    text = data.decode()
    lines = [ln for ln in text.splitlines() if not (comment and ln.startswith(comment))]
    return ("\r\n" in text, text.endswith("\n"), [len(ln.split()) for ln in lines])


def real_counterparts():
    """(mock name, role) pairs whose real file is in the shared raw folder (not the LaTeX table)."""
    pairs = []
    for name, entry in MOCKS.items():
        for role, spec in entry["files"].items():
            real = REAL_RAW / name.removeprefix("mock_") / Path(spec["path"]).name
            if role != "reference_table" and real.exists():
                pairs.append((name, role, real))
    return pairs


@pytest.mark.skipif(not (REAL_RAW / "SOURCES.md").exists(), reason=RAW_SKIP)
@pytest.mark.parametrize("name,role,real", real_counterparts(), ids=lambda v: v if isinstance(v, str) else "")
def test_layout_matches_real_file(name, role, real, mock_raw):
    mock = (mock_raw / MOCKS[name]["files"][role]["path"]).read_bytes()
    assert layout(mock) == layout(real.read_bytes())


@pytest.mark.skipif(not (REAL_RAW / "SOURCES.md").exists(), reason=RAW_SKIP)
def test_sn_header_equals_real(mock_raw):
    real = (REAL_RAW / "sn_pantheon_plus" / "Pantheon+SH0ES.dat").read_text().splitlines()[0]
    mock = (mock_raw / MOCKS["mock_sn_pantheon_plus"]["files"]["table"]["path"]).read_text().splitlines()[0]
    assert mock == real
    assert len(mock.split()) == 47


def test_sn_table_matches_release_counts(mock_raw):
    lines = (mock_raw / MOCKS["mock_sn_pantheon_plus"]["files"]["table"]["path"]).read_text().splitlines()
    header, rows = lines[0].split(), [ln.split() for ln in lines[1:]]
    column = {name: np.array([r[i] for r in rows]) for i, name in enumerate(header)}
    z = column["zHD"].astype(float)
    calibrator = column["IS_CALIBRATOR"].astype(int) == 1
    assert len(rows) == 1701
    assert np.all(np.diff(z) >= 0)
    assert (z > 0.01).sum() == 1590
    assert calibrator.sum() == 77 and z[calibrator].max() < 0.012
    assert np.all(column["CEPH_DIST"][~calibrator] == "-9") and np.all(column["CEPH_DIST"][calibrator] != "-9")
    assert len(set(column["CID"])) < len(rows)  # repeated light curves of one SN
    assert np.allclose(column["MU_SH0ES"].astype(float) - column["m_b_corr"].astype(float), -FIDUCIAL.M_B, atol=2e-4)


def test_sn_covariance_file_layout(mock_raw):
    data = (mock_raw / MOCKS["mock_sn_pantheon_plus"]["files"]["covariance"]["path"]).read_bytes()
    assert data.split(b"\n", 1)[0] == b"1701"
    assert data.count(b"\n") == 1701**2 + 1 and data.endswith(b"\n")
    values = np.array(data.split()[1:], dtype=float).reshape(1701, 1701)
    asymmetry = np.abs(values - values.T)
    assert 0 < asymmetry.max() <= 1e-5 * np.abs(values).max()  # symmetric to the 6-digit rounding only
    table = (mock_raw / MOCKS["mock_sn_pantheon_plus"]["files"]["table"]["path"]).read_text().splitlines()
    col = table[0].split().index("MU_SH0ES_ERR_DIAG")
    err = np.array([ln.split()[col] for ln in table[1:]], dtype=float)
    assert np.allclose(err, np.sqrt(np.diag(values)), rtol=1e-5)


def test_rsd_files_keep_the_release_quirks(mock_raw):
    files = {role: (mock_raw / spec["path"]).read_bytes() for role, spec in MOCKS["mock_rsd_fsigma8"]["files"].items()}
    main = files["table"]
    assert main.count(b"\r\n") == 21 and main.count(b"\n") == 21 and not main.endswith(b"\n")
    sdss = files["sdss"]
    assert sdss.count(b"\r\n") == 3 and not sdss.endswith(b"\n")
    assert all(len(line.split(b"\t")) == 4 for line in sdss.split(b"\r\n"))
    assert not files["wigglez"].endswith(b"\n") and b"\t" not in files["wigglez"]


@pytest.mark.skipif(not (REAL_RAW / "SOURCES.md").exists(), reason=RAW_SKIP)
def test_rsd_latex_table_keeps_reference_columns(mock_raw):
    def rows(text):
        return [[c.strip() for c in ln.split("&")] for ln in text.splitlines() if re.match(r"^\d", ln)]

    mock = rows((mock_raw / MOCKS["mock_rsd_fsigma8"]["files"]["reference_table"]["path"]).read_text())
    real = rows((REAL_RAW / "rsd_fsigma8" / "Table_with_the_data.txt").read_text())
    assert [float(r[0]) for r in mock] == [float(r[0]) for r in real]
    assert [(r[2], r[3], r[4].rstrip("\\ ")) for r in mock] == [(r[2], r[3], r[4].rstrip("\\ ")) for r in real]


# -- (c) closure: mock -> raw files -> derivation -> fiducial ------------------------


@pytest.mark.parametrize("name", sorted(MOCKS))
def test_closure(name, derived):
    dataset = derived[name]
    assert len(dataset) == MOCKS[name]["expected_points"]
    p = stats.chi2.sf(chi2_against(dataset, FIDUCIAL), len(dataset))
    assert 0.001 < p < 0.999


@pytest.mark.parametrize(
    "name,shift",
    [
        # 5 % in H0 (the size of the Hubble tension) is 0.11 mag on every SN. A shift of Omega_m by 0.05
        # is only ~2.5 sigma for a Pantheon+-like covariance (Brout et al. 2022: +-0.018): Delta chi2 ~ 6,
        # invisible in a 1590-dof goodness of fit.
        ("mock_sn_pantheon_plus", {"H0": FIDUCIAL.H0 * 1.05}),
        # the correlated 5-10 % systematics of the chronometers absorb most of an H0 shift: 30 % is needed
        ("mock_cc_moresco", {"H0": FIDUCIAL.H0 * 1.3}),
    ],
)
def test_closure_fails_for_a_wrong_fiducial(name, shift, derived):
    dataset = derived[name]
    p = stats.chi2.sf(chi2_against(dataset, dataclasses.replace(FIDUCIAL, **shift)), len(dataset))
    assert p < 0.001


# -- (d) the fiducial cosmology against independent numbers -------------------------


def test_distance_modulus_matches_astropy_planck18():
    from astropy.cosmology import Planck18

    # same parameters, massive neutrino (0.06 eV) counted as matter: Omega_m = Om0 + Onu0
    h = Planck18.H0.value / 100
    fid = dataclasses.replace(
        FIDUCIAL, H0=Planck18.H0.value, Omega_m=Planck18.Om0 + Planck18.Onu0, Omega_b_h2=Planck18.Ob0 * h**2
    )
    z = np.linspace(0.01, 2.3, 40)
    assert np.max(np.abs(fid.mu(z) - Planck18.distmod(z).value)) < 1e-3


@pytest.mark.parametrize("fiducial", [FIDUCIAL, PLANCK_TTTEEE], ids=["config", "planck_ttteee"])
def test_background_matches_astropy(fiducial):
    """The numpy background against astropy's FlatLambdaCDM with the same photons and massless neutrinos."""
    from astropy.cosmology import FlatLambdaCDM

    reference = FlatLambdaCDM(
        H0=fiducial.H0, Om0=fiducial.Omega_m, Ob0=fiducial.Omega_b_h2 / fiducial.h**2, Tcmb0=fiducial.T_cmb,
        Neff=fiducial.N_eff, m_nu=0.0,
    )
    z = np.concatenate([np.geomspace(1e-4, 1e4, 200), [fiducial.z_drag, fiducial.z_star]])
    assert fiducial.Omega_gamma == pytest.approx(reference.Ogamma0, rel=1e-12)
    assert np.allclose(fiducial.H(z), reference.H(z).value, rtol=1e-12, atol=0)
    assert np.allclose(fiducial.DM(z), reference.comoving_transverse_distance(z).value, rtol=1e-6, atol=0)
    assert fiducial.DM(0.5) == pytest.approx(reference.comoving_distance(0.5).value, rel=1e-10)


def test_sound_horizon_and_growth_match_scipy():
    """The fixed quadratures against scipy's adaptive ones: r_s(z) = int c_s / (a^2 H) da, and the growth
    equation integrated as an ODE from deep in matter domination."""
    fid = FIDUCIAL

    def integrand(a):
        return C_KM_S / np.sqrt(3 * (1 + fid.baryon_photon_ratio(1 / a - 1))) / (a * a * fid.H(1 / a - 1))

    for z in (0.5, 10.0, 150.0, 1059.94, 1089.92):
        expected = integrate.quad(integrand, 0, 1 / (1 + z), epsabs=0, epsrel=1e-12, limit=400)[0]
        assert fid.sound_horizon(z) == pytest.approx(expected, rel=1e-10)

    def rhs(ln_a, y):
        matter = fid.Omega_m * np.exp(-3 * ln_a)
        omega_m_a = matter / (matter + 1 - fid.Omega_m)
        return [y[1], -(2 - 1.5 * omega_m_a) * y[1] + 1.5 * omega_m_a * y[0]]

    a0 = 1e-4
    sol = integrate.solve_ivp(rhs, (np.log(a0), 0.0), [a0, a0], method="DOP853", rtol=1e-11, atol=1e-15, dense_output=True).sol
    z = np.linspace(0.0, 3.0, 13)
    d, dprime = sol(-np.log1p(z))
    assert np.allclose(fid.growth_factor(z), d / sol(0.0)[0], rtol=1e-8)
    assert np.allclose(fid.growth_rate(z), dprime / d, rtol=1e-8)


def test_distances_match_a_direct_integral():
    fid = FIDUCIAL
    omega_r = fid.omega_gamma_h2 / fid.h**2 * (1 + 7 / 8 * (4 / 11) ** (4 / 3) * fid.N_eff)

    def inverse_e(z):
        return 1 / np.sqrt(fid.Omega_m * (1 + z) ** 3 + omega_r * (1 + z) ** 4 + 1 - fid.Omega_m - omega_r)

    for z in (0.1, 1.0, 2.33):
        dm = C_KM_S / fid.H0 * integrate.quad(inverse_e, 0, z, epsrel=1e-10)[0]
        assert fid.DM(z) == pytest.approx(dm, rel=1e-6)
        assert fid.H(z) == pytest.approx(fid.H0 / inverse_e(z), rel=1e-9)
        assert fid.DV(z) == pytest.approx((z * dm**2 * C_KM_S * inverse_e(z) / fid.H0) ** (1 / 3), rel=1e-6)


def test_bao_observables_by_type_name():
    z = np.array([0.3, 1.1])
    assert np.allclose(FIDUCIAL.bao("DV_over_rd", z) * FIDUCIAL.bao("rd_over_DV", z), 1.0)
    assert np.allclose(FIDUCIAL.bao("H_times_rd", z), C_KM_S / FIDUCIAL.bao("DH_over_rd", z))
    assert np.allclose(FIDUCIAL.bao("DM_over_rd", z), FIDUCIAL.DM(z) / FIDUCIAL.r_d)
    with pytest.raises(ValueError):
        FIDUCIAL.bao("DA_over_Mpc", z)


def test_sound_horizon_against_planck_2018():
    """Planck 2018 VI, Table 2 (TT,TE,EE+lowE+lensing = the config fiducial): r_drag = 147.09 Mpc at
    z_drag = 1059.94, r_* = 144.43 Mpc at z_* = 1089.92. The integral at CAMB's epochs is tested
    tightly; r_d at the fitted z_d (Hu & Sugiyama 1996: 1063.4) within 1.5 Mpc."""
    assert FIDUCIAL.sound_horizon(1059.94) == pytest.approx(147.09, abs=0.3)
    assert FIDUCIAL.sound_horizon(1089.92) == pytest.approx(144.43, abs=0.3)
    assert FIDUCIAL.r_d == pytest.approx(147.09, abs=1.5)


def test_distance_priors_against_chen_2019():
    """Chen, Huang & Wang 2019: R = 1.7502, l_A = 301.471 (TT,TE,EE+lowE), in the convention of
    CMB_PRIOR_CONVENTION. The fiducial's z* (the fit of Aizpuru et al. 2021) is 1.07 below CAMB's 1089.94, its
    massless neutrinos raise l_A by 0.24: together l_A within 0.05 (0.6 sigma) of the prior. At CAMB's z* the same
    sound horizon is CosmoMC's: at Hu & Sugiyama's z*, r_s / D_M is theta_MC (CAMB, one massive neutrino: 1.04088;
    massless neutrinos lower it by 0.0008)."""
    priors = PLANCK_TTTEEE.distance_priors()
    assert PLANCK_TTTEEE.z_star == pytest.approx(1089.94 - 1.07, abs=0.02)
    assert priors["R"] == pytest.approx(1.7502, abs=0.0005)
    assert priors["l_A"] == pytest.approx(301.471, abs=0.05)
    from pbuf_data.model.cosmology import sound_horizon_approx

    hs = 1091.94  # Hu & Sugiyama's z* for these parameters (CAMB's cosmomc_theta uses it)
    theta_mc = sound_horizon_approx(PLANCK_TTTEEE.H, PLANCK_TTTEEE.Omega_b_h2, hs) / PLANCK_TTTEEE.DM(hs)
    assert 100 * theta_mc == pytest.approx(1.04088 - 0.0008, abs=0.0001)


def test_growth():
    assert FIDUCIAL.fsigma8(0.5) == pytest.approx(0.47, abs=0.02)
    assert FIDUCIAL.sigma8_z(0.0) == pytest.approx(FIDUCIAL.sigma8, rel=1e-12)
    z = np.linspace(0.0, 2.0, 9)
    omega_m_z = FIDUCIAL.Omega_m * (1 + z) ** 3 / (FIDUCIAL.Omega_m * (1 + z) ** 3 + 1 - FIDUCIAL.Omega_m)
    assert np.allclose(FIDUCIAL.growth_rate(z), omega_m_z**0.55, rtol=0.01)  # Linder 2005, gamma = 0.55


def test_unknown_role_is_named(tmp_path):
    from pbuf_data.core.errors import PbufDataError

    entry = MOCKS["mock_sn_pantheon_plus"]
    with pytest.raises(PbufDataError, match=r"roles \['covariance', 'table'\], asked for 'inverse_covariance'"):
        write_mock_file(entry, "inverse_covariance", tmp_path / "x.txt", FIDUCIAL_BLOCK, 1)
    assert not list(tmp_path.iterdir())
