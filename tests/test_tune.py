"""A tiny Hyperopt search on the shared RAVDESS features: every trial recorded, best = argmax, resumable."""

import json
import shutil

import polars as pl
import pytest
import yaml

from flows.tuning import run_tuning

pytestmark = pytest.mark.slow  # runs on the CI-sized `dvc repro` (pipeline_project)


def test_tiny_search_records_every_trial_and_writes_the_argmax(pipeline_project, tmp_path, monkeypatch):
    (tmp_path / "data" / "features").mkdir(parents=True)
    shutil.copy(pipeline_project / "data" / "manifest.parquet", tmp_path / "data")
    shutil.copytree(pipeline_project / "data" / "features" / "audio", tmp_path / "data" / "features" / "audio")
    raw = yaml.safe_load((pipeline_project / "params.yaml").read_text())
    raw["tune"] = {"algorithm": "tpe", "trials": 3, "parallel": 2, "seed": 1, "epochs": 1,
                   "space": {"audio": {"backbone": ["resnet18"], "units": [32, 64], "layers": [1],
                                       "dropout": [0.0], "batch_size": [128], "learning_rate": [0.001, 0.003]}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)

    best = run_tuning("audio", "params.yaml")
    trials = pl.read_parquet("models/audio/tune/trials.parquet")
    assert trials.height == 3 and trials["trial"].to_list() == [0, 1, 2]
    assert trials["val_accuracy"].is_between(0, 1).all() and (trials["seconds"] > 0).all()
    winner = trials.sort(["val_accuracy", "val_macro_f1", "trial"], descending=[True, True, False]).row(0, named=True)
    assert best == json.loads(winner["hyperparameters"])
    assert json.loads(open("models/audio/best_hyperparameters.json").read()) == best
    assert set(best) == {"backbone", "units", "layers", "dropout", "batch_size", "learning_rate"}
    report = open("reports/audio/tune.html").read()
    assert report.count("<tr><td>") == 3 and "<img src='data:image/png;base64," in report

    raw["tune"]["trials"] = 4  # resuming continues from the recorded trials
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    run_tuning("audio", "params.yaml")
    resumed = pl.read_parquet("models/audio/tune/trials.parquet")
    assert resumed.height == 4 and resumed.head(3).equals(trials)
