"""The package layers import one way, with no circles: cli -> flows -> tasks -> emotion_models, and the review
app -> emotion_models (the app never starts flows or stages)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS = ("emotion_models", "tasks", "flows", "cli", "app")
# what each top-level package may import besides itself
ALLOWED = {"emotion_models": set(), "tasks": {"emotion_models"}, "flows": {"tasks", "emotion_models"},
           "cli": {"flows", "tasks", "emotion_models", "app"}, "app": {"emotion_models"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
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


GRAPH = {module_name(path): imports_of(path) for layer in LAYERS for path in (REPO / layer).rglob("*.py")}


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_lower_ones(layer: str) -> None:
    wrong = {module: sorted(name for name in names if name.split(".")[0] not in ALLOWED[layer] | {layer})
             for module, names in GRAPH.items() if module.split(".")[0] == layer}
    assert not {module: names for module, names in wrong.items() if names}


def test_flows_hold_prefect_flows_only() -> None:
    """Every module of flows/ imports Prefect (the CLI and the app live in cli/ and app/)."""
    def imports_prefect(path: Path) -> bool:
        return any(isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            name.split(".")[0] == "prefect" for name in ([node.module or ""] if isinstance(node, ast.ImportFrom)
                                                         else [alias.name for alias in node.names]))
            for node in ast.walk(ast.parse(path.read_text())))

    without = [path.name for path in (REPO / "flows").rglob("*.py") if path.name != "__init__.py"
               and not imports_prefect(path)]
    assert not without


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


# emotion_models' sub-packages, lowest first: each imports only the base modules (emotion_models/*.py) and the
# sub-packages before it. export and predict run the torch checkpoints above torch-free scoring.
SUBPACKAGE_ORDER = ("data", "features", "training", "nets", "scoring", "reports", "export", "predict")


def library_rank(name: str) -> tuple[int, str]:
    """(rank, sub-package) of an emotion_models module or imported name; the base modules rank 0."""
    parts = name.split(".")
    package = parts[1] if len(parts) > 1 and (REPO / "emotion_models" / parts[1]).is_dir() else ""
    return (SUBPACKAGE_ORDER.index(package) + 1 if package else 0), package


def test_every_subpackage_is_in_the_declared_order():
    found = {path.name for path in (REPO / "emotion_models").iterdir() if (path / "__init__.py").is_file()}
    assert found == set(SUBPACKAGE_ORDER)


def test_library_subpackages_import_only_lower_ones():
    upward = {}
    for module, names in GRAPH.items():
        if module.split(".")[0] != "emotion_models":
            continue
        rank, package = library_rank(module)
        wrong = sorted(name for name in names if name.startswith("emotion_models.")
                       and (library_rank(name)[0] > rank or library_rank(name)[0] == rank and library_rank(name)[1] != package))
        if wrong:
            upward[module] = wrong
    assert not upward
