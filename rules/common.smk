# Shared functions and the parsed registry. Rule files hold rules only.

import contextlib
import logging
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pbuf_data.core import layout
from pbuf_data.core.atomic import probe_writable
from pbuf_data.core.errors import PbufDataError, suggest
from pbuf_data.core.integrity import trusted_sha256
from pbuf_data.fit.combine import check_combination
from pbuf_data.operate.project import Project, typed_values
from pbuf_data.operate.report_text import rst_link, rst_text
from pbuf_data.publish import writer
from pbuf_data.publish.restore import interrupted
from pbuf_data.publish.validation import raw_size, threads_for
from pbuf_data.read.derive import code_fingerprint
from pbuf_data.read.registry import raw_location, resolve_raw_path
from pbuf_data.read.schema import load_schema, validate

# UserError (the Snakefile): a user's mistake, printed as one block without frames.

# What a person running the workflow does not need to read (`snakemake --verbose` shows all of it): the
# block of every job, progress and job-selection lines. Errors are kept; a failed job is named, with its
# reason and log, by the verdict block at the end of the run.
QUIET_EVENTS = {
    "JOB_INFO",
    "GROUP_INFO",
    "JOB_ERROR",
    "GROUP_ERROR",
    "PROGRESS",
    "JOB_FINISHED",
    "JOB_STARTED",
    "RESOURCES_INFO",
    "SHELLCMD",
}
QUIET_PREFIXES = ("Select jobs to execute", "Execute ", "[")


def quiet_output(events=QUIET_EVENTS):
    from snakemake.logging import logger

    def keep(record):
        event = getattr(record, "event", None)
        if event is not None and getattr(event, "name", str(event)) in events:
            return False
        if events is not QUIET_EVENTS:
            return True
        if record.levelno <= logging.INFO and isinstance(record.msg, str):
            return not record.msg.startswith(QUIET_PREFIXES)
        return True

    logger.addFilter(keep)


try:
    _schema = load_schema("config.schema.yaml")
    # --config retrieve=false, max_raw_bytes={cmb: 2000000}: as the schema types them
    typed_values(config, _schema)
    validate(config, _schema, what="configuration")
    PROJECT = Project(".", config)  # corpus, result tree, raw folder, registries
    REGISTRY = PROJECT.registry
    for _name, _entry in REGISTRY.items():
        for _spec in _entry["files"].values():
            resolve_raw_path(PROJECT.raw_dir, _spec["path"], dataset=_name)
except PbufDataError as exc:
    raise UserError(str(exc)) from None

# Snakemake keeps its state (locks, metadata, logs) in .snakemake/: a read-only or full disk is said in one
# line here, before Snakemake's own writes there end in its traceback (and a log line that cannot be
# written to Snakemake's log file must not print one either).
if workflow.is_main_process:
    logging.raiseExceptions = False
    try:
        probe_writable(".snakemake")
    except PbufDataError as exc:
        raise UserError(
            f"{exc} (Snakemake keeps its state there: make it writable, or free space, and run again)"
        ) from None

# A restore interrupted while swapping folders leaves the tree mixed: no run publishes into it.
if workflow.is_main_process and any(
    swap for _, swap in interrupted(Path("."), PROJECT.tree)
):
    raise UserError(
        f"{PROJECT.tree.base}: a restore was interrupted while swapping folders (the published folders may "
        "be mixed); `pbuf-data resume` or `pbuf-data restore` finishes it, then run again"
    )

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
TREE = PROJECT.tree  # every path of this corpus's results (pbuf_data.core.layout.Tree)
if workflow.is_main_process:
    print(f"pbuf-data: {PROJECT.describe()}", file=sys.stderr)
    if (
        not workflow.output_settings.verbose
    ):  # Snakemake's banner (host, versions...): with --verbose
        quiet_output({"WORKFLOW_STARTED"})
    if (
        not USE_MOCK and not Path(RAW_DIR).is_dir()
    ):  # a typo: one message, before any job or download
        raise UserError(
            f"raw folder {RAW_DIR} does not exist (config raw_dir or --config raw_dir=...); nothing was run. "
            "To download every raw file from its registry URL instead, create it empty."
        )
    try:  # a tree is written only from the registry and corpus it was built from
        PROJECT.check_tree()
        # the writer lock, if free, from before Snakemake's own lock (a run is never seen with that lock and
        # not this one); taken for good, or refused naming the holder, in onstart (a dry run ends before it).
        # Held by another run, Snakemake's own lock stops this one before onstart: say whose run it is (its
        # message suggests --unlock, which a live run's lock must not get)
        if not writer.try_acquire(PROJECT.root) and not workflow.dryrun:
            holding = writer.holder(PROJECT.root)
            if holding:
                print(f"pbuf-data: {writer.refusal(holding)}", file=sys.stderr)
    except PbufDataError as exc:
        raise UserError(str(exc)) from None


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


