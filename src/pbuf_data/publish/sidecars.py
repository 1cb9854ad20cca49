"""Checksums of the files a result tree holds beside its published data, and their verification.

The manifest (``manifests/derived.sha256``) covers the published folders (derived, validation,
exports). The other files a run writes are covered by ``sha256sum -c`` files ("sums") written by the
job that writes them, once they are complete (and removed before it starts rewriting them, so an
interrupted job leaves files without sums, never sums that no longer match):

- a dataset's figures, pages and document copy: ``state/<name>.plots.sha256`` (``summary`` for the
  validation summary's page). They are outputs of the dataset's export job, as its receipt is: Snakemake removes
  them all before the job runs and after it fails, so while the receipt is missing a listed figure may be too;
- a dataset's staged pair: ``staging/<name>.sha256`` (staging is scratch: a staged file deleted is a
  note, not a failure);
- the backup record: ``logs/backup/last_backup.json.sha256``.

:func:`verify_other_files` checks them and says which files of the tree no sums cover (the logs, the
receipts in ``state/``, files written before sums existed or by an interrupted job).
"""

from __future__ import annotations

from pathlib import Path

from ..core import layout
from ..core.errors import PbufDataError
from ..core.integrity import VerifyReport, check_entries, read_manifest, write_manifest


def forget(sums: str | Path) -> None:
    """Remove the sums of files about to be rewritten."""
    Path(sums).unlink(missing_ok=True)


def record(files, sums: str | Path) -> None:
    """Write the sums of ``files`` (paths relative to the project root, the current folder of a job)."""
    write_manifest([str(f) for f in files], sums)


def _sum_files(root: Path, tree: layout.Tree) -> list[tuple[str, str | None]]:
    """(sums file relative to root, why a listed file may be missing, or None) of the tree."""
    found = []
    for path in sorted((root / tree.state).glob("*.plots.sha256")):
        sums = str(path.relative_to(root))
        name = tree.dataset_of(sums)
        unfinished = name not in (None, "summary") and not (root / tree.export_receipt(name)).exists()
        found.append((sums, "its export job did not finish: the next run makes it again" if unfinished else None))
    found += [(str(p.relative_to(root)), "staging is scratch: nothing lost")
              for p in sorted((root / tree.staging).glob("*.sha256"))]
    if (root / tree.backup_record_sums).exists():
        found.append((tree.backup_record_sums, None))
    return found


def verify_other_files(root: str | Path, tree: layout.Tree) -> VerifyReport:
    """Check the figures, staged files and backup record against their sums; name the files not covered
    (``unchecked``: not a failure)."""
    root = Path(root)
    report = VerifyReport()
    covered: set[str] = set()
    for sums, why_missing in _sum_files(root, tree):
        try:
            entries = read_manifest(root / sums)
        except PbufDataError as exc:
            report.problems.append(str(exc))
            continue
        outside = [rel for rel in entries if not rel.startswith(f"{tree.base}/")]
        if outside:
            report.problems.append(f"{sums} lists files outside {tree.base}: {outside[:3]} (not read)")
            continue
        part = VerifyReport()
        check_entries(entries, root, part, tree.base)
        covered.update(entries)
        report.checked += part.checked
        report.corrupted += part.corrupted
        report.problems += part.problems
        if why_missing:
            report.notes += [f"{rel}: listed in {sums} but deleted ({why_missing})" for rel in part.missing]
        else:
            report.missing += part.missing
    unsummed = [str(p.relative_to(root)) for folder in (tree.plots, tree.staging)
                for p in sorted((root / folder).glob("*")) if p.is_file() and not p.name.endswith(".sha256")]
    if (root / tree.backup_record).exists():
        unsummed.append(tree.backup_record)
    unsummed = [rel for rel in unsummed if rel not in covered]
    if unsummed:
        report.unchecked.append(f"{', '.join(unsummed)}: no sums (written before they existed or by an interrupted "
                                "job; the next run that rewrites them records them)")
    report.unchecked.append(f"{tree.logs}/ (logs, processing summaries, audit trail) and the receipts in "
                            f"{tree.state}/ (Snakemake's outputs, rewritten by the job that made them)")
    return report
