"""`dvc repro` of the data layer and the audio branch on the shared RAVDESS actors, CI-sized."""

import json

import polars as pl
import pytest
import torch

from tests.conftest import require_shared
from tests.pipeline_project import dvc, make_project


@pytest.fixture(scope="module")
def audio_project(tmp_path_factory, prefect_api):
    require_shared()
    project = make_project(tmp_path_factory.mktemp("audio-project"))
    dvc(project, "repro", "audio_evaluate")
    return project


def test_manifest_from_dvc_repro(audio_project):
    manifest = pl.read_parquet(audio_project / "data" / "manifest.parquet")
    assert dict(manifest.group_by("dataset").len().iter_rows()) == {
        "ravdess_audio": 720, "ck_plus": 594, "crema_d_video": 6}
    assert "ravdess_audio" in (audio_project / "reports" / "data" / "summary.md").read_text()


def test_audio_outputs_are_well_formed(audio_project):
    metrics = json.loads((audio_project / "reports" / "audio" / "metrics.json").read_text())
    assert metrics["n"] == 120  # the two test actors' clips
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["macro_f1"] <= 1.0
    assert len(metrics["confusion"]) == 5 and sum(map(sum, metrics["confusion"])) == 120
    assert set(metrics["per_class"]) == {"Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"}
    assert metrics["per_dataset"]["ravdess_audio"]["n"] == 120
    history = (audio_project / "models" / "audio" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss") and len(history) == 3
    confusion = (audio_project / "reports" / "audio" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 121
    html = (audio_project / "reports" / "audio" / "report.html").read_text()
    assert "speaker-independent" in html and "data:image/png;base64" in html
    payload = torch.load(audio_project / "models" / "audio" / "model.pt", weights_only=True)
    assert json.loads(payload["meta"])["class_names"][4] == "Surprise/Disgust"


def test_second_repro_does_nothing(audio_project):
    result = dvc(audio_project, "repro", "audio_evaluate")
    assert "Running stage" not in result.stdout
    status = dvc(audio_project, "status", "audio_evaluate")
    assert "up to date" in status.stdout
