"""The standard dataset type and its on-disk format.

A derived dataset ``<name>`` is two files in the derived folder:

``<name>.npz``
    An uncompressed NumPy archive (readable with ``numpy.load``, no pickles):
    ``z``, ``observable``, ``uncertainty`` (float64, length N), ``covariance``
    (float64, N x N) or, when the covariance is diagonal, ``covariance_diagonal``
    (float64, length N: the variances, without the N x N - N zeros;
    ``numpy.diag(f["covariance_diagonal"])`` is the matrix), ``observable_type``
    (unicode, length N) and optional per-point columns stored as
    ``column.<name>`` (e.g. ``column.omega_m_ref``) and auxiliary arrays as
    ``aux.<name>`` (e.g. a chi-square table). Per-point strings (types, ids)
    are at most ``MAX_STRING_CHARS`` characters, so one odd value cannot make
    a fixed-width string array large. The
    archive is written deterministically (fixed member timestamps), so the
    same inputs give byte-identical files.
``<name>.json``
    ``format_version``, ``name``, ``metadata`` (kind, citation, units,
    selection, ...), ``provenance`` (raw files with sha256, conversions,
    parameters, software versions, time), ``npz_file``, the archive it
    describes (relative to its folder), and ``npz_sha256``, its checksum.

Float64 values round-trip exactly because they never pass through text.

Publication (:func:`publish`) never removes or rewrites a published file in
place: the archive goes to a content-named file ``.versions/<name>-<sha16>.npz``
first, then the document naming it replaces ``<name>.json`` by one rename,
then ``<name>.npz`` (a copy of the versioned file, for numpy-only readers)
is replaced by one rename. :func:`load_dataset` reads the document
and opens exactly the archive it names, so it sees the old dataset or the new
one, never a missing file or a mixed pair. The last two versions of each
dataset are kept, so a reader that read the previous document still finds
its archive.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import layout
from ..core.archive import read_npz, write_npz
from ..core.atomic import atomic_file
from ..core.errors import PbufDataError, suggest
from ..core.integrity import HashingWriter, remember_digest, trusted_sha256

FORMAT_VERSION = 1
CORE_ARRAYS = ("z", "observable", "uncertainty", "covariance", "observable_type")
VERSIONED = re.compile(rf"^{re.escape(layout.VERSIONS)}/(?P<name>[a-z][a-z0-9_]*)-[0-9a-f]{{16}}\.npz$")
MAX_STRING_CHARS = 64  # longest per-point string (numpy stores N x the longest one, 4 bytes a character)
MAX_DENSE_POINTS = 20_000  # a diagonal covariance is expanded to N x N (8 N^2 bytes) only up to this N
_NAME = re.compile(r"[a-z][a-z0-9_]*")  # the registry's dataset name pattern: a file name, never a path


@dataclass
class Dataset:
    """A standard dataset. ``covariance`` is given N x N, or as a length-N vector of
    variances for a diagonal covariance, which is then kept as that vector
    (:attr:`covariance_diagonal`); reading ``covariance`` always gives the N x N matrix."""

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
        covariance = np.asarray(self.covariance, dtype=np.float64)
        if covariance.ndim == 1:  # the variances of a diagonal covariance: the matrix is built when read
            del self.covariance
            self._variances = covariance
        else:
            self.covariance = covariance
        self.observable_type = np.asarray(self.observable_type, dtype=np.str_)
        n = self.z.shape[0] if self.z.ndim == 1 else -1
        problems = []
        for key in ("z", "observable", "uncertainty", "observable_type"):
            if getattr(self, key).shape != (n,):
                problems.append(f"{key} has shape {getattr(self, key).shape}, expected ({n},)")
        if "covariance" in self.__dict__ and self.covariance.shape != (n, n):
            problems.append(f"covariance has shape {self.covariance.shape}, expected ({n}, {n})")
        if "covariance" not in self.__dict__ and self._variances.shape != (n,):
            problems.append(f"covariance diagonal has shape {self._variances.shape}, expected ({n},)")
        for key, col in self.columns.items():
            if np.asarray(col).shape[:1] != (n,):
                problems.append(f"column '{key}' has {np.asarray(col).shape[:1]} rows, expected {n}")
        if problems:
            raise PbufDataError("; ".join(problems), dataset=self.name, check="shapes")
        for key, values in [("observable_type", self.observable_type), *((f"column '{k}'", np.asarray(v)) for k, v in self.columns.items())]:
            if values.dtype.kind == "U" and values.dtype.itemsize > 4 * MAX_STRING_CHARS:
                lengths = np.char.str_len(values)
                i = int(np.argmax(lengths))
                raise PbufDataError(
                    f"{key}: point {i + 1} holds a string of {lengths[i]} characters ({str(values[i])[:20]!r}...); "
                    f"per-point strings are limited to {MAX_STRING_CHARS}",
                    dataset=self.name,
                    check="string length",
                )

    def __getattr__(self, key):
        # only reached for attributes not set: ``covariance`` of a diagonal dataset
        variances = self.__dict__.get("_variances")
        if key != "covariance" or variances is None:
            raise AttributeError(key)
        if variances.size > MAX_DENSE_POINTS:
            raise PbufDataError(
                f"diagonal covariance of {variances.size} points: the N x N matrix would take "
                f"{8 * variances.size**2 / 2**30:.0f} GiB; use covariance_diagonal (at most {MAX_DENSE_POINTS} points are expanded)",
                dataset=self.name,
                check="covariance size",
            )
        return np.diag(variances)

    @property
    def covariance_diagonal(self) -> np.ndarray | None:
        """The variances when the covariance is diagonal (as given, or a dense matrix with zero off-diagonal), else None."""
        if "covariance" not in self.__dict__:
            return self._variances
        dense = self.__dict__["covariance"]
        diagonal = np.diagonal(dense)
        return diagonal.copy() if np.count_nonzero(dense) == np.count_nonzero(diagonal) else None

    def __len__(self) -> int:
        return self.z.shape[0]

    @property
    def inverse_covariance(self) -> np.ndarray:
        return np.linalg.inv(self.covariance)

    # -- likelihood (see :mod:`pbuf_data.model.likelihood`) ---------------------------
    def likelihood(self, *, form: str = "auto", marginalize_offset: bool | None = None):
        """The dataset's likelihood object, built once per option set (its Cholesky factor is cached)."""
        from .likelihood import Likelihood

        key = (form, marginalize_offset)
        cache = self.__dict__.setdefault("_likelihoods", {})
        if key not in cache:
            cache[key] = Likelihood(self, form=form, marginalize_offset=marginalize_offset)
        return cache[key]

    def chi2(self, theory, **options) -> float:
        """chi2 of ``theory`` (a vector in the dataset's order, or a callable ``theory(z, observable_type)``)."""
        return self.likelihood(**options).chi2(theory)

    def loglike(self, theory, **options) -> float:
        """ln L of ``theory`` up to a theory-independent constant: -chi2/2."""
        return self.likelihood(**options).loglike(theory)

    # -- file layout ------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        diagonal = self.covariance_diagonal
        out = {}
        for key in CORE_ARRAYS:
            if key == "covariance" and diagonal is not None:
                out["covariance_diagonal"] = diagonal
            else:
                out[key] = getattr(self, key)
        out.update({f"column.{k}": np.asarray(v) for k, v in self.columns.items()})
        out.update({f"aux.{k}": np.asarray(v) for k, v in self.aux.items()})
        return out

    def save(self, npz_path: str | Path, json_path: str | Path, arrays_written=None) -> None:
        """Write both files atomically: each goes to a temporary file first, then is renamed. ``arrays_written()``
        is called once the archive's bytes are hashed and written to the file object (which keeps no reference to
        the arrays: they are not read after), before they are flushed to disk."""
        npz_path, json_path = Path(npz_path), Path(json_path)
        npz_sha = atomic_write(npz_path, lambda fh: write_npz(fh, self.arrays()), arrays_written)
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
        atomic_write(json_path, lambda fh: fh.write(text.encode()))


