"""The data folder's layout: every path the workflow and the library write or read under ``data/``.

Paths are relative to the project root, as Snakemake's rules use them. The
functions take a dataset name; the rules pass ``"{dataset}"`` to get a
wildcard pattern.

``derived/<name>.json`` names the archive it describes (``npz_file``), a
content-named file ``derived/.versions/<name>-<sha256[:16]>.npz``;
``derived/<name>.npz`` is a copy of that file for readers using numpy
alone. ``state/<name>.json`` is the receipt of a dataset's last successful
job (the job's declared output; never a published file).
"""

from __future__ import annotations

DATA = "data"
DERIVED = f"{DATA}/derived"
VERSIONS = ".versions"  # inside DERIVED
STAGING = f"{DATA}/staging"
VALIDATION = f"{DATA}/validation"
STATE = f"{DATA}/state"
MANIFESTS = f"{DATA}/manifests"
DERIVED_MANIFEST = f"{MANIFESTS}/derived.sha256"
LOGS = f"{DATA}/logs"
BACKUPS = f"{DATA}/backups"
PLOTS = f"{DATA}/plots"
RAW_CACHE = f"{DATA}/raw_cache"  # raw files downloaded because raw_dir lacks them
MOCK_RAW = f"{DATA}/mock/raw"  # generated raw files of the embedded default
BACKUP_RECORD = f"{LOGS}/backup/last_backup.json"
SUMMARY_JSON = f"{VALIDATION}/summary.json"
SUMMARY_TXT = f"{VALIDATION}/summary.txt"
SUMMARY_HTML = f"{PLOTS}/summary.html"  # the report's page of it (a dataset's plots are <name>_<figure>.<ext>)
EXPORTS = f"{DATA}/exports"  # files fitting codes read: Cobaya's own classes, SACC (pbuf_data.export)
# folders whose every file is in the manifest (verify reports any other file there)
WATCHED = (DERIVED, VALIDATION, EXPORTS)


def published(name: str, ext: str) -> str:
    """``ext`` is ``npz`` or ``json``."""
    return f"{DERIVED}/{name}.{ext}"


def version(name: str, sha256: str) -> str:
    """The content-named archive, relative to DERIVED (as the dataset document names it)."""
    return f"{VERSIONS}/{name}-{sha256[:16]}.npz"


def staged(name: str, ext: str) -> str:
    return f"{STAGING}/{name}.{ext}"


def report(name: str, ext: str) -> str:
    """Validation report (``json`` or ``txt``)."""
    return f"{VALIDATION}/{name}.{ext}"


def receipt(name: str) -> str:
    return f"{STATE}/{name}.json"


def export_receipt(name: str) -> str:
    """Receipt of a dataset's exports (the export job's output; the files are in EXPORTS, named ``<name>.*``)."""
    return f"{STATE}/{name}.exports.json"


def job_log(step: str, name: str) -> str:
    return f"{LOGS}/{step}/{name}.log"


def benchmark(step: str, name: str) -> str:
    return f"{LOGS}/benchmarks/{step}/{name}.tsv"


def plot(name: str, figure: str, ext: str = "png") -> str:
    return f"{PLOTS}/{name}_{figure}.{ext}"
