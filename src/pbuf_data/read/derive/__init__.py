"""Derivations: raw release files -> a standard :class:`~pbuf_data.model.dataset.Dataset`.

Each registry ``format`` is read by ``derive(options, files) -> Result`` of its layout module
(:mod:`pbuf_data.read.formats`). This module resolves and checks the raw files, calls it, and records metadata and
provenance around the result.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ...core.errors import PbufDataError
from ...model.dataset import Dataset
from ..formats import layout, source_files
from ..formats._common import Result, conversion  # noqa: F401  (what a layout's reader returns)
from ...core.logs import software_versions
from ..textio import RawFile

# source files, relative to the package, whose code makes every dataset
_COMMON_CODE = (
    "core/errors.py", "read/textio.py", "read/blockparse.py", "model/matrix.py", "model/dataset.py",
    "model/cosmology.py", "core/integrity.py", "read/registry.py", "read/schema.py", "read/rawio.py",
    "read/derive/__init__.py", "read/formats/__init__.py",
)


def code_fingerprint(fmt: str, package: Path | None = None) -> str:
    """sha256 (16 hex digits) over the source files that derive datasets of format ``fmt``.

    The common code and the layout's files (its module and the helpers it imports,
    :func:`pbuf_data.read.formats.source_files`), of the installed package or of ``package``.
    Recorded in provenance and passed to the workflow's jobs as a parameter, so
    a change of the derivation code reruns exactly the datasets it affects.
    """
    import hashlib

    package = Path(__file__).resolve().parents[2] if package is None else Path(package)
    digest = hashlib.sha256()
    for path in (*(package / name for name in _COMMON_CODE), *source_files(fmt, package / "read" / "formats")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def raw_files(
    name: str,
    entry: dict,
    raw_dir: str | Path | None = None,
    paths: dict | None = None,
    max_bytes: int | None = None,
) -> dict[str, RawFile]:
    """The dataset's raw files, each confined to its raw folder and read once into memory.

    Either ``raw_dir`` (paths are the registry's, relative to it) or ``paths``
    (role -> path ending with the registry path, as Snakemake passes them).
    Each file is opened without following links, must be a regular file of at
    most ``max_bytes`` and is hashed while it is read (:meth:`RawFile.read`;
    a file above 64 MiB is read, hashed and checked against its pin by its
    parse); the derivation parses exactly these bytes.
    """
    from ..registry import resolve_raw_path  # imported here: jsonschema and yaml are not needed to derive

    files = {}
    for role, spec in entry["files"].items():
        rel = spec["path"]
        if paths is None:
            root = Path(raw_dir)
        else:
            given = str(paths[role])
            if not given.endswith(rel):
                raise PbufDataError(f"input {given} does not end with the registry path", dataset=name, file=rel)
            root = Path(given[: len(given) - len(rel)] or ".")
        resolve_raw_path(root, rel, dataset=name)
        files[role] = RawFile.read(root, rel, name, max_bytes=max_bytes, pin=spec.get("sha256"))
    return files


def check_pins(name: str, entry: dict, files: dict[str, RawFile]) -> None:
    """Before anything is parsed: each file's bytes against its pin (:meth:`RawFile.check_pin`).

    A real (non-mock) file without a pin is refused unless its registry spec says ``allow_unpinned: true`` (its
    record then says ``"pinned": false``); an unpinned file with several hard links is refused (its content could
    be a file from outside the raw folder, which an error message would then quote). A file not kept in memory
    is left to its parse, which hashes the bytes it parses and checks them against the pin at the end of its
    read (:meth:`RawFile.counted_matrix`).
    """
    for role, raw in files.items():
        spec = entry["files"][role]
        if not spec.get("sha256") and "mock" not in entry:
            if not spec.get("allow_unpinned"):
                raise raw.error(
                    f"no sha256 pin in the registry (the file's sha256 is {raw.digest()}); add it as "
                    f"files.{role}.sha256, or set files.{role}.allow_unpinned: true to derive from unpinned content",
                    check="sha256 pin",
                )
            if raw.links > 1:  # nothing of its content is parsed or quoted
                raise raw.error(
                    f"unpinned raw file has {raw.links} hard links: its content may be another file's; give it a "
                    f"copy of its own or pin it (files.{role}.sha256)",
                    check="hard link",
                )
        if raw.data is not None:
            raw.check_pin()


def raw_file_records(entry: dict, files: dict[str, RawFile]) -> list[dict]:
    """After the parse: the provenance record of each raw file, the sha256 of its bytes as read (a file not kept
    in memory that no layout parsed is read, hashed and checked against its pin now)."""
    records = []
    for role, raw in files.items():
        spec = entry["files"][role]
        raw.check_pin()
        records.append(
            {
                "role": role,
                "path": spec["path"],
                "sha256": raw.digest(),
                "bytes": raw.nbytes,
                "pinned": bool(spec.get("sha256")),
                "url": spec.get("url"),
            }
        )
    return records


def creation_time() -> str:
    """UTC time of the derivation; SOURCE_DATE_EPOCH (reproducible-builds convention) fixes it."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = int(epoch) if epoch else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def derive_dataset(
    name: str,
    entry: dict,
    raw_dir: str | Path | None = None,
    *,
    paths: dict | None = None,
    max_bytes: int | None = None,
) -> Dataset:
    """Derive dataset ``name`` described by its registry ``entry`` from its raw files.

    The files are found under ``raw_dir`` or given as ``paths`` (role -> path).
    Each is read once and checked against its sha256 pin before anything parsed from it is used (a file
    kept in memory before its parse, a larger one at the end of the read that parses it).
    """
    files = raw_files(name, entry, raw_dir, paths, max_bytes=max_bytes)
    check_pins(name, entry, files)
    try:
        result: Result = layout(entry["format"]).derive(entry["options"], files)
        records = raw_file_records(entry, files)
    except PbufDataError as exc:
        raise exc.with_context(dataset=name) from None
    expected = entry.get("expected_points")
    if expected is not None and len(result.z) != expected:
        raise PbufDataError(
            f"derived {len(result.z)} points, the registry expects {expected}", dataset=name, check="expected_points"
        )
    metadata = {
        "name": name,
        "kind": entry["kind"],
        "format": entry["format"],
        "title": entry["title"],
        "citation": entry["citation"],
        "release": entry.get("release"),
        "mock": "mock" in entry,
        "n_points": int(len(result.z)),
        "unpinned_raw_files": [r["path"] for r in records if not r["pinned"] and "mock" not in entry],
        "observable_types": sorted(set(result.observable_type.tolist())),
        "units": result.units,
        **result.metadata,
    }
    provenance = {
        "raw_files": records,
        "conversions": result.conversions,
        "options": entry["options"],
        "software": software_versions(),
        "created_utc": creation_time(),
    }
    return Dataset(
        name=name,
        z=result.z,
        observable=result.observable,
        uncertainty=result.uncertainty,
        covariance=result.covariance,
        observable_type=result.observable_type,
        metadata=metadata,
        provenance=provenance,
        columns=result.columns,
        aux=result.aux,
    )
