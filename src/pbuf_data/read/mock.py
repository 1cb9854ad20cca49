"""Mock survey files: the real releases' layouts filled from the fiducial flat LCDM.

The embedded default of the workflow derives these files exactly as it derives
the real ones (same registry formats, same readers). Each layout module's
``mock_files`` (:mod:`pbuf_data.read.formats`) rebuilds a dataset's mock in memory
from (entry, fiducial, seed) and returns the text of its files by registry
role, so the files of one dataset are consistent with each other whichever one
is written: the noise of a mean file is drawn, through a Cholesky factor, from
the covariance *as written* (rounded, symmetrized) in its companion file.
Random numbers come from ``numpy.random.default_rng(seed)`` only, so a seed
fixes every byte. A generator may skip the work that only other roles need (the
Pantheon+ covariance file skips the table), never a random draw that comes
before the asked-for file's.

Layouts, row orders, redshifts and error budgets follow the real files
described in the raw folder's SOURCES.md: Pantheon+ (Scolnic et al. 2022;
Brout et al. 2022), BOSS DR12 (Alam et al. 2017), DESI 2024 VI, 6dFGS
(Beutler et al. 2011), SDSS MGS (Ross et al. 2015), Planck 2018 distance
priors (Chen, Huang & Wang 2019), cosmic chronometers (Moresco et al. 2020,
2022), the Gold-2018 f sigma8 compilation (Sagredo, Nesseris & Sapone 2018)
and eBOSS DR16-like likelihood tables and grids.
"""

from __future__ import annotations

import numpy as np

from ..core.atomic import write_bytes
from ..core.errors import PbufDataError
from ..model.cosmology import Fiducial
from .formats import layout


def write_mock_file(entry: dict, role: str, path, fiducial: dict, seed: int) -> None:
    """Write the file of registry role ``role`` of the mock described by ``entry`` to ``path``.

    ``entry`` is the dataset's registry entry (schema defaults filled in),
    ``fiducial`` the ``fiducial_cosmology`` block of the configuration.
    The file is written atomically: a temporary file in the same folder, then
    ``os.replace``.
    """
    if role not in entry["files"]:
        raise PbufDataError(f"the registry entry has roles {sorted(entry['files'])}, asked for '{role}'", check="mock role")
    texts = mock_files(entry, fiducial, seed, roles={role})
    if role not in texts:
        raise PbufDataError(
            f"the mock generator of format '{entry['format']}' writes roles {sorted(texts)}, asked for '{role}'",
            check="mock role",
        )
    content = texts[role]
    write_bytes(path, content if isinstance(content, bytes) else content.encode("utf-8"))  # bytes: .npz, gzip


def mock_files(entry: dict, fiducial: dict, seed: int, roles: set[str] | None = None) -> dict[str, str | bytes]:
    """Text of the files of the mock dataset by registry role (bytes for binary or gzip files): every file, or at
    least ``roles``."""
    try:
        generator = layout(entry["format"]).mock_files
    except PbufDataError:
        raise PbufDataError(f"no mock generator for format '{entry['format']}'", check="mock format") from None
    return generator(entry, Fiducial.from_config(fiducial), np.random.default_rng(seed), roles)
