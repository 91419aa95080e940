"""A throw-away copy of the project with CI-sized parameters, for running `dvc repro` in tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, SHARED

COPIED = ("emotion_models", "flows", "tasks", "tuning", "docs/measurements", "dvc.yaml", "params.yaml")


def ci_params(raw: dict) -> dict:
    """Few epochs and the shared data (FER2013: 20 images per emotion and Usage, RAF-DB: 20 per emotion):
    a whole branch runs in a few minutes on 2 CPU cores."""
    raw["data"]["root"] = str(SHARED)
    raw["data"]["datasets"]["tess"]["max_per_class"] = 20  # 20 of each of its 7 emotions
    raw["data"]["datasets"]["fer2013"]["max_per_class"] = 20
    raw["data"]["datasets"]["raf_db"]["max_per_class"] = 20
    raw["data"]["datasets"]["casia"]["max_per_class"] = 8  # 8 of each of its 6 emotions, from all 4 speakers
    for model in ("audio", "face"):
        raw[model]["train"].update(epochs=2, early_stopping_patience=2)
    raw["face"]["pretrain"]["train"].update(epochs=2, early_stopping_patience=2)
    raw["face"]["train"]["epoch_samples"] = 512
    raw["video"]["train"].update(epochs=2, early_stopping_patience=2)
    raw["video"]["features"]["compose_clips"] = 24
    return raw


def make_project(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)
    for model in ("audio", "face", "video"):  # untuned, as in a fresh clone
        (target / "models" / model).mkdir(parents=True, exist_ok=True)
        (target / "models" / model / "best_hyperparameters.json").write_text("{}\n")
    raw = yaml.safe_load((target / "params.yaml").read_text())
    (target / "params.yaml").write_text(yaml.safe_dump(ci_params(raw), sort_keys=False))
    dvc(target, "init", "--no-scm", "-q")
    dvc(target, "config", "core.analytics", "false")
    return target


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run dvc in ``project`` with this interpreter's environment first on PATH; raise with its output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "EMOTION_DATA_ROOT": str(SHARED)}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env,
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result
