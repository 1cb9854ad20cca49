"""The mock of the supernova layout: a release in the Pantheon+SH0ES.dat layout (every column of the real file, light
curves spread over its surveys, duplicates of one SN correlated) and its STAT+SYS covariance, generated from the
fiducial cosmology."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...model.cosmology import C_KM_S
from . import _mock
from ._matrix import mock_matrix_file


# -- mock: the Pantheon+SH0ES.dat layout and the STAT+SYS covariance ------------------------------------------------


def _two_letters(i: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[i // 26 % 26] + "abcdefghijklmnopqrstuvwxyz"[i % 26]


SN_COLUMNS = (
    "CID IDSURVEY zHD zHDERR zCMB zCMBERR zHEL zHELERR m_b_corr m_b_corr_err_DIAG MU_SH0ES MU_SH0ES_ERR_DIAG "
    "CEPH_DIST IS_CALIBRATOR USED_IN_SH0ES_HF c cERR x1 x1ERR mB mBERR x0 x0ERR COV_x1_c COV_x1_x0 COV_c_x0 "
    "RA DEC HOST_RA HOST_DEC HOST_ANGSEP VPEC VPECERR MWEBV HOST_LOGMASS HOST_LOGMASS_ERR PKMJD PKMJDERR "
    "NDOF FITCHI2 FITPROB m_b_corr_err_RAW m_b_corr_err_VPEC biasCor_m_b biasCorErr_m_b "
    "biasCor_m_b_COVSCALE biasCor_m_b_COVADD"
).split()
SN_INTEGER_COLUMNS = {"IDSURVEY", "IS_CALIBRATOR", "USED_IN_SH0ES_HF", "VPECERR", "NDOF"}
SN_REDSHIFT_COLUMNS = {"zHD", "zCMB", "zHEL"}

# low-z surveys the low-z light curves are spread over: IDSURVEY -> light curves in the real release
LOWZ_SURVEYS = {
    5: 89, 18: 15, 50: 46, 51: 48, 56: 57, 57: 105, 61: 13, 62: 24, 63: 34, 64: 58, 65: 38, 66: 12, 150: 179,
}  # fmt: skip
SIGMA_VPEC = 250.0  # km/s, peculiar-velocity dispersion of Brout et al. 2022 (VPECERR)
SIGMA_INT = 0.1  # mag, intrinsic scatter of the mock
SALT2_ALPHA, SALT2_BETA = 0.148, 3.112  # Tripp standardization coefficients of Brout et al. 2022
CMB_DIPOLE = (167.942, -6.944, 369.82)  # RA, Dec (deg; l, b = 264.021, 48.253) and km/s; Planck 2018 I


@dataclass(frozen=True)
class _Segment:
    """Light curves of one kind: ``rows`` light curves of ``sne`` distinct SNe (the rest are repeats
    by other low-z surveys), zHD uniform on a grid of 1e-5 between ``z_range`` (inclusive, in 1e-5)."""

    rows: int
    sne: int
    z_range: tuple[int, int]
    surveys: tuple[int, ...]
    calibrator: bool = False
    cid: str = "name"  # name: 2007ab-like; number: 123456-like; nick: hst07-like


LOWZ = tuple(LOWZ_SURVEYS)
# Counts as in the real release: 1701 light curves of 1543 SNe, 77 calibrator light curves
# (43 SNe), 111 light curves at zHD <= 0.01, hence exactly 1590 at zHD > 0.01.
SN_SEGMENTS = (
    _Segment(67, 37, (150, 1000), LOWZ, calibrator=True),
    _Segment(10, 6, (1001, 1180), LOWZ, calibrator=True),
    _Segment(44, 34, (350, 1000), LOWZ),
    _Segment(597, 483, (1001, 8000), LOWZ),
    _Segment(321, 321, (6650, 38000), (1,), cid="number"),  # SDSS
    _Segment(160, 160, (24660, 79900), (4,), cid="number"),  # SNLS
    _Segment(203, 203, (13370, 78900), (10,), cid="number"),  # DES
    _Segment(269, 269, (2520, 62000), (15,), cid="number"),  # PS1MD
    _Segment(16, 16, (84000, 139100), (100,), cid="nick"),  # HST
    _Segment(6, 6, (101200, 141600), (101,), cid="nick"),  # SNAP
    _Segment(8, 8, (132900, 226137), (106,), cid="nick"),  # CANDELS
)


def _segment_light_curves(seg: _Segment, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SN index within the segment, IDSURVEY, zHD in 1e-5) of the segment's light curves."""
    z_sn = rng.integers(seg.z_range[0], seg.z_range[1] + 1, seg.sne)
    repeats = np.bincount(rng.choice(seg.sne, seg.rows - seg.sne), minlength=seg.sne) + 1
    sn = np.repeat(np.arange(seg.sne), repeats)
    if len(seg.surveys) == 1:
        survey = np.full(seg.rows, seg.surveys[0])
    else:
        weights = np.array([LOWZ_SURVEYS[s] for s in seg.surveys], dtype=float)
        survey = np.concatenate(
            [rng.choice(seg.surveys, size=k, replace=False, p=weights / weights.sum()) for k in repeats]
        )
    return sn, survey, z_sn[sn]