def dry_run_preview(files=3, width=240):
    """A dry run (known once Snakemake lists its jobs) says first, in the words of `pbuf-data status`, why each
    stale dataset would be derived again (a changed option named with both values; Snakemake's own reason
    names only a digest of the job's parameters), then shows its job blocks short: a list of more than
    `files` files shows its first ones and a count, a reason longer than `width` characters is cut
    (`snakemake -n --verbose` shows them whole)."""
    from snakemake.logging import logger

    from pbuf_data.operate.status import workflow_status

    said = []

    def preview(record):
        event = getattr(record, "event", None)
        if getattr(event, "name", None) != "JOB_INFO" or not workflow.dryrun:
            return True
        if not said:
            said.append(True)
            try:
                stale = {
                    name: reasons
                    for name, reasons in workflow_status(
                        PROJECT, sha256=trusted_sha256
                    ).items()
                    if reasons
                }
            except (PbufDataError, OSError, ValueError) as exc:
                stale = {"(status)": [f"not known: {exc}"]}
            print(
                f"pbuf-data: {len(stale)} of {len(DATASETS)} datasets to derive again",
                file=sys.stderr,
            )
            for name, reasons in stale.items():
                print(f"pbuf-data: {name}: {'; '.join(reasons)}", file=sys.stderr)
        if workflow.output_settings.verbose:
            return True
        for item in ("input", "output", "log"):
            value = getattr(record, item, None)
            if isinstance(value, list) and len(value) > files:
                setattr(
                    record,
                    item,
                    [*value[:files], f"... {len(value) - files} more"],
                )
        reason = getattr(record, "reason", None)
        if isinstance(reason, str) and len(reason) > width:
            record.reason = f"{reason[:width]}..."
        return True

    logger.addFilter(preview)


if workflow.is_main_process:
    dry_run_preview()

# Combinations (config "combinations"): joint datasets, refused before any job when two members
# share a survey sample without an allow_overlap reason. They are published, validated, plotted
# and exported like datasets.
COMBINATIONS = PROJECT.combinations
if set(COMBINATIONS) & set(REGISTRY):
    raise UserError(
        f"combination names {sorted(set(COMBINATIONS) & set(REGISTRY))} are dataset names too"
    )
try:
    SAMPLES = PROJECT.samples if COMBINATIONS else {}  # read once for every combination
    OVERLAPS = {
        name: check_combination(name, spec, REGISTRY, SAMPLES)
        for name, spec in COMBINATIONS.items()
    }
except PbufDataError as exc:
    raise UserError(str(exc)) from None
PUBLISHED = DATASETS + list(COMBINATIONS)


# Published files are job outputs (targets: `snakemake results/<corpus>/derived/<name>.npz`) that only the
# atomic renames of their job change (pbuf_data.core.atomic, publication): the dataset, its document and validation
# report, the summary, the manifest and the backup record. They are update() outputs, so Snakemake does not
# delete them before their job runs; and the backup it would make of them (a copy of each into .snakemake/ before
# the job) and its restore after a failed job (a copy back over the file, in place) are left out: the file a job
# did not replace is still the previous version, whole; the one it replaced is a complete new version (a mixed pair
# would follow from restoring one file of a new publication); a copy back in place could be cut by a kill.
KEPT = (
    f"{TREE.derived}/",
    f"{TREE.validation}/",
    f"{TREE.manifests}/",
    TREE.backup_record,
)


def kept(path):
    """A published file as a rule's output: update(), with no backup or restore by Snakemake (keep_outputs)."""
    if not path.startswith(KEPT):
        raise WorkflowError(f"{path} is not a published file")
    return update(path)


def published_outputs(name):
    """The outputs a dataset's (or combination's) job publishes, beside its receipt (layout.Tree.published_files)."""
    return {role: kept(path) for role, path in TREE.published_files(name).items()}


