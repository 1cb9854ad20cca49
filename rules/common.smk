# Shared functions and the parsed registry. Rule files hold rules only.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pbuf_data import layout
from pbuf_data.combine import check_combination
from pbuf_data.derive import code_fingerprint
from pbuf_data.errors import PbufDataError, suggest
from pbuf_data.project import Project
from pbuf_data.registry import load_schema, raw_location, resolve_raw_path, validate
from pbuf_data.validation import raw_size, threads_for

# UserError (the Snakefile): a user's mistake, printed as one block without frames.

try:
    validate(config, load_schema("config.schema.yaml"), what="configuration")
    PROJECT = Project(".", config)  # corpus, result tree, raw folder, registries
    REGISTRY = PROJECT.registry
    for _name, _entry in REGISTRY.items():
        for _spec in _entry["files"].values():
            resolve_raw_path(PROJECT.raw_dir, _spec["path"], dataset=_name)
except PbufDataError as exc:
    raise UserError(str(exc)) from None

USE_MOCK = PROJECT.use_mock
RAW_DIR = PROJECT.raw_dir
_not_generated = USE_MOCK and [
    name for name, entry in REGISTRY.items() if "mock" not in entry
]
if _not_generated:
    raise UserError(
        f"mock registry {config['mock_registry']}: datasets {', '.join(_not_generated)} have no 'mock' block; "
        f"the embedded default generates every raw file in {layout.MOCK_RAW} (real files: --config raw_dir=...)"
    )
TREE = PROJECT.tree  # every path of this corpus's results (pbuf_data.layout.Tree)
if workflow.is_main_process:
    print(f"pbuf-data: {PROJECT.describe()}", file=sys.stderr)


def unknown_datasets_message(names, what):
    """Names the active registry does not define, each with the nearest known names."""
    unknown = [name for name in names if name not in REGISTRY]
    if not unknown:
        return None
    listed = "; ".join(f"'{name}'{suggest(name, REGISTRY)}" for name in unknown)
    return (
        f"{what} {listed}: not in the active registry ({PROJECT.describe()}); "
        f"known: {', '.join(sorted(REGISTRY))}"
    )


_unknown = unknown_datasets_message(config["datasets"], "config 'datasets' names")
if _unknown:
    raise UserError(_unknown)
DATASETS = PROJECT.datasets

# Combinations (config "combinations"): joint datasets, refused before any job when two members
# share a survey sample without an allow_overlap reason. They are published, validated, plotted
# and exported like datasets.
COMBINATIONS = PROJECT.combinations
if set(COMBINATIONS) & set(REGISTRY):
    raise UserError(
        f"combination names {sorted(set(COMBINATIONS) & set(REGISTRY))} are dataset names too"
    )
try:
    OVERLAPS = {
        name: check_combination(name, spec, REGISTRY)
        for name, spec in COMBINATIONS.items()
    }
except PbufDataError as exc:
    raise UserError(str(exc)) from None
PUBLISHED = DATASETS + list(COMBINATIONS)


# Where the mock-file and retrieval rules write, a folder per dataset (<folder>/<name>/<file>).
RAW_FOLDERS = (layout.MOCK_RAW, layout.RAW_CACHE)


def _raw_folder_of(path):
    """The dataset folder of a path in one of RAW_FOLDERS; None otherwise."""
    for folder in RAW_FOLDERS:
        if path.startswith(f"{folder}/"):
            return path[len(folder) + 1 :].partition("/")[0] or None
    return None


def _target_names(targets):
    """Unknown dataset names in target paths of this result tree (results/<corpus>/<folder>/<name>...) and
    of the mock and retrieval folders (their rules take any name's folder)."""
    for target in targets:
        name = TREE.dataset_of(str(target)) or _raw_folder_of(str(target))
        if (
            name
            and name not in REGISTRY
            and name not in COMBINATIONS
            and name != "summary"
        ):
            yield name


def command_line_paths():
    """Words of a `snakemake` command line that name files of this result tree (targets, --forcerun...);
    the DAG settings do not exist yet at parse time."""
    if not workflow.is_main_process:
        return []
    folders = tuple(f"{folder}/" for folder in (TREE.base, *RAW_FOLDERS))
    return [word for word in sys.argv[1:] if word.startswith(folders)]


