"""Stage functions write their own DVC outputs (run without Prefect), and the flows' Markdown comes from reports."""

from __future__ import annotations

import json

import polars as pl

from emotion_models.nets.registry import get_spec
from emotion_models.params import load_params
from emotion_models.reports.markdown import cross_validation_markdown, fusion_markdown, rejects_markdown, tuning_markdown
from tasks import cross_validate as cv
from tests.conftest import REPO

FOLD = {"fold": "fold 1", "test_speakers": ["ravdess/01"], "val_speakers": [], "train_corpora": ["ravdess"],
        "n": 40, "accuracy": 0.5, "macro_f1": 0.4}
RESULT = {"model": "audio", "protocols": {"ravdess_speaker_folds": {
    "folds": [FOLD], "pooled": {"n": 40, "accuracy": 0.5, "macro_f1": 0.4},
    "accuracy": {"mean": 0.5, "std": 0.0}, "macro_f1": {"mean": 0.4, "std": 0.0}}}}


def test_cross_validate_stage_writes_its_dvc_output(in_tmp_project, monkeypatch):
    seen = {}

    def fake_cross_validate(spec, params, config, report):
        seen["config"] = config
        return RESULT

    monkeypatch.setattr(cv, "cross_validate", fake_cross_validate)
    params = load_params(REPO / "params.yaml")
    assert cv.cross_validate_stage(get_spec("audio"), params) == RESULT
    assert seen["config"] == params.audio.evaluation  # params.yaml's protocols
    assert json.loads((in_tmp_project / "reports" / "audio" / "cross_validation.json").read_text()) == RESULT


def test_markdown_tables_hold_one_row_per_item():
    cross = cross_validation_markdown("audio", RESULT)
    assert "| fold 1: test ravdess/01 (no validation speaker" in cross and "| 40 | 0.500 | 0.400 |" in cross
    rejects = rejects_markdown(pl.DataFrame({"path": [f"clip{i}.wav" for i in range(150)], "reason": ["bad"] * 150}))
    assert rejects.count("| bad |") == 100 and rejects.startswith("| path | reason |")
    row = {"n": 6, "accuracy": 0.5, "macro_f1": 0.25, "coverage": 1.0}
    fusion = fusion_markdown({"choice": "late", "reason": "no validation", "late": row, "learned": row,
                              "views": {"audio only": row}})
    assert fusion.startswith("# Fusion used by scoring: late") and fusion.count("| 6 | 0.500 | 0.250 | 1.00 |") == 3
    trials = pl.DataFrame({"trial": [1, 2], "val_accuracy": [0.4, 0.6], "val_macro_f1": [0.3, 0.5],
                           "hyperparameters": ["{}", "{\"lr\": 1}"]})
    tuning = tuning_markdown("audio", trials, {"lr": 1})
    assert tuning.index("| 2 | 0.600") < tuning.index("| 1 | 0.400")  # best first
