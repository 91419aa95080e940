"""The command line of DVC stages (``python -m flows.X STAGE [MODEL] [--verbose]``) and of cross-validation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from flows import common
from tests.conftest import REPO


@pytest.fixture
def calls(monkeypatch) -> list:
    seen: list = []
    monkeypatch.setattr(common, "silence_native_logs", lambda: seen.append("silenced"))
    return seen


def test_stage_and_model_run_the_stage_with_the_model(calls):
    app = common.stage_app({"train": lambda model: calls.append(("train", model)), "evaluate": print},
                           ("audio", "face"))
    assert CliRunner().invoke(app, ["train", "face"]).exit_code == 0
    assert calls == ["silenced", ("train", "face")]
    assert CliRunner().invoke(app, ["train", "face", "--verbose"]).exit_code == 0
    assert calls[-1] == ("train", "face") and calls.count("silenced") == 1  # --verbose keeps native logs


def test_unknown_stage_or_model_is_a_usage_error(calls):
    app = common.stage_app({"train": lambda model: calls.append(model)}, ("audio",))
    for argv in (["fit", "audio"], ["train", "video"], ["train"]):
        assert CliRunner().invoke(app, argv).exit_code == 2
    assert calls == []


def test_stage_without_model(calls):
    app = common.stage_app({"download": lambda: calls.append("download")})
    assert CliRunner().invoke(app, ["download"]).exit_code == 0 and calls[-1] == "download"
    assert CliRunner().invoke(app, ["download", "audio"]).exit_code == 2


@pytest.mark.parametrize("dvc_file", ["dvc.yaml", "tuning/dvc.yaml"])
def test_every_dvc_command_names_a_stage_of_its_flow_module(dvc_file):
    """Each dvc.yaml cmd is ``python -m flows.X STAGE [MODEL]`` with a stage (and model) the module accepts."""
    for name, stage in yaml.safe_load((REPO / dvc_file).read_text())["stages"].items():
        python, dash_m, module, *args = stage["cmd"].split()
        assert (python, dash_m) == ("python", "-m") and module.startswith("flows."), name
        source = (REPO / (module.replace(".", "/") + ".py")).read_text()
        assert f'"{args[0]}"' in source, f"{name}: {module} has no stage {args[0]}"


def test_cross_validate_command_line_needs_out_for_custom_protocols():
    result = subprocess.run([sys.executable, "-m", "tasks.cross_validate", "audio", "--corpus", "ravdess", "--folds",
                             "3", "--leave-corpus-out"], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2 and "need --out" in result.stderr
