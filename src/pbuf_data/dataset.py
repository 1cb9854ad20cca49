"""The standard dataset type and its on-disk format.

A derived dataset ``<name>`` is two files in the derived folder:

``<name>.npz``
    An uncompressed NumPy archive (readable with ``numpy.load``, no pickles):
    ``z``, ``observable``, ``uncertainty`` (float64, length N), ``covariance``
    (float64, N x N), ``observable_type`` (unicode, length N) and optional
    per-point columns stored as ``column.<name>`` (e.g. ``column.omega_m_ref``)
    and auxiliary arrays as ``aux.<name>`` (e.g. a chi-square table). The
    archive is written deterministically (fixed member timestamps), so the
    same inputs give byte-identical files.
``<name>.json``
    ``format_version``, ``name``, ``metadata`` (kind, citation, units,
    selection, ...), ``provenance`` (raw files with sha256, conversions,
    parameters, software versions, time) and ``npz_sha256``, the checksum of
    the archive it describes.

Float64 values round-trip exactly because they never pass through text.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import PbufDataError, suggest
from .integrity import HashingWriter, sha256_file

FORMAT_VERSION = 1
CORE_ARRAYS = ("z", "observable", "uncertainty", "covariance", "observable_type")


@dataclass
class Dataset:
    name: str
    z: np.ndarray
    observable: np.ndarray
    uncertainty: np.ndarray
    covariance: np.ndarray
    observable_type: np.ndarray
    metadata: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    aux: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.z = np.asarray(self.z, dtype=np.float64)
        self.observable = np.asarray(self.observable, dtype=np.float64)
        self.uncertainty = np.asarray(self.uncertainty, dtype=np.float64)
        self.covariance = np.asarray(self.covariance, dtype=np.float64)
        self.observable_type = np.asarray(self.observable_type, dtype=np.str_)
        n = self.z.shape[0] if self.z.ndim == 1 else -1
        problems = []
        for key in ("z", "observable", "uncertainty", "observable_type"):
            if getattr(self, key).shape != (n,):
                problems.append(f"{key} has shape {getattr(self, key).shape}, expected ({n},)")
        if self.covariance.shape != (n, n):
            problems.append(f"covariance has shape {self.covariance.shape}, expected ({n}, {n})")
        for key, col in self.columns.items():
            if np.asarray(col).shape[:1] != (n,):
                problems.append(f"column '{key}' has {np.asarray(col).shape[:1]} rows, expected {n}")
        if problems:
            raise PbufDataError("; ".join(problems), dataset=self.name, check="shapes")

    def __len__(self) -> int:
        return self.z.shape[0]

    @property
    def inverse_covariance(self) -> np.ndarray:
        return np.linalg.inv(self.covariance)

    # -- file layout ------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {key: getattr(self, key) for key in CORE_ARRAYS}
        out.update({f"column.{k}": np.asarray(v) for k, v in self.columns.items()})
        out.update({f"aux.{k}": np.asarray(v) for k, v in self.aux.items()})
        return out

    def save(self, npz_path: str | Path, json_path: str | Path) -> None:
        """Write both files atomically: each goes to a temporary file first, then is renamed."""
        npz_path, json_path = Path(npz_path), Path(json_path)
        npz_sha = _atomic_write(npz_path, lambda fh: _write_npz(fh, self.arrays()))
        document = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "n_points": len(self),
            "npz_file": npz_path.name,
            "npz_sha256": npz_sha,
            "metadata": self.metadata,
            "provenance": self.provenance,
        }
        text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"
        _atomic_write(json_path, lambda fh: fh.write(text.encode()))


def load_dataset(name: str, root: str | Path | None = None, *, verify: bool = False) -> Dataset:
    """Load the derived dataset ``name`` from ``<root>/data/derived``.

    ``root`` defaults to the project containing the current folder. With
    ``verify=True`` the archive's sha256 is checked against the one recorded in
    its JSON document.
    """
    from .locate import find_project

    folder = find_project(root) / "data" / "derived"
    json_path, npz_path = folder / f"{name}.json", folder / f"{name}.npz"
    if not json_path.exists():
        hint = suggest(name, sorted(p.stem for p in folder.glob("*.json")))
        if hint:
            raise PbufDataError(f"derived dataset not found{hint}", dataset=name, file=str(json_path), check="exists")
    return read_dataset(npz_path, json_path, verify=verify)


def read_dataset(npz_path: str | Path, json_path: str | Path, *, verify: bool = False) -> Dataset:
    npz_path, json_path = Path(npz_path), Path(json_path)
    for path in (json_path, npz_path):
        if not path.exists():
            raise PbufDataError(
                "derived dataset not found (run the workflow for it first)",
                dataset=npz_path.stem,
                file=str(path),
                check="exists",
            )
    try:
        document = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PbufDataError(f"unreadable dataset document: {exc}", dataset=json_path.stem, file=str(json_path)) from None
    required = {"format_version", "name", "npz_sha256", "metadata", "provenance"}
    if not isinstance(document, dict) or not required <= set(document):
        missing = sorted(required - set(document)) if isinstance(document, dict) else sorted(required)
        raise PbufDataError(f"dataset document lacks {missing}", dataset=json_path.stem, file=str(json_path), check="document")
    if document.get("format_version") != FORMAT_VERSION:
        raise PbufDataError(
            f"format_version {document.get('format_version')!r} is not {FORMAT_VERSION}",
            dataset=json_path.stem,
            file=str(json_path),
            check="format version",
        )
    if verify:
        actual = sha256_file(npz_path)
        if actual != document["npz_sha256"]:
            raise PbufDataError(
                f"sha256 {actual} differs from the recorded {document['npz_sha256']}",
                dataset=document["name"],
                file=str(npz_path),
                check="sha256",
            )
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise PbufDataError(f"unreadable array archive: {exc}", dataset=document.get("name"), file=str(npz_path)) from None
    missing = [key for key in CORE_ARRAYS if key not in arrays]
    if missing:
        raise PbufDataError(f"archive lacks arrays {missing}", dataset=document.get("name"), file=str(npz_path))
    return Dataset(
        name=document["name"],
        **{key: arrays[key] for key in CORE_ARRAYS},
        metadata=document["metadata"],
        provenance=document["provenance"],
        columns={k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("column.")},
        aux={k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("aux.")},
    )


def _atomic_write(path: Path, write) -> str:
    """Write through ``write(fh)`` atomically (see :mod:`pbuf_data.atomic`); return the content's sha256."""
    with atomic_file(path) as fh:
        hashing = HashingWriter(fh)
        write(hashing)
    return hashing.hexdigest()


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """An ``np.savez``-compatible archive whose bytes depend only on the arrays."""
    with zipfile.ZipFile(_Unseekable(fh), "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)


class _Unseekable:
    """Present a write-only stream to zipfile (it then writes data descriptors, no seeks)."""

    def __init__(self, fh):
        self.fh, self.pos = fh, 0

    def write(self, data):
        self.fh.write(data)
        self.pos += len(data)
        return len(data)

    def tell(self):
        return self.pos

    def flush(self):
        pass