def load_dataset(name: str, root: str | Path | None = None, *, corpus: str | None = None,
                 verify: bool = False) -> Dataset:
    """Load the published dataset ``name`` from a result tree (``results/<corpus>/derived``).

    ``root`` may be a result tree itself (any folder holding ``derived/``), a folder holding result trees
    (``results/<corpus>/``, such as a copy of a project's results), or a project folder or one of its
    sub-folders (default: the current folder). In a project,
    ``corpus`` names the tree; without it, the one tree that holds ``name`` is used (mock and real dataset
    names differ), and a name published in several trees is refused, naming them.
    Reads the dataset document once and then opens exactly the archive it names, so a concurrent
    republication is never seen half-way. With ``verify=True`` the archive's sha256 is checked against the
    one recorded in its document (the digest this process computed when it wrote the archive, if it did and
    the file is unchanged since: :func:`pbuf_data.core.integrity.trusted_sha256`).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PbufDataError(f"{str(name)[:80]!r} is not a dataset name (lower-case letters, digits and '_', "
                            "starting with a letter)", check="name")
    folder = _derived_folder(name, root, corpus)
    json_path = folder / f"{name}.json"
    if not json_path.exists():
        hint = suggest(name, sorted(p.stem for p in folder.glob("*.json")))
        if hint:
            raise PbufDataError(f"derived dataset not found{hint}", dataset=name, file=str(json_path), check="exists")
    _inside(json_path, folder, name, "the document")
    document = read_document(json_path, name)
    same_dataset(document, name, json_path)
    archive = folder / archive_name(document, json_path)
    _inside(archive, folder, name, "the archive the document names")
    return _read_arrays(document, archive, json_path, verify)


def same_dataset(document: dict, name: str, json_path: Path) -> None:
    """A document put in the place of another dataset's is refused, not returned under the name asked for."""
    if document["name"] != name:
        raise PbufDataError(f"the document is of dataset {str(document['name'])[:80]!r}, not of {name!r} (a file "
                            "put in its place?): not read", dataset=name, file=str(json_path), check="document")


