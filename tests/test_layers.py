"""The package's layers: every import points down, none in a circle (see docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "stepkit"

# Lower numbers are lower layers; a module may import its own layer and those below.
LAYERS = [
    ("stepkit.errors", "stepkit._checks"),
    ("stepkit.events",),
    ("stepkit.checkpoints",),
    ("stepkit.pipeline",),
    ("stepkit.stores",),
    ("stepkit.engine",),
    ("stepkit.durable",),
    ("stepkit.workflows",),
    ("stepkit._pipeline",),
    ("stepkit.graph",),
    ("stepkit.testing", "stepkit.cli", "stepkit.__main__", "stepkit"),
]
# Pairs that the numbering alone would allow, but the architecture forbids.
FORBIDDEN = [
    ("stepkit.engine", "stepkit.stores"),  # plain runs know nothing of stores
    ("stepkit.stores", "stepkit.pipeline"),  # stores know records, never the builder
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    best = (-1, -1)  # (length of the matching prefix, layer)
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), number)
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Modules of stepkit imported by ``path`` anywhere, except under ``if TYPE_CHECKING``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from stepkit.stores import _transitions` names a module
                target = SRC / Path(*f"{base}.{alias.name}".split("."))
                if target.is_dir() or target.with_suffix(".py").is_file():
                    found.add(f"{base}.{alias.name}")
                else:
                    found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m == "stepkit" or m.startswith("stepkit.")}


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}
# the package __init__ re-exports lazily (by name); its imports are not an upward arrow
LAZY_ROOT = {"stepkit"}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    """A module imports only from its own layer or the layers below (function-level imports too)."""
    if module in LAZY_ROOT:
        return
    up = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert up == [], f"{module} imports upwards: {up}"
    for low, high in FORBIDDEN:
        if module == low or module.startswith(low + "."):
            bad = sorted(m for m in GRAPH[module] if m == high or m.startswith(high + "."))
            assert bad == [], f"{module} must not import {bad}"


def test_no_import_cycle():
    """No module reaches itself by following imports (function-level ones included)."""
    done: set[str] = set()

    def walk(module: str, trail: list[str]) -> None:
        if module in trail:
            cycle = [*trail[trail.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done or module not in GRAPH:
            return
        for target in sorted(GRAPH[module]):
            walk(target, [*trail, module])
        done.add(module)

    for module in sorted(GRAPH):
        walk(module, [])