def keep_outputs():
    """Snakemake's backup and restore of update() outputs skip the published files of KEPT (in every process that
    reads the rules: a cluster job's own Snakemake prepares its job too). Its note "Restored previous version of"
    such a file, untrue here (a failed job's validation report is new), is not printed. Nor is such a file
    "write-protected" when its mode forbids writing: a new version replaces it by a rename in its folder, so its
    mode does not stop its job (Snakemake would refuse the whole run before any job); a read-only folder fails
    the publication of each dataset's job, named, and the tree's summary says so. Hooks Snakemake 9.27's
    FileBackupMixin and _IOFile.protected: check them when upgrading Snakemake (tests/test_targets.py,
    tests/test_faults.py)."""
    from snakemake.io import _IOFile
    from snakemake.logging import logger
    from snakemake.persistence import FileBackupMixin

    hooked = getattr(FileBackupMixin, "pbuf_kept", None)
    if hooked is None:
        hooked = FileBackupMixin.pbuf_kept = set()
        backup, restore = FileBackupMixin.backup_output, FileBackupMixin.restore_output
        protected = _IOFile.protected

        def is_kept(path):
            # Snakemake's outputs are relative paths: relpath only for another form
            path = str(path)
            if os.path.isabs(path):
                path = os.path.relpath(path)
            return os.path.normpath(path).startswith(tuple(hooked))

        async def protected_unless_kept(self):
            return not is_kept(self.file) and await protected(self)

        def backup_output(self, path):
            if not is_kept(path):
                backup(self, path)

        def restore_output(self, path):
            return is_kept(path) or restore(self, path)

        def restored_note(record):
            message = record.msg
            return not (
                isinstance(message, str)
                and message.startswith("Restored previous version of ")
                and any(prefix in message for prefix in hooked)
            )

        FileBackupMixin.backup_output = backup_output
        FileBackupMixin.restore_output = restore_output
        _IOFile.protected = protected_unless_kept
        logger.addFilter(restored_note)
    hooked.update(KEPT)


keep_outputs()


def refuse_deleting_outputs(delete_output=workflow.delete_output):
    """Snakemake's --delete-all-output (an abbreviation of it, or a profile's delete-all-output: true) would delete
    every output: the published data. Refused, whatever way it was asked for; --delete-temp-output (no output here
    is temporary) is let through."""

    def refuse(only_temp=False, dryrun=False):
        if not only_temp:
            raise UserError(
                "--delete-all-output would delete the published datasets, their reports, the manifest and the "
                "backup record; nothing was deleted. `pbuf-data prune` removes the datasets no longer in the "
                "registry (verify stays true), `pbuf-data restore` takes back a snapshot, and a published file "
                "deleted by hand is rebuilt by the next run"
            )
        return delete_output(only_temp=only_temp, dryrun=dryrun)

    workflow.delete_output = refuse


refuse_deleting_outputs()


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


def script(rule):
    """The path of a rule's script: named from the working folder when it lies below it (a job's command line,
    which its log may show to rerun it, stays the same wherever the project is); a cached copy for a workflow read
    from a remote repository."""
    if SRC is None:
        # relative to this file, rules/common.smk
        return workflow.source_path(f"../scripts/{rule}.py")
    path = os.path.join(
        _here.get_path_or_uri(secret_free=True), "scripts", f"{rule}.py"
    )
    relative = os.path.relpath(path)
    return path if relative.split(os.sep)[0] == ".." else relative


def run_script(rule):
    """The start of a shell: running a rule's script, with the jobs' interpreter (set once, when the rules are
    read: a module's rules do not see this file's names when Snakemake fills their command).
    """
    return f"python3 {shlex.quote(script(rule))}"


def run_in_snakemake(step, wildcards, params, input, output, log, threads=1):
    """The run: of the rules whose jobs run in processes forked by Snakemake's helper (mock files, figures,
    exports; a dataset's job in a local run, in_helper): the command line a shell: would run, `python3
    scripts/RULE.py ...`, sent to a helper process that this one starts and keeps for the run, which forks a
    process for the job
    (pbuf_data.operate.helper.run_in_helper; waited for in a thread of this process with the profiles'
    force-use-threads), with the job's threads. A failed step prints the line a job process prints (`ERROR: `
    and the message naming the dataset, file and check), and the job fails naming its rule, dataset and log. `step` is the rule's own
    name (its job step), also when a workflow using this one as a module renames the rule (`use rule * from
    pbuf as pbuf_*`)."""
    import pbuf_data.operate.helper
    from pbuf_data.operate.job import report_failure
    from pbuf_data.operate.joblog import JobFailed

    try:
        pbuf_data.operate.helper.run_in_helper(
            job_argv(step, wildcards, params, input, output, log), threads
        )
    except JobFailed as exc:
        report_failure(str(exc))
        raise UserError(f"{step} {wildcards.dataset} failed (log: {log[0]})") from None


