"""poolctl.tui has no import circles and its arrows point one way: app -> screens -> widgets -> lower.

Read from the source with ast, so imports inside functions and under TYPE_CHECKING count too:
a circle hidden there is still a circle to whoever reads or moves the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import poolctl.tui

ROOT = Path(poolctl.tui.__file__).parent
PACKAGE = "poolctl.tui"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def imported(path: Path, modules: set[str]) -> set[str]:
    """The poolctl.tui modules ``path`` imports, anywhere in it."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from poolctl.tui.screens import main` imports the module poolctl.tui.screens.main
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            # `import poolctl.tui.widgets.cells` counts as the module itself, not its packages
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported(p, modules) for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), as a sorted list."""
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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    """Higher may import lower, never the other way."""
    rest = module.removeprefix(PACKAGE + ".")
    if rest in ("app", PACKAGE):
        return 4
    if rest in ("commands", "migrations"):
        return 3
    if rest.startswith("screens"):
        return 2
    if rest.startswith("widgets"):
        return 1
    return 0  # messages, session, keys: what every layer may use


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "poolctl.tui.screens.main" in edges["poolctl.tui.app"]  # the reader sees real imports


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_arrows_point_down() -> None:
    upward = sorted(f"{src} -> {dst}" for src, dsts in graph().items() for dst in dsts if layer(dst) > layer(src))
    assert upward == []


def test_no_module_imports_the_app() -> None:
    edges = graph()
    assert sorted(src for src, dsts in edges.items() if "poolctl.tui.app" in dsts) == []


if __name__ == "__main__":  # python tests/tui/test_import_graph.py: the graph, as edges
    for src, dsts in sorted(graph().items()):
        for dst in sorted(dsts):
            print(f"{src} -> {dst}")
    print("cycles:", cycles(graph()) or "none")
