# Shared functions and the parsed registry. Rule files hold rules only.

from pathlib import Path

from snakemake.exceptions import WorkflowError

from pbuf_data.derive import code_fingerprint
from pbuf_data.errors import PbufDataError, suggest
from pbuf_data.registry import (
    MOCK_RAW_DIR,
    RETRIEVE_DIR,
    active_registry_files,
    load_registry,
    load_schema,
    raw_location,
    resolve_raw_path,
    validate,
)
from pbuf_data.retrieve import reachable


class UserError(WorkflowError):
    """A mistake in the configuration, the registry or the raw folder. Snakemake prints
    it as one block: its message, without the location and frames of this file (they
    point at the check, not at the mistake; the message names the key or file)."""

    __traceback__ = property(lambda self: None, lambda self, value: None)


try:
    validate(config, load_schema("config.schema.yaml"), what="configuration")
except PbufDataError as exc:
    raise UserError(str(exc)) from None

USE_MOCK = not config["raw_dir"]
RAW_DIR = MOCK_RAW_DIR if USE_MOCK else config["raw_dir"].rstrip("/")

try:
    REGISTRY = load_registry(*active_registry_files(config, config["raw_dir"]))
    for _name, _entry in REGISTRY.items():
        for _spec in _entry["files"].values():
            resolve_raw_path(RAW_DIR, _spec["path"], dataset=_name)
except PbufDataError as exc:
    raise UserError(str(exc)) from None


def unknown_datasets_message(names, what):
    """Names the active registry does not define, each with the nearest known names."""
    unknown = [name for name in names if name not in REGISTRY]
    if not unknown:
        return None
    listed = "; ".join(f"'{name}'{suggest(name, REGISTRY)}" for name in unknown)
    registry = "mock default" if USE_MOCK else f"raw_dir={RAW_DIR}"
    return (
        f"{what} {listed}: not in the active registry ({registry}); "
        f"known: {', '.join(sorted(REGISTRY))}"
    )


_unknown = unknown_datasets_message(config["datasets"], "config 'datasets' names")
if _unknown:
    raise UserError(_unknown)
DATASETS = config["datasets"] or list(REGISTRY)
MOCK_DATASETS = [name for name, entry in REGISTRY.items() if "mock" in entry]


def wildcard_choice(names):
    """Regex accepting exactly these names (wildcard constraint of the small mock and retrieval sets)."""
    return "|".join(sorted(names)) or "(?!)"


# Dataset wildcard of the per-dataset rules: the registry's name pattern. (An alternation of every
# name would be scanned for each job: quadratic in the number of datasets.) Unknown names are
# refused by the input functions.
DATASET_NAME = "(?!summary$)[a-z][a-z0-9_]*"  # "summary" is the validation summary, a reserved name
CODE_FINGERPRINTS = {
    entry["format"]: code_fingerprint(entry["format"]) for entry in REGISTRY.values()
}


def registry_entry(name):
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(unknown_datasets_message([name], "no dataset")) from None


def raw_path(spec):
    """Where a raw file is read: the raw folder (mirror) if it holds it, else the retrieval cache."""
    return raw_location(RAW_DIR, spec["path"], mock=USE_MOCK)


def raw_inputs(wildcards):
    """Raw files of a dataset, keyed by their registry role."""
    entry = registry_entry(wildcards.dataset)
    return {role: raw_path(spec) for role, spec in entry["files"].items()}


def retrieval_spec(wildcards):
    """Registry entry of a file to retrieve: its URL, pin and size cap."""
    wanted = f"{wildcards.dataset}/{wildcards.filename}"
    for spec in REGISTRY[wildcards.dataset]["files"].values():
        if spec["path"] == wanted:
            return {
                "path": wanted,
                "url": spec["url"],
                "sha256": spec["sha256"],
                "mirror_hint": f"{RAW_DIR}/{wanted}",
                "max_bytes": config["max_raw_bytes"][
                    REGISTRY[wildcards.dataset]["kind"]
                ],
            }
    raise WorkflowError(f"{wanted} is not a registry file")


def check_raw_available():
    """Before any job: every raw file is in the mirror, already retrieved, or retrievable now.

    Otherwise one message lists what is missing and where to put it."""
    if USE_MOCK:
        return
    missing, to_fetch = [], []
    for name in DATASETS:
        for spec in REGISTRY[name]["files"].values():
            if Path(raw_path(spec)).exists():
                continue
            if config["retrieve"] and spec.get("url") and spec.get("sha256"):
                to_fetch.append((name, spec))
            else:
                missing.append(
                    (
                        name,
                        spec,
                        (
                            "no upstream URL with a pin"
                            if config["retrieve"]
                            else "retrieval is off"
                        ),
                    )
                )
    hosts = {}
    for name, spec in to_fetch:
        host = spec["url"].split("/")[2]
        if host not in hosts:
            hosts[host] = reachable(spec["url"])
        if not hosts[host]:
            missing.append((name, spec, f"offline: {host} cannot be reached"))
    if missing:
        lines = [
            f"  {name}: {spec['path']} ({why}) -> put it at {RAW_DIR}/{spec['path']}"
            + (f" (sha256 {spec['sha256']})" if spec.get("sha256") else "")
            for name, spec, why in missing
        ]
        raise UserError(
            f"{len(missing)} raw file(s) missing from {RAW_DIR} and not retrievable:\n"
            + "\n".join(lines)
        )


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
    entry = registry_entry(wildcards.dataset)
    return {
        "entry": entry,
        "max_bytes": config["max_raw_bytes"][entry["kind"]],
        "code": CODE_FINGERPRINTS[entry["format"]],
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


def report_metadata(wildcards):
    """Title, citation and pinned raw files of a dataset, for its report caption (from the
    registry, so that the caption does not change when the data do; the full provenance
    is the dataset's JSON document, also in the report)."""
    entry = registry_entry(wildcards.dataset)
    return {
        "title": entry["title"],
        "kind": entry["kind"],
        "citation": entry["citation"],
        "n_points": entry.get("expected_points", "?"),
        "raw_files": [
            {
                "path": spec["path"],
                "sha256": spec.get("sha256", "generated (mock)"),
                "url": spec.get("url"),
            }
            for spec in entry["files"].values()
        ],
    }


check_raw_available()
