"""Where everything lives: the inputs under ``data/`` and one result tree per corpus under ``results/``.

Paths are relative to the project root, as Snakemake's rules use them.

Inputs, shared by every corpus (their content is pinned or generated, never published; ``data/README.md``):
``data/raw`` (the default home of the real releases, ``data/raw/<dataset>/<file>``: the raw
folder of a run without ``raw_dir`` once it holds such a file, see :func:`holds_releases`),
``data/raw_cache`` (raw files downloaded because the raw folder lacks them),
``data/mock/raw`` (the generated raw files of the embedded default) and the
default backup store ``data/backups``.

Results: a *corpus* is one set of raw files with its registries (the embedded
mock surveys, the real releases of a raw folder, ...); config ``corpus`` names
it (default ``mock`` without a raw folder, ``real`` with one). Each corpus
publishes into its own tree ``results/<corpus>/`` (:class:`Tree`) with its own
summary, manifest, backups record, logs and figures, so that a mock run can
neither see nor overwrite the results of a real one, and the other way round.

In a tree, ``derived/<name>.json`` names the archive it describes
(``npz_file``), a content-named file ``derived/.versions/<name>-<sha256[:16]>.npz``;
``derived/<name>.npz`` is a copy of that file for readers using numpy alone.
``state/<name>.json`` is the receipt of a dataset's last successful job, written after
publication (absent after a failure, so the dataset is retried; the published files are
declared outputs of the job too, which Snakemake neither deletes nor copies back:
``rules/common.smk``, ``keep_outputs``).
"""

from __future__ import annotations

import re

DATA = "data"
RAW = f"{DATA}/raw"  # default home of the real releases (<dataset>/<file>), used when raw_dir is empty
RAW_CACHE = f"{DATA}/raw_cache"  # raw files downloaded because raw_dir lacks them
MOCK_RAW = f"{DATA}/mock/raw"  # generated raw files of the embedded default
BACKUPS = f"{DATA}/backups"  # the default backup store (config backup.dir), shared by the corpora
RESULTS = "results"
WRITER = ".snakemake/pbuf-data"  # the project's writer lock (pbuf_data.publish.writer), beside Snakemake's own state
VERSIONS = ".versions"  # inside a tree's derived folder
MOCK_CORPUS, REAL_CORPUS = "mock", "real"
CORPUS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def holds_releases(root) -> bool:
    """Whether the project folder ``root`` holds a real release in its default home: a file ``data/raw/<dataset>/<file>``
    (names starting with '.' left out). Then a run without ``raw_dir`` reads the real registry from there
    (:class:`pbuf_data.operate.project.Project`); an empty or absent ``data/raw``, as in a fresh clone, leaves the embedded
    default. Looks at one level of folders only: cheap at every parse."""
    from pathlib import Path

    try:
        folders = [f for f in Path(root, RAW).iterdir() if not f.name.startswith(".") and f.is_dir()]
        return any(not p.name.startswith(".") and p.is_file() for f in folders for p in f.iterdir())
    except OSError:  # no data/raw (a fresh clone), or unreadable: nothing there to use
        return False


def default_corpus(raw_dir: str | None) -> str:
    """The corpus a run uses when config ``corpus`` is empty: mock surveys without a raw folder, else the real one."""
    return REAL_CORPUS if raw_dir else MOCK_CORPUS


def version(name: str, sha256: str) -> str:
    """The content-named archive, relative to the derived folder (as the dataset document names it)."""
    return f"{VERSIONS}/{name}-{sha256[:16]}.npz"


