"""The layouts: one module per registry ``format``, named after it, holding everything about that layout.

A layout module ``pbuf_data.read.formats.<format>`` provides, and nothing elsewhere knows a format by name:

``KIND``
    the kind of its datasets (``sn``, ``bao``, ``cmb``, ``cc``, ``rsd``), as its schema block says;
``derive(options, files) -> Result``
    the reader and its checks: the registry entry's options (schema defaults filled in) and the raw files by
    role (:class:`~pbuf_data.read.textio.RawFile`) to a :class:`~._common.Result`; bad input raises
    :class:`~pbuf_data.core.errors.PbufDataError` naming the file, line, column and check;
``check_entry(name, entry)``
    the cross-field rules of its entries that the schema cannot express (run when the registry is loaded);
``mock_files(entry, fiducial, rng, roles) -> {role: text}``
    its mock generator (the embedded default): the text of the files by role, from the fiducial
    (:class:`~pbuf_data.model.cosmology.Fiducial`) and ``rng`` only (:mod:`pbuf_data.read.mock`);
``fiducial_prediction(dataset, fiducial) -> array``
    the fiducial's value of every point of one of its datasets (the plots' model and pulls);
``FIGURE`` and ``AXIS_LABELS``
    which figure :mod:`pbuf_data.fit.plots` draws (``hubble``, ``panels``, ``table``, ``likelihood``) and the axis
    text of its observable types.

Its options are the schema block ``$defs/options_<format>`` of ``src/pbuf_data/schemas/registry.schema.yaml``, tied to
the format in that schema's ``allOf`` (with its kind and file roles). Modules whose name starts with ``_`` are
helpers the layouts share (the generic table and matrix vocabulary, the BAO labels, the mock text helpers), not
layouts. The list of layouts is the folder: a module here is a layout; adding one touches that module and its
schema block, nothing else (README, "How to add a layout").
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

FOLDER = Path(__file__).resolve().parent
# what a layout module defines (see the module doc)
INTERFACE = ("KIND", "FIGURE", "AXIS_LABELS", "derive", "check_entry", "mock_files", "fiducial_prediction")
FIGURES = ("hubble", "panels", "table", "likelihood")


def names(folder: Path = FOLDER) -> list[str]:
    """The formats: the modules of this folder whose names do not start with ``_``."""
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def layout(fmt: str) -> ModuleType:
    """The module of format ``fmt`` (imported when first asked for, to keep jobs light)."""
    if fmt not in names():
        from ...core.errors import PbufDataError

        raise PbufDataError(f"no layout module for format '{fmt}' (layouts: {', '.join(names())})", check="format")
    return importlib.import_module(f"{__name__}.{fmt}")


def source_files(fmt: str, folder: Path = FOLDER) -> list[Path]:
    """The source files of format ``fmt``: its module and the helpers of this folder it imports, transitively.

    :func:`pbuf_data.read.derive.code_fingerprint` hashes them, so a change to one layout's module reruns the
    datasets of that layout only, and a change to a shared helper those of the layouts importing it.
    """
    todo, seen = [f"{fmt}.py"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        for node in ast.walk(ast.parse((folder / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [alias.name for alias in node.names]
                todo += [f"{t}.py" for t in targets if (folder / f"{t}.py").is_file()]
    return [folder / name for name in sorted(seen)]
