"""Inputs of the benchmarks, generated once and cached (``PBUF_BENCH_CACHE``, default $TMPDIR/pbuf-bench-cache).

- :func:`mock_sn` -- the Pantheon+-size mock of the default workflow (1701 light curves, 1701^2 covariance),
  written by ``pbuf_data.read.mock.write_mock_file`` from the ``mock_sn_pantheon_plus`` entry.
- :func:`large_sn` -- an N-row Pantheon+-layout table and an N^2 covariance in the release layout (line 1 N,
  then N^2 values, one per line, 6 significant digits), built like the mock's (intrinsic scatter shared by
  the light curves of one SN, per-survey calibration offsets, a smooth redshift term) and streamed to disk
  block by block, formatted by two processes.
- :func:`mock_registry` -- a registry of many mock datasets of a small format, each with its own seed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from _common import PROJECT, cache_dir, file_digest

SN_ENTRY = "mock_sn_pantheon_plus"


def _registry_entry(name: str) -> dict:
    from pbuf_data.read.registry import load_registry

    return load_registry(PROJECT / "config" / "registry_mock.yaml")[name]


def _fiducial() -> dict:
    import yaml

    return yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())["fiducial_cosmology"]


def mock_sn() -> tuple[Path, dict]:
    """(raw folder, registry entry) of the Pantheon+-size mock; files under <raw>/<entry path>."""
    entry, fiducial = _registry_entry(SN_ENTRY), _fiducial()
    package = PROJECT / "src" / "pbuf_data"
    formats = package / "read" / "formats"  # the generator's code
    key = file_digest([formats / "_sn_mock.py", formats / "_mock.py", formats / "_matrix.py", package / "model" / "cosmology.py"])
    key += "-" + hashlib.sha256(json.dumps([entry, fiducial], sort_keys=True).encode()).hexdigest()[:8]
    raw = cache_dir() / f"mock_sn-{key}"
    done = raw / ".complete"
    if not done.exists():
        from pbuf_data.read.mock import write_mock_file

        for role, spec in entry["files"].items():
            write_mock_file(entry, role, raw / spec["path"], fiducial, entry["mock"]["seed"])
        done.write_text("ok\n")
    return raw, entry


# -- large SN table and covariance --------------------------------------------------------------

LARGE_SN_VERSION = 2  # bump when the generator changes (the cache key)
_SURVEYS = (1, 4, 5, 10, 15, 18, 50, 51, 56, 57, 61, 62, 63, 64, 65, 66, 100, 101, 106, 150)
_STATE: dict = {}


def _init_worker(state):
    _STATE.update(state)


def _covariance_rows(start: int, stop: int) -> np.ndarray:
    s = _STATE
    block = (s["sn"][start:stop, None] == s["sn"][None, :]) * np.outer(s["shared"][start:stop], s["shared"])
    block += (s["survey"][start:stop, None] == s["survey"][None, :]) * np.outer(s["offset"][start:stop], s["offset"])
    block += np.outer(s["smooth"][start:stop], s["smooth"])
    block[np.arange(stop - start), np.arange(start, stop)] += s["measurement"][start:stop] ** 2
    return block


def _format_rows(bounds) -> bytes:
    block = _covariance_rows(*bounds)
    return ("\n".join(map("{:.6g}".format, block.ravel().tolist())) + "\n").encode()


def _distance_modulus(z: np.ndarray, H0=67.36, omega_m=0.3153) -> np.ndarray:
    """Flat LCDM mu(z) by the trapezoid rule on a fine grid (plausible values; no closure test here)."""
    grid = np.linspace(0.0, float(z.max()) * 1.001, 20001)
    inv_e = 1.0 / np.sqrt(omega_m * (1 + grid) ** 3 + 1 - omega_m)
    chi = np.concatenate([[0.0], np.cumsum(0.5 * (inv_e[1:] + inv_e[:-1]) * np.diff(grid))])
    dc = 299792.458 / H0 * np.interp(z, grid, chi)
    return 5 * np.log10((1 + z) * dc) + 25


def large_sn(n: int, seed: int = 10_000) -> tuple[Path, dict]:
    """(raw folder, registry entry) of an ``n``-row Pantheon+-layout table with a dense n x n covariance."""
    name = f"sn_large_{n}"
    raw = cache_dir() / f"{name}-s{seed}-v{LARGE_SN_VERSION}"
    entry = copy.deepcopy(_registry_entry(SN_ENTRY))
    entry.pop("mock", None)
    entry["expected_points"] = None
    entry["title"] = f"benchmark SN table of {n} light curves with a dense covariance"
    for spec in entry["files"].values():
        spec["path"] = f"{name}/{spec['path'].split('/', 1)[1]}"
        spec["allow_unpinned"] = True  # generated benchmark data (not a mock entry any more: no mock block)
    if (raw / ".complete").exists():
        return raw, entry
    from pbuf_data.read.formats._sn_mock import SN_COLUMNS, SN_INTEGER_COLUMNS, SN_REDSHIFT_COLUMNS

    rng = np.random.default_rng(seed)
    # light curves: ~12 % repeats of a SN by another survey, sorted by zHD; 4.5 % calibrators at z < 0.01
    n_sn = int(n / 1.12)
    sn = np.sort(np.concatenate([np.arange(n_sn), rng.choice(n_sn, n - n_sn)]))
    low = rng.uniform(size=n_sn) < 0.065  # as in the release: 6.5 % of the light curves at zHD <= 0.01
    log_z = np.where(low, rng.uniform(math.log10(0.0015), -2.0, n_sn), rng.uniform(-2.0, math.log10(2.26), n_sn))
    z_sn = np.sort(np.round(10**log_z, 5))
    z = z_sn[sn]
    survey = np.where(z < 0.1, rng.choice(_SURVEYS[2:16], n), rng.choice(_SURVEYS, n))
    calibrator = (z < 0.01) & (rng.uniform(size=n) < 0.6)
    measurement = 0.08 + 0.1 * rng.uniform(size=n) + 0.05 * z
    vpec = 5 / math.log(10) * 250.0 / (299792.458 * z)
    state = {
        "sn": sn,
        "survey": survey,
        "shared": np.sqrt(0.1**2 + vpec**2),
        "offset": rng.uniform(0.01, 0.02, 200)[survey],
        "smooth": 0.02 * z / (0.5 + z),
        "measurement": measurement,
    }
    _init_worker(state)
    diag = state["shared"] ** 2 + state["offset"] ** 2 + state["smooth"] ** 2 + measurement**2
    error = np.sqrt(diag)
    mu = np.round(_distance_modulus(z) + rng.normal(0.0, 1.0, n) * error, 6)
    columns = {name: rng.normal(0.0, 1.0, n) for name in SN_COLUMNS}
    columns.update(
        CID=np.array([f"{100000 + i}" for i in sn]),
        IDSURVEY=survey,
        zHD=z,
        zCMB=z,
        zHEL=z,
        m_b_corr=mu - 19.253,
        m_b_corr_err_DIAG=error,
        MU_SH0ES=mu,
        MU_SH0ES_ERR_DIAG=error,
        CEPH_DIST=np.where(calibrator, mu, -9.0),
        IS_CALIBRATOR=calibrator.astype(int),
        USED_IN_SH0ES_HF=((z > 0.0233) & (z < 0.15)).astype(int),
        VPECERR=np.full(n, 250),
        NDOF=rng.integers(5, 150, n),
    )
    folder = raw / name
    folder.mkdir(parents=True, exist_ok=True)
    cells = []
    for col in SN_COLUMNS:
        values = columns[col]
        if col == "CID":
            cells.append(list(values))
        elif col in SN_INTEGER_COLUMNS:
            cells.append([str(int(v)) for v in values])
        elif col in SN_REDSHIFT_COLUMNS:
            cells.append([format(v, ".5f") for v in values])
        else:
            cells.append(list(map("{:.6g}".format, np.asarray(values, dtype=float).tolist())))
    table = "\n".join([" ".join(SN_COLUMNS), *(" ".join(row) for row in zip(*cells))]) + "\n"
    (folder / "Pantheon+SH0ES.dat").write_text(table)
    step = max(1, 2_000_000 // n)
    bounds = [(i, min(n, i + step)) for i in range(0, n, step)]
    tmp = folder / "Pantheon+SH0ES_STAT+SYS.cov.tmp"
    with open(tmp, "wb") as fh:
        fh.write(f"{n}\n".encode())
        with get_context("fork").Pool(max(1, min(2, os.cpu_count() or 1)), _init_worker, (state,)) as pool:
            for text in pool.imap(_format_rows, bounds, chunksize=1):
                fh.write(text)
    tmp.replace(folder / "Pantheon+SH0ES_STAT+SYS.cov")
    (raw / ".complete").write_text("ok\n")
    return raw, entry


# -- registry of many mock datasets --------------------------------------------------------------


def mock_registry(n: int, path: Path, template: str = "mock_bao_desi_dr1") -> Path:
    """Write a registry of ``n`` mock datasets of ``template``'s format (own names, folders and seeds)."""
    import yaml

    document = yaml.safe_load((PROJECT / "config" / "registry_mock.yaml").read_text())
    base = document["datasets"][template]
    datasets = {}
    for i in range(n):
        name = f"{template}_{i:06d}"
        entry = copy.deepcopy(base)
        entry["mock"]["seed"] = 100_000 + i
        entry["title"] = f"{base['title']} #{i}"
        for spec in entry["files"].values():
            spec["path"] = f"{name}/{spec['path'].split('/', 1)[1]}"
        datasets[name] = entry
    path.write_text(yaml.safe_dump({"datasets": datasets}, sort_keys=False))
    return path