def _inside(path: Path, folder: Path, name: str, what: str) -> None:
    """``path`` (a link resolved) must lie in the derived ``folder``: nothing outside the tree is opened."""
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as exc:  # a link loop
        raise PbufDataError(f"cannot resolve {what}: {exc}", dataset=name, file=str(path), check="path") from None
    if not inside:
        raise PbufDataError(f"{what} leads out of the derived folder (a symbolic link?): not opened", dataset=name,
                            file=str(path), check="path")


def _derived_folder(name: str, root: str | Path | None, corpus: str | None) -> Path:
    """The derived folder ``load_dataset`` reads: of the tree given, named, or the one holding ``name``."""
    from ..core.locate import find_project

    if root is not None and corpus is None and (Path(root) / "derived").is_dir():
        return Path(root) / "derived"
    # a project, or a copy of its results (a folder holding results/<corpus>/derived)
    project = Path(root) if root is not None and (Path(root) / layout.RESULTS).is_dir() else find_project(root)
    if corpus is not None:
        return project / layout.Tree(corpus).derived
    trees = layout.trees(project)
    holding = [t for t in trees if (project / t.published(name, "json")).exists()]
    if len(holding) > 1:
        raise PbufDataError(f"published in several result trees ({', '.join(t.base for t in holding)}): pass corpus=",
                            dataset=name, check="corpus")
    if holding:
        return project / holding[0].derived
    known = sorted({p.stem for t in trees for p in (project / t.derived).glob("*.json")})
    where = ", ".join(t.base for t in trees) or f"no result tree in {project / layout.RESULTS}"
    raise PbufDataError(f"derived dataset not found in {where} (run the workflow for it first){suggest(name, known)}",
                        dataset=name, check="exists")


