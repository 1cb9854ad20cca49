"""Published files are Snakemake targets: a dataset, its document and validation report, the summary, the
manifest and the backup record can each be asked for, and -n, --summary and --list-changes name them. They are
update() outputs whose backup and restore by Snakemake are left out (rules/common.smk, keep_outputs): a failed
job leaves its dataset's published files as they were, as the same inode, with no copy in .snakemake/."""

import json
import subprocess
from pathlib import Path

from conftest import cli
from pbuf_data.core.layout import Tree

REAL = Tree("real")
NAME = "bao_desi_dr1"


def _sha256sum(root: Path, *paths: str) -> dict[str, str]:
    """sha256 by the coreutils program, not by this package."""
    out = subprocess.run(["sha256sum", *paths], cwd=root, capture_output=True, text=True, check=True).stdout
    return {line.split()[1]: line.split()[0] for line in out.splitlines()}


def _declared(name: str) -> list[str]:
    return [REAL.published(name, "npz"), REAL.published(name, "json"), REAL.report(name, "json"),
            REAL.report(name, "txt")]


def test_the_published_files_are_the_archive_document_and_report():
    assert sorted(REAL.published_files(NAME).values()) == sorted(_declared(NAME))


def test_a_published_dataset_is_a_target_named_by_dry_run_summary_and_status(real_run):
    workflow, raw, cfg = real_run
    root = workflow.root
    before = _sha256sum(root, *_declared(NAME))

    for target in (*_declared(NAME), REAL.summary_json, REAL.derived_manifest, REAL.backup_record):
        proc = workflow.run("-n", target, "--config", cfg)
        assert "MissingRuleException" not in proc.stderr + proc.stdout
        assert "Nothing to be done" in proc.stdout + proc.stderr, target

    summary = workflow.run("--summary", "--config", cfg).stdout
    listed = {line.split("\t")[0] for line in summary.splitlines()[1:]}
    assert set(_declared(NAME)) <= listed
    assert {REAL.summary_json, REAL.derived_manifest, REAL.backup_record} <= listed

    (root / REAL.published(NAME, "npz")).unlink()
    proc = workflow.run("-n", REAL.published(NAME, "npz"), "--config", cfg)
    text = proc.stdout + proc.stderr
    assert "rule derive_dataset:" in text and f"dataset={NAME}" in text
    assert f"reason: Missing output files: {REAL.published(NAME, 'npz')}" in text
    assert text.count("rule ") == 1  # only this dataset's job: nothing else is stale
    status = cli(root, "status", "--raw-dir", str(raw))
    assert f"{REAL.published(NAME, 'npz')} is missing" in status.stdout  # the same words as Snakemake's reason

    workflow.run("--cores", "1", REAL.published(NAME, "npz"), "--config", cfg)
    assert _sha256sum(root, *_declared(NAME))[REAL.published(NAME, "npz")] == before[REAL.published(NAME, "npz")]
    assert "rule derive_dataset:" not in workflow.run("-n", "--config", cfg).stdout  # (its figures and exports are)
    assert workflow.run("--cores", "1", "--config", cfg).returncode == 0
    assert cli(root, "verify").returncode == 0

    # deleted by hand, a document (or a report) is published again by the next full run
    other = "cc_moresco"
    for path in (REAL.published(other, "json"), REAL.report(other, "txt")):
        (root / path).unlink()
    text = workflow.run("-n", "--config", cfg).stdout
    assert f"dataset={other}" in text and "Missing output files" in text
    status = cli(root, "status", "--raw-dir", str(raw)).stdout
    assert f"{REAL.published(other, 'json')} is missing" in status  # Snakemake's reason, in the same words
    workflow.run("--cores", "2", "--config", cfg)
    assert workflow.run("-n", "--config", cfg).stdout.count("rule derive_dataset:") == 0
    assert cli(root, "verify").returncode == 0


def test_a_failed_republish_keeps_the_published_files_as_they_were(real_run):
    workflow, raw, cfg = real_run
    root = workflow.root
    document = json.loads((root / REAL.published(NAME, "json")).read_text())
    published = [REAL.published(NAME, "npz"), REAL.published(NAME, "json")]
    inodes = {p: (root / p).stat().st_ino for p in published}
    sums = _sha256sum(root, *published)
    raw_file = raw / next(f["path"] for f in document["provenance"]["raw_files"] if f["role"] == "covariance")
    raw_file.write_bytes(raw_file.read_bytes() + b" ")  # no longer its pin: the job fails

    proc = workflow.run("--cores", "1", REAL.published(NAME, "npz"), "--config", cfg, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "Traceback" not in output
    assert "Restored previous version" not in output  # nothing was restored: nothing was touched
    removed = output.split("Removing output files of failed job")[1:]
    assert not any("/derived/" in block.split("\n\n")[0] for block in removed), removed
    assert not (root / ".snakemake" / "backups").exists()  # no copy of a published file
    assert {p: (root / p).stat().st_ino for p in published} == inodes
    assert _sha256sum(root, *published) == sums
    report = json.loads((root / REAL.report(NAME, "json")).read_text())
    assert report["state"] == "failed derive" and "sha256" in report["reason"]  # the new report says why
    assert not (root / REAL.receipt(NAME)).exists()  # stale: the next run tries again
    assert "rule derive_dataset:" in workflow.run("-n", "--config", cfg).stdout
    # also when only the published file is asked for (Snakemake records a failed job as finished, with its new
    # parameters: the job is not, and its kept outputs stay marked incomplete)
    assert "rule derive_dataset:" in workflow.run("-n", REAL.published(NAME, "npz"), "--config", cfg).stdout
    raw_file.write_bytes(raw_file.read_bytes()[:-1])  # fixed: the next run asking for the file publishes it
    workflow.run("--cores", "1", REAL.published(NAME, "npz"), "--config", cfg)
    assert (root / REAL.receipt(NAME)).exists()
    assert json.loads((root / REAL.report(NAME, "json")).read_text())["state"] == "published"


def test_delete_all_output_is_refused_and_deletes_nothing(real_run):
    workflow, raw, cfg = real_run
    root = workflow.root
    files = sorted(str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.is_file())
    sums = _sha256sum(root, *files)
    profile = root.parent / "deleting-profile"
    profile.mkdir()
    (profile / "config.yaml").write_text("delete-all-output: true\n")
    for words in (["--delete-all-output"], ["--delete-a", "-n"], ["--profile", str(profile)]):
        proc = workflow.run(*words, "--config", cfg, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 1 and "Traceback" not in output
        assert "--delete-all-output would delete the published datasets" in output
    assert _sha256sum(root, *files) == sums