def _cids(style: str, count: int, offset: int, numbers: np.ndarray) -> list[str]:
    """Unique SN names: 2007ab-like, hst07-like, or the random integers ``numbers`` from ``offset`` on."""
    if style == "name":
        return [f"{1995 + (offset + k) % 25}{_two_letters((offset + k) // 25)}" for k in range(count)]
    if style == "nick":
        return [f"hst{offset + k:02d}" for k in range(count)]
    return [str(v) for v in numbers[offset : offset + count]]


def _sn_light_curves(rng) -> dict[str, np.ndarray]:
    """Per light curve: CID, IDSURVEY, zHD, SN index, calibrator flag, low-z flag; sorted by zHD."""
    parts = {key: [] for key in ("cid", "survey", "z_units", "sn", "calibrator", "lowz")}
    first_sn, used = 0, {"name": 0, "nick": 0, "number": 0}
    numbers = rng.choice(900_000, sum(s.sne for s in SN_SEGMENTS if s.cid == "number"), replace=False) + 1000
    for seg in SN_SEGMENTS:
        sn, survey, z_units = _segment_light_curves(seg, rng)
        cids = np.array(_cids(seg.cid, seg.sne, used[seg.cid], numbers))
        used[seg.cid] += seg.sne
        parts["cid"].append(cids[sn])
        parts["survey"].append(survey)
        parts["z_units"].append(z_units)
        parts["sn"].append(sn + first_sn)
        parts["calibrator"].append(np.full(seg.rows, seg.calibrator))
        parts["lowz"].append(np.full(seg.rows, seg.surveys == LOWZ))
        first_sn += seg.sne
    rows = {key: np.concatenate(value) for key, value in parts.items()}
    order = np.argsort(rows["z_units"], kind="stable")
    rows = {key: value[order] for key, value in rows.items()}
    rows["z"] = rows.pop("z_units") / 1e5
    return rows


def _vpec_magnitudes(z: np.ndarray) -> np.ndarray:
    """Distance-modulus error of a peculiar velocity sigma_v: (5 / ln 10) sigma_v / (c z) (low-z limit)."""
    return 5.0 / math.log(10.0) * SIGMA_VPEC / (C_KM_S * z)


def _sn_covariance(rows: dict, measurement: np.ndarray, rng) -> np.ndarray:
    """Dense STAT+SYS-like covariance of the light curves (mag^2).

    C = diag(measurement^2)
      + [same SN] (sigma_int^2 + sigma_vpec(z)^2)                intrinsic scatter and peculiar velocity,
                                                                 shared by light curves of one SN
      + [same survey] a_s^2, a_s ~ U(0.01, 0.02) mag             per-survey calibration offset
      + w_i w_j, w = 0.02 z / (0.5 + z) mag                      smooth redshift-dependent systematic
    """
    z, sn, survey = rows["z"], rows["sn"], rows["survey"]
    shared = np.sqrt(SIGMA_INT**2 + _vpec_magnitudes(z) ** 2)
    codes, survey_index = np.unique(survey, return_inverse=True)
    offset = rng.uniform(0.01, 0.02, codes.size)[survey_index]
    smooth = 0.02 * z / (0.5 + z)
    covariance = np.diag(measurement**2)
    covariance += (sn[:, None] == sn[None, :]) * np.outer(shared, shared)
    covariance += (survey[:, None] == survey[None, :]) * np.outer(offset, offset)
    covariance += np.outer(smooth, smooth)
    return covariance


