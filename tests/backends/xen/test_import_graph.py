"""No import circle inside poolctl/backends/xen/, counting every import statement: at module level,
inside functions and under ``if TYPE_CHECKING``. A helper gets what it needs handed to it instead.

Run as a script (``python -m tests.backends.xen.test_import_graph``) it prints the graph."""

from __future__ import annotations

import ast
from pathlib import Path

import poolctl.backends.xen as xen

PACKAGE = "poolctl.backends.xen"
FOLDER = Path(xen.__file__).parent


def _module_name(path: Path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(source: str, module: str, modules: set[str], is_package: bool = False) -> set[str]:
    """The ``modules`` that ``source`` (the text of ``module``) imports, at any depth of its tree."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"  # `from package import submodule` imports the submodule
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != module}


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of this package it imports."""
    paths = sorted(FOLDER.glob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {
        _module_name(p): imports_of(p.read_text(), _module_name(p), modules, p.name == "__init__.py") for p in paths
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle as [a, b, ..., a], or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found:
            return found
    return None


def test_the_graph_sees_hidden_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from poolctl.backends.xen.backend import XenBackend\n"
        "def f():\n    from . import events\n    import poolctl.backends.xen.tasks\n"
    )
    modules = {f"{PACKAGE}.{m}" for m in ("backend", "events", "tasks", "migration")}
    found = imports_of(source, f"{PACKAGE}.migration", modules)
    assert found == {f"{PACKAGE}.backend", f"{PACKAGE}.events", f"{PACKAGE}.tasks"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_the_xen_backend() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.backend" in graph and f"{PACKAGE}.migration" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or ())


if __name__ == "__main__":
    g = import_graph()
    for mod in sorted(g):
        print(f"{mod.rsplit('.', 1)[-1]:>10} -> {', '.join(sorted(t.rsplit('.', 1)[-1] for t in g[mod])) or '-'}")
    cycle = find_cycle(g)
    print("cycle:", " -> ".join(cycle) if cycle else "none")
