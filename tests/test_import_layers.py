"""The package's import graph holds the layering of DESIGN.md ("Layout").

Every module's imports are read with :mod:`ast`, function-level imports included (they hide a
cycle, they don't remove it). Two rules:

- a module imports only from its own layer or lower ones;
- no import cycle, neither between modules nor between the top-level packages.

``from sparse_rl.pkg import name`` counts as an import of the submodule ``sparse_rl.pkg.name``
when that submodule exists, else of ``sparse_rl.pkg`` (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sparse_rl"

# Layers, lowest first (DESIGN.md "Layout").
LAYERS: dict[str, int] = {
    "_util": 0,
    "sparse": 0,
    "envs": 1,
    "agents": 2,
    "analysis": 3,
    "experiment": 4,
    "benchmark": 5,
    "cli": 6,
    "__main__": 6,
}
# Violations known when this test was written; each step of the restructure removes its own.
# An entry that no longer occurs fails the test too, so the list only shrinks.
KNOWN_VIOLATIONS: set[str] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` names or lies in (None: not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                target = _resolve(f"{source}.{alias.name}", modules) or _resolve(source, modules)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int | None:
    top = _top(module)
    if not top:  # sparse_rl/__init__.py
        return None
    return LAYERS.get(top)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def violations() -> set[str]:
    graph = import_graph()
    found: set[str] = set()
    for module, targets in graph.items():
        source_layer = layer_of(module)
        for target in targets:
            target_layer = layer_of(target)
            if source_layer is None or target_layer is None:
                continue
            if target_layer > source_layer:
                found.add(f"upward: {module} (L{source_layer}) -> {target} (L{target_layer})")
    for component in _cycles(graph):
        found.add("module cycle: " + " <-> ".join(component))
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = _top(module)
        if not source:
            continue
        packages.setdefault(source, set()).update(_top(t) for t in targets if _top(t) and _top(t) != source)
    for component in _cycles(packages):
        found.add("package cycle: " + " <-> ".join(component))
    return found


def test_every_module_has_a_layer() -> None:
    unknown = sorted({m for m in _modules() if _top(m) and layer_of(m) is None})
    assert not unknown, f"modules outside every layer (add them to LAYERS in this test): {unknown}"


def test_imports_follow_the_layers_without_cycles() -> None:
    found = violations()
    new = sorted(found - KNOWN_VIOLATIONS)
    gone = sorted(KNOWN_VIOLATIONS - found)
    assert not new, "imports that break the layering:\n" + "\n".join(new)
    assert not gone, "fixed: remove from KNOWN_VIOLATIONS:\n" + "\n".join(gone)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from sparse_rl.sparse import layers", "sparse_rl.sparse.layers"),
        ("from sparse_rl.agents import AGENTS", "sparse_rl.agents"),
        ("from . import kernels", "sparse_rl.sparse.kernels"),
        ("def f():\n    from sparse_rl.benchmark.sweep import run_sweep", "sparse_rl.benchmark.sweep"),
        ("import sparse_rl.envs.noise as n", "sparse_rl.envs.noise"),
    ],
)
def test_the_walker_sees_every_kind_of_import(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert expected in _imports("sparse_rl.sparse.probe", path, _modules())


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