class Tree:
    """The result tree of one corpus, ``results/<corpus>/``: every path a run of that corpus writes.

    The functions take a dataset name; the rules pass ``"{dataset}"`` to get a wildcard pattern.
    """

    def __init__(self, corpus: str):
        if not isinstance(corpus, str) or not CORPUS_NAME.match(corpus):
            raise ValueError(f"corpus {corpus!r}: a name of lower-case letters, digits, '_' and '-', starting with a letter")
        self.corpus = corpus
        self.base = f"{RESULTS}/{corpus}"
        self.derived = f"{self.base}/derived"
        self.staging = f"{self.base}/staging"
        self.validation = f"{self.base}/validation"
        self.state = f"{self.base}/state"
        self.manifests = f"{self.base}/manifests"
        self.derived_manifest = f"{self.manifests}/derived.sha256"
        self.logs = f"{self.base}/logs"
        self.plots = f"{self.base}/plots"
        self.exports = f"{self.base}/exports"  # files fitting codes read: Cobaya's own classes, SACC
        self.project = f"{self.base}/project"  # the tree's identity for backups and its record of snapshots
        self.built_from = f"{self.project}/tree.json"  # the registry and raw folder the tree is built from
        self.backup_record = f"{self.logs}/backup/last_backup.json"
        self.summary_json = f"{self.validation}/summary.json"
        self.summary_txt = f"{self.validation}/summary.txt"
        self.summary_html = f"{self.plots}/summary.html"  # the report's page of it (figures are <name>_<figure>.<ext>)
        # folders whose every file is in the manifest (verify reports any other file there)
        self.watched = (self.derived, self.validation, self.exports)

    def __repr__(self) -> str:
        return f"Tree({self.corpus!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Tree) and other.corpus == self.corpus

    def __hash__(self) -> int:
        return hash(self.corpus)

    def published(self, name: str, ext: str) -> str:
        """``ext`` is ``npz`` or ``json``."""
        return f"{self.derived}/{name}.{ext}"

    def staged(self, name: str, ext: str) -> str:
        return f"{self.staging}/{name}.{ext}"

    def report(self, name: str, ext: str) -> str:
        """Validation report (``json`` or ``txt``)."""
        return f"{self.validation}/{name}.{ext}"

    def published_files(self, name: str) -> dict[str, str]:
        """The files a dataset's (or combination's) job publishes, its outputs beside the receipt: {role: path}."""
        return {"dataset": self.published(name, "npz"), "document": self.published(name, "json"),
                "report": self.report(name, "json"), "report_text": self.report(name, "txt")}

    def receipt(self, name: str) -> str:
        return f"{self.state}/{name}.json"

    def export_receipt(self, name: str) -> str:
        """Receipt of a dataset's exports (the export job's output; the files are in ``exports``, named ``<name>.*``)."""
        return f"{self.state}/{name}.exports.json"

    def figures_sums(self, name: str) -> str:
        """sha256 of a dataset's figures, pages and document copy, written by its export job (verify checks them)."""
        return f"{self.state}/{name}.plots.sha256"

    def staged_sums(self, name: str) -> str:
        """sha256 of a dataset's staged pair, written once both are complete (verify checks them)."""
        return f"{self.staging}/{name}.sha256"

    @property
    def backup_record_sums(self) -> str:
        """sha256 of the backup record, written after it (verify checks it)."""
        return f"{self.backup_record}.sha256"

    def job_log(self, step: str, name: str) -> str:
        return f"{self.logs}/{step}/{name}.log"

    def plot(self, name: str, figure: str, ext: str = "png") -> str:
        return f"{self.plots}/{name}_{figure}.{ext}"

    def dataset_of(self, path: str) -> str | None:
        """The dataset (or combination, or ``summary``) a file of this tree is named after, from its path relative
        to the project root as the functions above make it; None for any other path."""
        folder, _, filename = str(path).rpartition("/")
        pattern = {  # a figure's name holds no '_'; elsewhere the name ends at the first '.' (or '-' of a version)
            self.derived: r"(?P<name>[a-z][a-z0-9_]*)\.(json|npz)",
            f"{self.derived}/{VERSIONS}": r"(?P<name>[a-z][a-z0-9_]*)-[0-9a-f]{16}\.npz",
            self.validation: r"(?P<name>[a-z][a-z0-9_]*)\.(json|txt)",
            self.state: r"(?P<name>[a-z][a-z0-9_]*)((\.exports)?\.json|\.plots\.sha256)",
            self.staging: r"(?P<name>[a-z][a-z0-9_]*)\.(json|npz|sha256)",
            self.plots: r"(?P<name>[a-z][a-z0-9_]*)_[a-z0-9]+\.[a-z]+",
            self.exports: r"(?P<name>[a-z][a-z0-9_]*)\.[a-z0-9_.]+",
        }.get(folder)
        match = re.fullmatch(pattern, filename) if pattern else None
        return match["name"] if match else None


def trees(root) -> list[Tree]:
    """The result trees present in a project folder."""
    from pathlib import Path

    found = []
    for folder in sorted(Path(root, RESULTS).glob("*")):
        if folder.is_dir() and not folder.is_symlink() and CORPUS_NAME.match(folder.name):
            found.append(Tree(folder.name))
    return found
