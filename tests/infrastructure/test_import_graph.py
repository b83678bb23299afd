"""The import graph of fraudcore and fraudlocal: no cycle, and the Lambda layer never
imports the local stack.

Every import counts, including those inside functions (a lazy import hides a cycle from
the interpreter, not from a reader). The graph is built from the source with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "fraudcore": ROOT / "layers" / "common" / "fraudcore",
    "fraudlocal": ROOT / "local" / "fraudlocal",
}


def module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            found[module_name(package, root, path)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import module`` counts as the module)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # ``from pkg import module`` imports the module; ``from pkg import name``, the package
            candidates = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        else:
            continue
        for candidate in candidates:
            # the longest project module the import names (a name imported from a module is not one)
            parts = candidate.split(".")
            for end in range(len(parts), 0, -1):
                prefix = ".".join(parts[:end])
                if prefix in known:
                    if prefix != name:
                        targets.add(prefix)
                    break
    return targets


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "fraudcore.backends" in graph and "fraudlocal.cli" in graph
    assert "fraudcore.settings" in graph["fraudcore.backends"]
    assert "fraudcore.backends" in graph["fraudlocal.adapters"]


def test_no_module_of_the_lambda_layer_imports_fraudlocal() -> None:
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t.split(".")[0] == "fraudlocal")
        for name, targets in graph.items()
        if name.startswith("fraudcore")
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": set(), "c": {"a"}}, None),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_relative_imports_resolve(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("from . import sibling\nfrom ..other import thing\nimport pkg.sub.leaf\n")
    known = {"pkg.sub.sibling", "pkg.other", "pkg.sub.leaf", "pkg.sub.mod"}
    assert imported("pkg.sub.mod", module, known) == {"pkg.sub.sibling", "pkg.other", "pkg.sub.leaf"}
