"""dvc.yaml code dependencies are complete: every project module a stage runs (its ``python -m flows.X STAGE
[MODEL]`` flow, transitively through the imports) is among the stage's deps, so changing it reruns the stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_layers import imports_of

DVC_FILES = ("dvc.yaml", "tuning/dvc.yaml")
CODE = ("emotion_models/", "tasks/", "flows/")


def module_file(name: str) -> Path | None:
    """The file of the longest prefix of ``name`` that is a project module (``a.b.function`` -> a/b.py)."""
    parts = name.split(".")
    while parts:
        path = REPO.joinpath(*parts)
        if path.with_suffix(".py").is_file():
            return path.with_suffix(".py")
        if (path / "__init__.py").is_file():
            return path / "__init__.py"
        parts = parts[:-1]
    return None


def runs_code(init: Path) -> bool:
    """Whether a package's __init__.py does more than a docstring, future imports and constants."""
    def inert(node: ast.stmt) -> bool:
        return (isinstance(node, (ast.Expr, ast.Assign)) and isinstance(node.value, ast.Constant)
                or isinstance(node, ast.ImportFrom) and node.module == "__future__")

    return not all(inert(node) for node in ast.parse(init.read_text()).body)


def with_packages(path: Path) -> set[Path]:
    """``path`` and the __init__.py files importing it runs (those with code)."""
    found = {path} if path.name != "__init__.py" or runs_code(path) else set()
    for parent in path.parents:
        if parent == REPO:
            break
        init = parent / "__init__.py"
        if init != path and init.is_file() and runs_code(init):
            found.add(init)
    return found


def project_imports(nodes: list[ast.AST]) -> set[str]:
    names = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def stage_entry(path: Path, stage: str) -> set[str]:
    """What running ``stage`` of a flow module imports: its module-level imports and those inside the stage's
    function (found in the ``{"stage": function}`` table) and the module's functions it calls."""
    tree = ast.parse(path.read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    tables = [node for node in ast.walk(tree) if isinstance(node, ast.Dict)]
    entry = next(value.id for table in tables for key, value in zip(table.keys, table.values)
                 if isinstance(key, ast.Constant) and key.value == stage and isinstance(value, ast.Name))
    reached, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in reached or name not in functions:
            continue
        reached.add(name)
        todo += [node.id for node in ast.walk(functions[name]) if isinstance(node, ast.Name)]
    module_level = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return project_imports(module_level + [functions[name] for name in reached])


def stage_code(cmd: str) -> set[str]:
    """The project files ``python -m flows.X STAGE [MODEL]`` runs, relative to the repository root."""
    _, _, module, stage, *model = cmd.split()
    entry = module_file(module)
    files, seen = with_packages(entry), {entry}
    todo = [module_file(name) for name in stage_entry(entry, stage)]
    if model:  # the model's spec, which nets.registry imports by name
        todo.append(REPO / "emotion_models" / "nets" / f"{model[0]}.py")
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        files |= with_packages(path)
        todo += [module_file(name) for name in imports_of(path)]
    return {str(path.relative_to(REPO)) for path in files}


def stages():
    for dvc_file in DVC_FILES:
        for name, stage in yaml.safe_load((REPO / dvc_file).read_text())["stages"].items():
            yield pytest.param(stage, id=f"{dvc_file}:{name}")


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", stages())
def test_stage_deps_hold_every_module_it_runs(stage: dict):
    deps = [str(dep) for dep in stage.get("deps", [])]
    missing = sorted(path for path in stage_code(stage["cmd"]) if not covered(path, deps))
    assert not missing, f"add to deps: {missing}"
    stale = [dep for dep in deps if dep.startswith(CODE) and not (REPO / dep).exists()]
    assert not stale, f"deps that no longer exist: {stale}"


def test_the_check_sees_transitive_imports():
    code = stage_code("python -m flows.models train audio")
    for path in ("flows/models.py", "flows/common.py", "tasks/train.py", "emotion_models/nets/audio.py",
                 "emotion_models/nets/spec.py", "emotion_models/features/shards.py", "emotion_models/params.py"):
        assert path in code
    assert "tasks/evaluate.py" not in code  # another stage's task
