"""Raw files against their registry pins, without deriving anything."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import PbufDataError
from ..core.integrity import VerifyReport, sha256_file
from .registry import load_registry, resolve_raw_path


def verify_raw(root: Path, raw_dir: str | Path, report: VerifyReport, registry: str = "config/registry.yaml") -> None:
    for name, entry in load_registry(root / registry).items():
        for spec in entry["files"].values():
            try:
                path = resolve_raw_path(raw_dir, spec["path"], dataset=name)
            except PbufDataError as exc:
                report.problems.append(str(exc))
                continue
            report.checked += 1
            if not path.is_file():
                report.missing.append(str(path))
            elif spec.get("sha256") and (actual := sha256_file(path)) != spec["sha256"]:
                report.corrupted.append((str(path), spec["sha256"], actual))