def _sn_covariance_file(covariance: np.ndarray, rng) -> tuple[str, np.ndarray]:
    """Text of the covariance file (N, then N*N values one per line, 6 significant digits) and the
    matrix it holds. A relative 1e-7 antisymmetric perturbation before rounding leaves the written
    matrix symmetric only to rounding, like the release's."""
    n = covariance.shape[0]
    tilt = rng.standard_normal((n, n))
    strings, written = _mock.as_written(covariance * (1.0 + 1e-7 * (tilt - tilt.T)), ".6g")
    return _mock.lines([str(n), *strings]), written


def _sn_host_and_fit(rows: dict, rng) -> dict[str, np.ndarray]:
    """Plausible values for the columns no derivation uses (SALT2 fit, host, sky position, redshifts)."""
    n, z, sn = rows["z"].size, rows["z"], rows["sn"]
    n_sn = sn.max() + 1
    ra = rng.uniform(0.0, 360.0, n_sn)[sn]
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_sn)))[sn]
    vpec = (rng.normal(0.0, 150.0, n_sn)[sn]) * np.minimum(1.0, z / 0.005)
    z_cmb = (1.0 + z) * (1.0 + vpec / C_KM_S) - 1.0
    dipole = _dipole_cosine(ra, dec) * CMB_DIPOLE[2] / C_KM_S
    z_err = np.where(rows["lowz"], 2e-5, np.where(z > 0.8, 1e-3, 1e-4))
    c = np.clip(rng.normal(-0.02, 0.08, n), -0.3, 0.3)
    x1 = np.clip(rng.normal(0.0, 1.0, n), -3.0, 3.0)
    c_err = 0.02 + 0.05 * z + np.abs(rng.normal(0.0, 0.01, n))
    x1_err = 0.05 + 0.4 * z + np.abs(rng.normal(0.0, 0.1, n))
    mb_err = 0.02 + 0.05 * z + np.abs(rng.normal(0.0, 0.01, n))
    ndof = rng.integers(5, 150, n)
    fit_chi2 = rng.chisquare(ndof)
    has_host = rng.uniform(size=n_sn)[sn] < 0.42
    host_mass_err = np.where(rng.uniform(size=n) < 0.13, -9.0, np.round(np.abs(rng.normal(0.1, 0.05, n)), 3))
    return {
        "zHDERR": (1.0 + z) * SIGMA_VPEC / C_KM_S + z_err,
        "zCMB": np.round(z_cmb, 5),
        "zCMBERR": z_err,
        "zHEL": np.round((1.0 + z_cmb) / (1.0 + dipole) - 1.0, 5),
        "zHELERR": z_err,
        "c": c,
        "cERR": c_err,
        "x1": x1,
        "x1ERR": x1_err,
        "mBERR": mb_err,
        "COV_x1_c": rng.normal(0.0, 0.3, n) * x1_err * c_err,
        "RA": ra,
        "DEC": dec,
        "HOST_RA": np.where(rows["survey"] == 1, -9.0, -999.0),
        "HOST_DEC": np.where(rows["survey"] == 1, -9.0, -999.0),
        "HOST_ANGSEP": np.where(has_host, np.round(rng.exponential(3.0, n), 4), -9.0),
        "VPEC": vpec,
        "VPECERR": np.full(n, SIGMA_VPEC),
        "MWEBV": 0.004 + rng.exponential(0.03, n_sn)[sn],
        "HOST_LOGMASS": np.clip(rng.normal(10.2, 0.6, n_sn), 7.5, 12.5)[sn],
        "HOST_LOGMASS_ERR": host_mass_err,
        "PKMJD": rng.uniform(49000.0, 59000.0, n_sn)[sn] + rng.normal(0.0, 0.3, n),
        "PKMJDERR": 0.005 + rng.exponential(0.3, n),
        "NDOF": ndof,
        "FITCHI2": fit_chi2,
        "m_b_corr_err_VPEC": _vpec_magnitudes(z),
        "biasCor_m_b": rng.normal(0.0, 0.03, n) - 0.1 * z,
        "biasCorErr_m_b": rng.uniform(0.002, 0.03, n),
        "biasCor_m_b_COVSCALE": np.where(rows["lowz"], 1.0, rng.uniform(0.6, 1.0, n)),
        "biasCor_m_b_COVADD": rng.uniform(0.0, 0.02, n),
    }


