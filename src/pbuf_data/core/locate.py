"""Finding the project folder: the CLI and the Python API work from any of its sub-folders.

A project folder holds ``Snakefile`` and ``config/config.yaml``. Without an
explicit root, the current folder and then each folder above it are tried;
with one, that folder (or one above it) must be a project. Anything else is
refused with one message, instead of answers about files that are merely
looked for in the wrong place.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PbufDataError

MARKERS = ("Snakefile", "config/config.yaml")


def is_project(folder: Path) -> bool:
    return all((folder / marker).is_file() for marker in MARKERS)


def find_project(root: str | Path | None = None) -> Path:
    """The project folder at or above ``root`` (default: the current folder), resolved."""
    start = Path(root if root is not None else ".").resolve()
    for folder in (start, *start.parents):
        if is_project(folder):
            return folder
    where = f"{start}" if root is not None else f"the current folder ({start})"
    raise PbufDataError(
        f"not a pbuf-data project: neither {where} nor any folder above it holds "
        f"{' and '.join(MARKERS)}; run from inside the project or use --root PATH (root=PATH in Python)",
        check="project folder",
    )
