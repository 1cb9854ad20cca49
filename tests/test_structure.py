"""The package's import graph: no cycle and no upward import, counting module-level and deferred (function-level)
imports alike."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT

PACKAGE = PROJECT / "src" / "pbuf_data"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module.startswith("pbuf_data"):
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pbuf_data"))
    return found


def graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = {t for t in _imports(path, name) if t in modules and t != name}
        # a package's __init__ is imported with any of its modules: the package itself is no edge target
        edges[name] = {t for t in targets if not (name.startswith(t + ".") and modules[t].name == "__init__.py")}
    return edges


def cycles_of(edges: dict[str, set[str]]) -> list[list[str]]:
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def test_the_import_graph_has_no_cycle():
    edges = graph()
    # the walk sees module-level and deferred imports (a sample of each)
    assert "pbuf_data.model.cosmology" in edges["pbuf_data.read.formats._bao"]
    assert "pbuf_data.model.likelihood" in edges["pbuf_data.model.dataset"]  # imported inside Dataset.likelihood
    cycles = cycles_of(edges)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles_of({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# The stages of the package, bottom to top (src/pbuf_data/<stage>/): a module imports only modules of its own stage
# or of a stage below it. pbuf_data itself and __main__ (its entry points) sit above them all.
STAGES = ["core", "model", "read", "publish", "fit", "operate"]
# Within a stage, top to bottom, the modules whose order matters: each imports only those after it here, and
# the stage's other modules import none of them.
ORDER = {"operate": ["cli", "cli_trees", "api", "ops", "status", "prune", "helper", "job", "project", "steps", "joblog"],
         "publish": ["verify", "restore", "backup_move", "backup"]}


def _place(module: str) -> tuple[int, str | None] | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in STAGES:
        return None
    return STAGES.index(parts[1]), parts[2] if len(parts) > 2 else None


def _allowed(source: str, target: str) -> bool:
    src, tgt = _place(source), _place(target)
    if src is None:
        return True
    if tgt is None:
        return False
    if tgt[0] != src[0]:
        return tgt[0] < src[0]
    order = ORDER.get(STAGES[src[0]], [])
    if tgt[1] not in order:
        return True
    return src[1] in order and order.index(tgt[1]) > order.index(src[1])


def layering_violations(edges: dict[str, set[str]]) -> list[str]:
    return [f"{source} -> {target}" for source, targets in sorted(edges.items()) for target in sorted(targets)
            if not _allowed(source, target)]


def test_every_module_lies_in_a_stage():
    edges = graph()
    outside = {m for m in edges if _place(m) is None} - {"pbuf_data", "pbuf_data.__main__"}
    assert not outside, outside
    assert {f"pbuf_data.{stage}.{name}" for stage, names in ORDER.items() for name in names} <= set(edges)


def test_no_module_imports_one_above_it():
    edges = graph()
    assert not layering_violations(edges), layering_violations(edges)


def test_the_layering_check_finds_an_upward_import():
    edges = {"pbuf_data.model.dataset": {"pbuf_data.publish.verify"},
             "pbuf_data.publish.verify": {"pbuf_data.operate.cli", "pbuf_data.read.raw"},
             "pbuf_data.operate.steps": {"pbuf_data.operate.job"}, "pbuf_data.operate.verdict": {"pbuf_data.operate.steps"},
             "pbuf_data.operate.cli": set()}
    assert layering_violations(edges) == [
        "pbuf_data.model.dataset -> pbuf_data.publish.verify", "pbuf_data.operate.steps -> pbuf_data.operate.job",
        "pbuf_data.operate.verdict -> pbuf_data.operate.steps", "pbuf_data.publish.verify -> pbuf_data.operate.cli"]


def test_no_module_is_much_over_400_lines():
    """A module a reader takes in at once: every module of the package is at most about 400 lines."""
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > 420}
    assert max(sizes.values()) > 300  # the count reads the files (a walk that found none would pass)
