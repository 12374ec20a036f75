"""The shape of the package: no import cycles, no module that has outgrown one job."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "ptlab"
MAX_LINES = 420  # "no module over ~400 lines": a module this long is doing more than one job


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported_modules(path: Path, known: set[str], at_import_only: bool) -> set[str]:
    """The ptlab modules ``path`` imports: at import time only, or also inside functions (lazily).

    ``if TYPE_CHECKING:`` blocks never run. ``from ptlab import catalog`` imports the module
    ptlab.catalog; the package ``ptlab`` itself is always initialised before any of its modules,
    so an import of it cannot close a cycle.
    """
    found: set[str] = set()

    def visit(nodes: list[ast.stmt], at_import: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse, at_import)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if at_import or not at_import_only:
                    if isinstance(node, ast.Import):
                        found.update(alias.name for alias in node.names)
                    elif node.module and node.level == 0:
                        subs = {f"{node.module}.{alias.name}" for alias in node.names} & known
                        found.update(subs or {node.module})
                continue
            function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child], at_import and not function)
                elif isinstance(child, ast.excepthandler):
                    visit(child.body, at_import and not function)

    visit(ast.parse(path.read_text(encoding="utf-8")).body, True)
    return (found & known) - {"ptlab"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def import_graph(at_import_only: bool) -> dict[str, set[str]]:
    names = module_names()
    return {name: imported_modules(path, set(names), at_import_only) - {name} for name, path in names.items()}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_lazy_imports_and_skips_type_checking() -> None:
    graph_all, graph_import = import_graph(at_import_only=False), import_graph(at_import_only=True)
    assert "ptlab.api" in graph_all["ptlab.cli"] and "ptlab.api" not in graph_import["ptlab.cli"]  # lazy in cli
    assert "ptlab.api" not in graph_all["ptlab.engine.trainer"]  # only under TYPE_CHECKING there


def test_no_import_cycle_at_import_time_or_through_lazy_imports() -> None:
    assert cycles(import_graph(at_import_only=True)) == []
    assert cycles(import_graph(at_import_only=False)) == []


def test_no_module_has_outgrown_one_job() -> None:
    long = {str(path.relative_to(REPO)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these along their seams: {long}"
