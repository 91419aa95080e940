"""`emotion` without a trained project: its commands, and expected failures (the project's EmotionError) are one line; anything else shows its traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import main as cli_main
from emotion_models.errors import EmotionError, MissingInput
from emotion_models.params import ParamsError
from emotion_models.scoring.model_identity import ModelsUnavailable
from emotion_models.scoring.outputs import OutputNotWritable
from tests.conftest import REPO

EMOTION = str(Path(sys.executable).parent / "emotion")


def run_main(monkeypatch, error: Exception) -> None:
    def command() -> None:
        raise error

    monkeypatch.setattr(cli_main, "app", command)
    cli_main.main()


def test_expected_failure_prints_one_line(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_main(monkeypatch, ModelsUnavailable("trained models missing: models/scoring (run `dvc repro` first)"))
    assert stopped.value.code == 1
    assert capsys.readouterr().out.strip() == "error: trained models missing: models/scoring (run `dvc repro` first)"


def test_a_bug_keeps_its_traceback(monkeypatch):
    with pytest.raises(KeyError, match="fused_happy"):  # not swallowed into one line
        run_main(monkeypatch, KeyError("fused_happy"))


def test_the_expected_failures_are_emotion_errors():
    for kind in (ParamsError, ModelsUnavailable, OutputNotWritable, MissingInput):
        assert issubclass(kind, EmotionError)
    assert issubclass(MissingInput, FileNotFoundError)  # callers that catch a missing file still do


def test_a_missing_data_root_is_one_line_from_the_command(tmp_path):
    result = subprocess.run([EMOTION, "evaluate", "audio", "--data-root", str(tmp_path / "nowhere"), "--out",
                             str(tmp_path / "m.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "nowhere: data root not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_model_or_dataset_is_a_usage_error(tmp_path):
    for args in (["evaluate", "voice"], ["evaluate", "audio", "--dataset", "nope"]):
        result = subprocess.run([EMOTION, *args, "--data-root", str(tmp_path), "--out", str(tmp_path / "m.json")],
                                cwd=REPO, capture_output=True, text=True, timeout=300, env={"COLUMNS": "200",
                                                                                              "PATH": "/usr/bin:/bin"})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_help_lists_every_command():
    from typer.main import get_command

    assert set(get_command(cli_main.app).commands) == {"evaluate", "explain", "predict", "score", "serve", "app", "tune"}
    result = subprocess.run([EMOTION, "--help"], capture_output=True, text=True, timeout=120, env={"COLUMNS": "200",
                                                                                                    "PATH": "/usr/bin"})
    assert result.returncode == 0
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert {"evaluate", "explain", "predict", "score", "serve", "app", "tune"} <= listed