def job_argv(step, wildcards, params, input, output, log):
    """A job's command line after `python3`: the rule's script and its arguments (pbuf_data.operate.job), as
    run_in_snakemake sends it and shell_command writes it."""
    argv = [script(step), "--dataset", wildcards.dataset, "--params", params.args]
    for option, files in (("--input", input), ("--output", output), ("--log", log)):
        argv += [option, *files]
    return argv


def shell_command(step, wildcards, params, input, output, log):
    """job_argv as the text a run: gives shell() (which formats it: braces doubled)."""
    argv = job_argv(step, wildcards, params, input, output, log)
    return f"python3 {shlex.join(argv)}".replace("{", "{{").replace("}", "}}")


def in_helper(conda_env):
    """Whether a dataset's job runs in a process forked by this process's helper (run_in_snakemake, with the
    job's threads) rather than as a process of its own (rules/derive.smk): a job of a local run without a conda
    environment. The run of a job sent to a cluster (Snakemake's remote mode) or spawned by Snakemake without
    the profiles' force-use-threads (its subprocess mode) runs the job's command line.
    """
    return conda_env is None and not (workflow.remote_exec or workflow.subprocess_exec)


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
    """Raw files of a dataset, keyed by their registry role (those missing for good left out).

    Files of a raw folder are compared by content, not by time (ancient: their modification time never
    reruns a job): their sha256 is a parameter of the dataset's jobs (raw_content). A copied, moved or touched
    raw folder reruns nothing; a changed byte reruns its dataset. Generated mock files keep Snakemake's own
    time-based tracking (their generating job is in the DAG)."""
    entry = registry_entry(wildcards.dataset)
    missing = missing_raw_files(wildcards.dataset)
    return {
        role: raw_path(spec) if USE_MOCK else ancient(raw_path(spec))
        for role, spec in entry["files"].items()
        if spec["path"] not in missing
    }


def raw_content(name):
    """{role: sha256} of a dataset's raw files in a raw folder: the content present, else the registry pin (a
    retrieved file is kept only if it equals its pin, so the first run after a download reruns nothing).
    """
    if USE_MOCK:
        return {}
    content = {}
    for role, spec in registry_entry(name)["files"].items():
        try:
            content[role] = trusted_sha256(raw_path(spec))
        except OSError:
            content[role] = spec.get("sha256")
    return content


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
        "fiducial": config["fiducial_cosmology"],
        "missing": list(missing_raw_files(wildcards.dataset).values()),
        "raw_content": raw_content(wildcards.dataset),
    }


def mock_role(wildcards):
    """Registry role of a mock file, from its file name."""
    for role, spec in registry_entry(wildcards.dataset)["files"].items():
        if spec["path"] == f"{wildcards.dataset}/{wildcards.filename}":
            return role
    raise WorkflowError(
        f"{wildcards.dataset}: no registry file named {wildcards.filename}"
    )


def start_run():
    """onstart (not in a dry run): take the project's writer lock for the run (refused, naming the holder,
    if another run, restore or prune writes here), then record what the tree is built from.
    """
    import time

    try:
        writer.acquire(PROJECT.root)
        PROJECT.record_tree()
    except PbufDataError as exc:
        writer.release(PROJECT.root)
        raise UserError(f"{exc}; nothing was run") from None
    RUN["start"] = time.time()
    stop_on_state_write_failure()
    if not workflow.output_settings.verbose:
        quiet_output()


