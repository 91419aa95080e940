"""The package layers import one way: flows -> tasks -> emotion_models, with no circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("emotion_models", "tasks", "flows")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every project module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in LAYERS}


GRAPH = {module_name(path): imports_of(path) for layer in LAYERS for path in (ROOT / layer).rglob("*.py")}


@pytest.mark.parametrize("lower, upper", [("emotion_models", "flows"), ("emotion_models", "tasks"),
                                          ("tasks", "flows")])
def test_layers_never_import_upward(lower: str, upper: str) -> None:
    wrong = {module: sorted(name for name in names if name.split(".")[0] == upper)
             for module, names in GRAPH.items() if module.split(".")[0] == lower}
    assert not {module: names for module, names in wrong.items() if names}


def test_no_import_cycles() -> None:
    edges = {module: {name for name in names if name in GRAPH and name != module} for module, names in GRAPH.items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(target):] + [target]))
            if target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