# A typo in a target path: one clean message, before the DAG.
_unknown = unknown_datasets_message(
    list(_target_names(command_line_paths())), "target path names"
)
if _unknown:
    raise UserError(_unknown)


def wildcard_choice(names):
    """Regex accepting exactly these names (wildcard constraint of the combinations, a small set)."""
    return "|".join(sorted(names)) or "(?!)"


# Dataset wildcard of the per-dataset rules: the registry's name pattern. (An alternation of every
# name would be scanned for each job: quadratic in the number of datasets.) Unknown names are
# refused by the input functions.
# "summary" is the validation summary, a reserved name. PUBLISHED_NAME: a dataset or a combination
# (figures, exports); DATASET_NAME: a dataset (combinations have a rule of their own).
# (A wildcard's pattern is matched inside the whole path: a name ends where no name character follows.)
PUBLISHED_NAME = "(?!summary(?![a-z0-9_]))[a-z][a-z0-9_]*"
DATASET_NAME = (
    f"(?!(?:summary|{wildcard_choice(COMBINATIONS)})(?![a-z0-9_]))[a-z][a-z0-9_]*"
)
# The folder of a generated mock file (embedded default) or of a retrieved raw file (a raw folder): the
# name pattern (an alternation of every name is scanned for each of their files), the rule that cannot run
# in this mode matching nothing. A target in a folder that is not a dataset's is refused above.
MOCK_FOLDER = DATASET_NAME if USE_MOCK else "(?!)"
RETRIEVED_FOLDER = "(?!)" if USE_MOCK else DATASET_NAME
CODE_FINGERPRINTS = {  # once per format, not per entry (sources are read and hashed)
    fmt: code_fingerprint(fmt)
    for fmt in {entry["format"] for entry in REGISTRY.values()}
}


def run_in_snakemake(rule, wildcards, params, input, output, log):
    """The run: of the rules whose jobs run in processes forked by Snakemake's helper (mock files, figures,
    exports): the command line a shell: would run, `python3 -m pbuf_data.job RULE ...`, sent to a helper
    process that this one starts and keeps for the run, which forks a process for the job
    (pbuf_data.job.run_in_helper; waited for in a thread of this process with the profiles'
    force-use-threads). A failed step is one block naming the dataset and the check, as a job process
    prints it."""
    import pbuf_data.job
    from pbuf_data.steps import JobFailed

    argv = [rule, "--dataset", wildcards.dataset, "--params", params.args]
    for option, files in (("--input", input), ("--output", output), ("--log", log)):
        argv += [option, *files]
    try:
        pbuf_data.job.run_in_helper(argv)
    except JobFailed as exc:
        raise UserError(f"{rule} {wildcards.dataset}: {exc}") from None


def registry_entry(name):
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(unknown_datasets_message([name], "no dataset")) from None


def raw_path(spec):
    """Where a raw file is read: the raw folder (mirror) if it holds it, else the retrieval cache."""
    return raw_location(RAW_DIR, spec["path"], mock=USE_MOCK)


def missing_raw_files(name):
    """Raw files of a dataset that are neither in the raw folder (or already retrieved) nor retrievable:
    {path: message saying where to put it}. Their dataset's job fails with this list; the other datasets go on.
    (Only the local folders are looked at: nothing here opens a network connection.)"""
    if USE_MOCK:
        return {}
    missing = {}
    for spec in registry_entry(name)["files"].values():
        if Path(raw_path(spec)).exists():
            continue
        if not config["retrieve"]:
            why = "retrieval is off"
        elif not (spec.get("url") and spec.get("sha256")):
            why = "no upstream URL with a pin"
        else:
            continue  # retrieve_raw_file downloads it (and fails with its own message)
        pin = f" (sha256 {spec['sha256']})" if spec.get("sha256") else ""
        missing[spec["path"]] = (
            f"{spec['path']} ({why}) -> put it at {RAW_DIR}/{spec['path']}{pin}"
        )
    return missing