def stop_on_state_write_failure():
    """onstart: a write of Snakemake's own state in .snakemake/ (a job's incomplete marker when it starts,
    its metadata record when it ends) that fails (a disk filled during the run, a folder made read-only)
    stops the run with one message naming the folder, as a failed job does: no job is scheduled after it
    (those already started finish), the onerror handlers run and the writer lock is given back, instead of
    Snakemake's traceback (or two blocks, the second one escaping the scheduler before onerror), or of a
    warning per job and a run that goes on. A job whose record could not be
    written keeps its outputs (its work is done) and its incomplete marker, without a half-written
    record: the next run runs it again (rerun-incomplete) and records it. A job that failed is not recorded
    as finished either: it is run again, whatever file of it a run asks for.
    """
    persistence = workflow.persistence
    started, finished = persistence.started, persistence.finished

    def stop(exc):
        where = Path(exc.filename).parent if exc.filename else Path(persistence.path)
        with contextlib.suppress(ValueError):
            where = where.resolve().relative_to(Path(PROJECT.root).resolve())
        message = (
            f"{where}: {exc.strerror or exc} (Snakemake could not record its job state there); the run "
            "stops, published data are kept: free space or make it writable, and run again"
        )
        scheduler = workflow.scheduler
        # the first failure only; the scheduler stops and prints it at its next pass
        if scheduler._executor_error is None:
            scheduler._executor_error = UserError(message)
            scheduler._open_jobs.release()

    def started_or_stop(job, *args, **kwargs):
        try:
            started(job, *args, **kwargs)
        except OSError as exc:
            stop(exc)

    async def finished_or_stop(job):
        if not all(os.path.exists(path) for path in job.output):
            # A failed job (Snakemake records a failed job as finished too): its outputs kept from before stay
            # marked incomplete, without its parameters, so the next run (rerun-incomplete) runs it again also when
            # only a published file is asked for; those it did not keep are deleted by Snakemake.
            return
        try:
            await finished(job)
        except OSError as exc:
            stop(exc)
            for path in job.output:
                with contextlib.suppress(OSError):
                    persistence._delete_record(persistence._get_key(path))

    persistence.started, persistence.finished = started_or_stop, finished_or_stop


RUN = {}


def finish_run(failed):
    """onsuccess/onerror: the tree settled (settle_tree), one verdict block, then the writer lock is given
    back."""
    from pbuf_data.operate.verdict import verdict_lines

    try:
        settle_tree()
        for line in verdict_lines(
            TREE, PUBLISHED, since=RUN.get("start"), run_failed=failed
        ):
            print(line, file=sys.stderr)
    finally:
        writer.release(PROJECT.root)


def settle_tree():
    """At the end of every run that did not leave the summary and the manifest as its jobs write them (one
    that failed, or ran some datasets' jobs only, e.g. prepare_dataset): they are rebuilt, so that they tell
    the state of every dataset and verify knows every file republished or exported beside a failure (a full
    disk during one export must not leave the others' new files unknown to verify); and when that changed the
    manifest, a snapshot of what is published now, so that a restore never takes back a dataset this run
    published. A full run's own summary, manifest and backup jobs leave nothing to do here (no rehash).
    """
    from pbuf_data.operate.job import report_failure
    from pbuf_data.operate.steps import backup, manifest, summarize_validation

    listed = Path(TREE.derived_manifest)
    written = listed.stat().st_mtime_ns if listed.is_file() else -1
    receipts = [Path(TREE.receipt(n)) for n in PUBLISHED]
    receipts += [Path(TREE.export_receipt(n)) for n in PUBLISHED]
    if all(r.exists() and r.stat().st_mtime_ns <= written for r in receipts):
        return
    before = listed.read_bytes() if listed.is_file() else None
    try:  # the failures are printed by the verdict block
        summarize_validation(TREE, PUBLISHED)
        manifest(TREE)
        if listed.read_bytes() != before:
            backup(
                TREE, CONFIG_FILES, config["backup"]["dir"], config["backup"]["keep"]
            )
    except PbufDataError as exc:
        report_failure(f"settling the tree after the run: {exc}")


def without_rate_limiter():
    """onstart: a run on this machine schedules without Snakemake's job-rate limiter (--max-jobs-per-timespan,
    100 jobs a second by default, there for submission to a cluster): after each scheduling pass it starts a
    timer of its timespan (1 s, which the profile cannot shorten: a timespan of 0 s makes the scheduler spin,
    and "ms" is read as minutes), and the process waits for the last one before it exits. A run that submits
    jobs elsewhere (an executor plugin, profiles/slurm) keeps it."""
    if workflow.local_exec:
        workflow.scheduler.job_rate_limiter = None


# Configuration files that go into every backup archive.
CONFIG_FILES = sorted(
    str(p)
    for p in Path("config").rglob("*")
    if p.is_file() and p.suffix in (".yaml", ".yml")
)


def report_metadata(wildcards):
    """Title, citation and pinned raw files of a dataset, for its report caption (from the
    registry, so that the caption does not change when the data do; the full provenance
    is the dataset's JSON document, also in the report). Registry text is given as
    reStructuredText that shows it as text (pbuf_data.operate.report_text): Snakemake renders the
    caption as reStructuredText and embeds these params unescaped in report.html."""
    meta = dataset_metadata(wildcards.dataset)
    return dict(
        meta,
        title=rst_text(meta["title"]),
        citation=rst_text(meta["citation"]),
        raw_files=[
            dict(f, url=rst_link(f["url"]) if f["url"] else None)
            for f in meta["raw_files"]
        ],
    )


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
