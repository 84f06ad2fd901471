"""No import circle inside poolctl/backends/kvm/: arrows point one way, backend.py down
to its helpers and below. Every import counts, function-level and TYPE_CHECKING ones too,
so the check reads the source (ast) instead of what Python happens to have imported.

Run as a script to print the graph: ``python tests/backends/kvm/test_import_graph.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "poolctl.backends.kvm"
ROOT = Path(__file__).resolve().parents[3]
DIR = ROOT / Path(*PACKAGE.split("."))


def _module_name(path: Path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def _imported(node: ast.AST, importer: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against the importer's package
        parts = importer.split(".")
        base = parts if is_package else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # ``from pkg import name`` imports the submodule pkg.name when there is one, pkg itself otherwise.
    return [f"{source}.{a.name}" for a in node.names] + [source]


def graph() -> dict[str, set[str]]:
    files = sorted(DIR.glob("*.py"))
    modules = {_module_name(f) for f in files}
    edges: dict[str, set[str]] = {}
    for f in files:
        me = _module_name(f)
        targets: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names = _imported(node, me, f.name == "__init__.py")
            if isinstance(node, ast.ImportFrom) and any(n in modules for n in names[:-1]):
                names = names[:-1]  # the names are submodules: the package's __init__ is not the target
            targets |= {n for n in names if n in modules and n != me}
        edges[me] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_the_kvm_backend():
    edges = graph()
    assert len(edges) > 5  # the package was found and read
    assert cycles(edges) == []


def test_helpers_do_not_import_the_backend():
    edges = graph()
    importers = sorted(m for m, targets in edges.items() if f"{PACKAGE}.backend" in targets)
    assert importers == [PACKAGE]  # only the package's entry point


if __name__ == "__main__":
    g = graph()
    short = {m: m.removeprefix(PACKAGE).lstrip(".") or "__init__" for m in g}
    for m in sorted(g, key=short.get):
        print(f"{short[m]:>10} -> {', '.join(sorted(short[t] for t in g[m])) or '-'}")
    found = cycles(g)
    print("cycles:", "; ".join(" <-> ".join(short[m] for m in c) for c in found) if found else "none")
    sys.exit(1 if found else 0)
