# Shared functions and the parsed registry. Rule files hold rules only.

import hashlib
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from pbuf_data.errors import PbufDataError
from pbuf_data.registry import load_registry, resolve_raw_path

validate(config, "../config/schemas/config.schema.yaml")

MOCK_RAW_DIR = "data/mock/raw"
USE_MOCK = not config["raw_dir"]
RAW_DIR = MOCK_RAW_DIR if USE_MOCK else config["raw_dir"].rstrip("/")

try:
    if USE_MOCK:
        REGISTRY = load_registry(config["mock_registry"])
    else:
        REGISTRY = load_registry(config["registry"], *config["extra_registries"])
    for _name, _entry in REGISTRY.items():
        for _spec in _entry["files"].values():
            resolve_raw_path(RAW_DIR, _spec["path"], dataset=_name)
except PbufDataError as exc:
    raise WorkflowError(str(exc)) from None

_unknown = sorted(set(config["datasets"]) - set(REGISTRY))
if _unknown:
    raise WorkflowError(
        f"config 'datasets' names {_unknown}, which the active registry does not define "
        f"({'mock default' if USE_MOCK else 'raw_dir=' + RAW_DIR}); known: {sorted(REGISTRY)}"
    )
DATASETS = config["datasets"] or list(REGISTRY)
MOCK_DATASETS = [name for name, entry in REGISTRY.items() if "mock" in entry]

# Modules whose code makes a dataset: a change in them reruns the datasets of that format.
_PACKAGE = Path(workflow.basedir) / "src" / "pbuf_data"
_COMMON_CODE = [
    "errors.py",
    "textio.py",
    "dataset.py",
    "registry.py",
    "derive/__init__.py",
]
_FORMAT_CODE = {
    "pantheon_plus": "derive/sn.py",
    "bao_mean_cov": "derive/bao.py",
    "bao_table": "derive/bao.py",
    "cmb_distance_priors": "derive/cmb.py",
    "cc_hz_table": "derive/cc.py",
    "rsd_fsigma8": "derive/rsd.py",
}


def code_fingerprint(fmt):
    """sha256 over the source files that derive datasets of format ``fmt``."""
    digest = hashlib.sha256()
    for name in [*_COMMON_CODE, _FORMAT_CODE[fmt]]:
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()[:16]


def wildcard_choice(names):
    """Regex accepting exactly these names (wildcard constraint)."""
    return "|".join(sorted(names)) or "(?!)"


def raw_inputs(wildcards):
    """Raw files of a dataset, keyed by their registry role."""
    entry = REGISTRY[wildcards.dataset]
    return {role: f"{RAW_DIR}/{spec['path']}" for role, spec in entry["files"].items()}


def publish_inputs(wildcards):
    """A published dataset depends on the staged files, its report and, like its
    derivation, on the raw files: a raw change makes it stale even when the
    derivation fails and leaves it in place."""
    name = wildcards.dataset
    return {
        "npz": f"data/staging/{name}.npz",
        "json": f"data/staging/{name}.json",
        "report": f"data/validation/{name}.json",
        **{f"raw_{role}": path for role, path in raw_inputs(wildcards).items()},
    }


def dataset_settings(wildcards):
    """Everything that decides a dataset's content and verdict (params of its jobs)."""
    entry = REGISTRY[wildcards.dataset]
    return {
        "entry": entry,
        "max_bytes": config["max_raw_bytes"][entry["kind"]],
        "code": code_fingerprint(entry["format"]),
        "thresholds": config["validation"],
    }


def mock_role(wildcards):
    """Registry role of a mock file, from its file name."""
    for role, spec in REGISTRY[wildcards.dataset]["files"].items():
        if spec["path"] == f"{wildcards.dataset}/{wildcards.filename}":
            return role
    raise WorkflowError(
        f"{wildcards.dataset}: no registry file named {wildcards.filename}"
    )


# Configuration files that go into every backup archive.
CONFIG_FILES = sorted(
    str(p)
    for p in Path("config").rglob("*")
    if p.is_file() and p.suffix in (".yaml", ".yml")
)