def read_dataset(npz_path: str | Path, json_path: str | Path, *, verify: bool = False) -> Dataset:
    """A dataset from an explicit pair of files (e.g. the staged copy of a derivation)."""
    npz_path, json_path = Path(npz_path), Path(json_path)
    document = read_document(json_path, npz_path.stem)
    return _read_arrays(document, npz_path, json_path, verify)


def _missing(name, path) -> PbufDataError:
    return PbufDataError("derived dataset not found (run the workflow for it first)", dataset=name, file=str(path),
                         check="exists")


def read_document(json_path: Path, name: str) -> dict:
    try:
        text = json_path.read_text()
    except FileNotFoundError:
        raise _missing(name, json_path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PbufDataError(f"unreadable dataset document: {exc}", dataset=name, file=str(json_path)) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PbufDataError(f"unreadable dataset document: {exc}", dataset=name, file=str(json_path)) from None
    required = {"format_version", "name", "npz_sha256", "metadata", "provenance"}
    if not isinstance(document, dict) or not required <= set(document):
        missing = sorted(required - set(document)) if isinstance(document, dict) else sorted(required)
        raise PbufDataError(f"dataset document lacks {missing}", dataset=name, file=str(json_path), check="document")
    if not isinstance(document["name"], str) or not _NAME.fullmatch(document["name"]):
        raise PbufDataError(f"the document's name {str(document['name'])[:80]!r} is not a dataset name: not read",
                            dataset=name, file=str(json_path), check="document")
    if document.get("format_version") != FORMAT_VERSION:
        raise PbufDataError(
            f"format_version {document.get('format_version')!r} is not {FORMAT_VERSION}",
            dataset=name,
            file=str(json_path),
            check="format version",
        )
    return document


def archive_name(document: dict, json_path: Path) -> str:
    """The archive a published document names: its sibling ``<name>.npz`` or its own versioned file."""
    name = document["name"]
    member = document.get("npz_file", f"{name}.npz")
    match = VERSIONED.match(member) if isinstance(member, str) else None
    if member != f"{name}.npz" and not (match and match["name"] == name):
        raise PbufDataError(f"npz_file {member!r} is not this dataset's archive", dataset=name, file=str(json_path),
                            check="document")
    return member


def _read_arrays(document: dict, npz_path: Path, json_path: Path, verify: bool) -> Dataset:
    name = document["name"]
    if verify:
        try:
            actual = trusted_sha256(npz_path)
        except FileNotFoundError:
            raise _missing(name, npz_path) from None
        if actual != document["npz_sha256"]:
            raise PbufDataError(
                f"sha256 {actual} differs from the recorded {document['npz_sha256']}",
                dataset=name,
                file=str(npz_path),
                check="sha256",
            )
    try:
        arrays = read_npz(npz_path)
    except FileNotFoundError:
        raise _missing(name, npz_path) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise PbufDataError(f"unreadable array archive: {exc}", dataset=name, file=str(npz_path)) from None
    if "covariance_diagonal" in arrays:
        arrays["covariance"] = arrays.pop("covariance_diagonal")  # Dataset takes the variances as they are
    missing = [key for key in CORE_ARRAYS if key not in arrays]
    if missing:
        raise PbufDataError(f"archive lacks arrays {missing}", dataset=name, file=str(npz_path))
    return Dataset(
        name=name,
        **{key: arrays[key] for key in CORE_ARRAYS},
        metadata=document["metadata"],
        provenance=document["provenance"],
        columns={k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("column.")},
        aux={k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("aux.")},
    )


def atomic_write(path: Path, write, written=None) -> str:
    """Write through ``write(fh)`` atomically (see :mod:`pbuf_data.core.atomic`); return the content's sha256.
    ``written()``, if given, is called once every byte is hashed and written to the file object, before the fsync."""
    with atomic_file(path) as fh:
        hashing = HashingWriter(fh)
        try:
            write(hashing)
        finally:
            hashing.close()
        if written is not None:
            written()
    remember_digest(path, hashing.hexdigest())
    return hashing.hexdigest()