def raw_inputs(wildcards):
    """Raw files of a dataset, keyed by their registry role (those missing for good left out)."""
    entry = registry_entry(wildcards.dataset)
    missing = missing_raw_files(wildcards.dataset)
    return {
        role: raw_path(spec)
        for role, spec in entry["files"].items()
        if spec["path"] not in missing
    }


def retrieval_spec(wildcards):
    """Registry entry of a file to retrieve: its URL, pin and size cap."""
    wanted = f"{wildcards.dataset}/{wildcards.filename}"
    for spec in registry_entry(wildcards.dataset)["files"].values():
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


def dataset_settings(wildcards):
    """Everything that decides a dataset's content and verdict (params of its jobs)."""
    entry = registry_entry(wildcards.dataset)
    return {
        "entry": entry,
        "max_bytes": config["max_raw_bytes"][entry["kind"]],
        "code": CODE_FINGERPRINTS[entry["format"]],
        "thresholds": config["validation"],
        "missing": list(missing_raw_files(wildcards.dataset).values()),
    }


def mock_role(wildcards):
    """Registry role of a mock file, from its file name."""
    for role, spec in registry_entry(wildcards.dataset)["files"].items():
        if spec["path"] == f"{wildcards.dataset}/{wildcards.filename}":
            return role
    raise WorkflowError(
        f"{wildcards.dataset}: no registry file named {wildcards.filename}"
    )


def without_rate_limiter():
    """onstart: a run on this machine schedules without Snakemake's job-rate limiter (--max-jobs-per-timespan,
    100 jobs a second by default, there for submission to a cluster): after each scheduling pass it starts a
    timer of its timespan (1 s, which the profile cannot shorten: a timespan of 0 s makes the scheduler spin,
    and "ms" is read as minutes), and the process waits for the last one before it exits. A run that submits
    jobs elsewhere (an executor plugin, profiles/slurm) keeps it."""
    if workflow.local_exec:
        workflow.scheduler.job_rate_limiter = None


def rebuild_after_failure():
    """onerror: the summary and the manifest are rebuilt also after a run in which datasets failed,
    so that they tell the state of every dataset and verify knows every file republished beside a
    failure. (Their own jobs wait for every dataset; Snakemake does not run them then.)
    """
    from pbuf_data.job import report_failure
    from pbuf_data.steps import manifest, summarize_validation

    if all(Path(TREE.receipt(name)).exists() for name in PUBLISHED):
        return  # no dataset failed (e.g. the verify target did): nothing to record, nothing to rehash
    try:
        summary = summarize_validation(TREE, PUBLISHED)
        manifest(TREE)
    except PbufDataError as exc:
        report_failure(str(exc))
        return
    print(f"{TREE.summary_txt}:", file=sys.stderr)
    for name, item in summary["datasets"].items():
        if item["state"] != "published":
            print(f"  {name}: {item['state']}: {item['reason']}", file=sys.stderr)


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
    return dataset_metadata(wildcards.dataset)


def dataset_metadata(name):
    if name in COMBINATIONS:
        members = [dataset_metadata(m) for m in COMBINATIONS[name]["datasets"]]
        reasons = [f"{' + '.join(o['pair'])}: {o['reason']}" for o in OVERLAPS[name]]
        return {
            "title": "combination of " + ", ".join(COMBINATIONS[name]["datasets"]),
            "kind": "combination",
            "citation": "; ".join(m["citation"] for m in members)
            + (f" (allowed overlaps: {'; '.join(reasons)})" if reasons else ""),
            "n_points": sum(m["n_points"] for m in members if m["n_points"] != "?"),
            "raw_files": [f for m in members for f in m["raw_files"]],
        }
    entry = registry_entry(name)
    return {
        "title": entry["title"],
        "kind": entry["kind"],
        "citation": entry["citation"],
        "n_points": entry.get("expected_points", "?"),
        "raw_files": [
            {
                "path": spec["path"],
                "sha256": spec.get("sha256")
                or (
                    "generated (mock)"
                    if "mock" in entry
                    else "UNPINNED (allow_unpinned)"
                ),
                "url": spec.get("url"),
            }
            for spec in entry["files"].values()
        ],
    }
