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
    assert "pbuf_data.formats._bao" in edges["pbuf_data.cosmology"]
    assert "pbuf_data.likelihood" in edges["pbuf_data.dataset"]  # imported inside Dataset.likelihood
    cycles = cycles_of(edges)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles_of({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# The operational layer, top to bottom: each of these imports only modules below it here, or modules of the
# library beneath (formats, data model, registry, paths), which never import any of these.
# (logs, with the software versions of provenance, sits below them all, beside the data model.)
OPERATIONS = ["__main__", "cli", "cli_trees", "api", "ops", "status", "prune", "job", "project", "steps", "verify",
              "restore", "backup_move", "backup", "raw"]


def layering_violations(edges: dict[str, set[str]]) -> list[str]:
    rank = {f"pbuf_data.{name}": i for i, name in enumerate(OPERATIONS)}
    found = []
    for source, targets in edges.items():
        for target in sorted(targets & set(rank)):
            if source not in rank or rank[target] <= rank[source]:
                found.append(f"{source} -> {target}")
    return found


def test_no_module_imports_one_above_it():
    edges = graph()
    assert {f"pbuf_data.{name}" for name in OPERATIONS} <= set(edges)  # every name is a module
    assert not layering_violations(edges), layering_violations(edges)


def test_the_layering_check_finds_an_upward_import():
    edges = {"pbuf_data.dataset": {"pbuf_data.verify"}, "pbuf_data.verify": {"pbuf_data.cli"}, "pbuf_data.cli": set()}
    assert layering_violations(edges) == ["pbuf_data.dataset -> pbuf_data.verify", "pbuf_data.verify -> pbuf_data.cli"]