def _dipole_cosine(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Cosine of the angle between (ra, dec) and the CMB dipole direction (degrees in)."""
    ra, dec = np.radians(ra), np.radians(dec)
    ra0, dec0 = np.radians(CMB_DIPOLE[0]), np.radians(CMB_DIPOLE[1])
    return np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)


def _salt2_columns(values: dict, m_b_corr: np.ndarray) -> dict:
    """mB, x0 and their covariances consistent with the Tripp relation and SALT2's mB = -2.5 log10(x0) + 10.635."""
    mb = m_b_corr - SALT2_ALPHA * values["x1"] + SALT2_BETA * values["c"] - values["biasCor_m_b"]
    x0 = 10.0 ** (-0.4 * (mb - 10.635))
    x0_err = x0 * values["mBERR"] * math.log(10.0) / 2.5
    return {
        "mB": mb,
        "x0": x0,
        "x0ERR": x0_err,
        "COV_x1_x0": 0.2 * values["x1ERR"] * x0_err,
        "COV_c_x0": -0.5 * values["cERR"] * x0_err,
    }


def _release_table(rows: dict, columns: dict) -> str:
    """The release layout: one header line, whitespace separated, 6 significant digits."""
    text = []
    for name in SN_COLUMNS:
        values = columns[name]
        if name == "CID":
            text.append(list(values))
        elif name in SN_INTEGER_COLUMNS:
            text.append([str(int(v)) for v in values])
        elif name in SN_REDSHIFT_COLUMNS:
            text.append([format(v, ".5f") for v in values])
        else:
            text.append(list(map("{:.6g}".format, np.asarray(values, dtype=float).tolist())))
    return _mock.lines([" ".join(SN_COLUMNS), *(" ".join(cells) for cells in zip(*text))])


def mock_files(entry: dict, fid, rng, roles=None) -> dict[str, str | bytes]:
    rows = _sn_light_curves(rng)
    values = _sn_host_and_fit(rows, rng)
    measurement = np.sqrt(
        values["mBERR"] ** 2 + (SALT2_ALPHA * values["x1ERR"]) ** 2 + (SALT2_BETA * values["cERR"]) ** 2
    )
    cov_text, written = _sn_covariance_file(_sn_covariance(rows, measurement, rng), rng)
    cov_path = entry["files"].get("covariance", {}).get("path", "")
    cov_text, written, error = mock_matrix_file(written, cov_text, entry["options"].get("covariance"), measurement,
                                                cov_path)  # the form the entry says (default: as above)
    if roles is not None and "table" not in roles:
        return {"covariance": cov_text}
    from scipy.special import chdtrc  # the chi2 survival function, for FITPROB only

    _, mu = _mock.as_written(fid.mu(rows["z"]) + _mock.correlated_noise(written, rng), ".6g")
    m_b_corr = mu + fid.M_B
    calibrator = rows["calibrator"]
    n_sn = rows["sn"].max() + 1
    ceph = fid.mu(rows["z"]) + rng.normal(0.0, 1.0, n_sn)[rows["sn"]] * _vpec_magnitudes(rows["z"])
    hubble_flow = rows["lowz"] & ~calibrator & (rows["z"] > 0.0233) & (rows["z"] < 0.15)
    values.update(
        CID=rows["cid"],
        IDSURVEY=rows["survey"],
        zHD=rows["z"],
        m_b_corr=m_b_corr,
        m_b_corr_err_DIAG=error,
        MU_SH0ES=mu,
        MU_SH0ES_ERR_DIAG=error,
        CEPH_DIST=np.where(calibrator, ceph, -9.0),
        IS_CALIBRATOR=calibrator,
        USED_IN_SH0ES_HF=hubble_flow,
        m_b_corr_err_RAW=measurement,
        FITPROB=chdtrc(values["NDOF"], values["FITCHI2"]),
    )
    values.update(_salt2_columns(values, m_b_corr))
    return {"table": _release_table(rows, values), "covariance": cov_text}
