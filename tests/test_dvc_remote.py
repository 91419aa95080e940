"""Trained versions travel through a DVC remote: push from one project, pull into a fresh clone.

The fresh clone holds only what git tracks (code, dvc.yaml, dvc.lock, params.yaml, .dvc/config):
`dvc pull` must restore the models and features so that `dvc status` is clean, through a local
folder remote and through an S3 remote (moto's S3 server on 127.0.0.1). Retraining the audio
model there (same machine) must reproduce the pulled metrics exactly.
"""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from tests.pipeline_project import COPIED, dvc

pytestmark = pytest.mark.slow  # runs on the CI-sized `dvc repro` (pipeline_project)

TRACKED = (*COPIED, "dvc.lock", "models/audio/best_hyperparameters.json", "models/face/best_hyperparameters.json",
           "models/video/best_hyperparameters.json")


def fresh_clone(project: Path, target: Path) -> Path:
    """What `git clone` of ``project`` would hold: tracked files only, no data, models or cache."""
    for name in TRACKED:
        source, destination = project / name, target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination)
    (target / ".dvc").mkdir()
    shutil.copy(project / ".dvc" / "config", target / ".dvc" / "config")
    return target


def test_push_then_pull_into_a_fresh_clone_restores_models(pipeline_project, tmp_path):
    remote = tmp_path / "remote"
    dvc(pipeline_project, "remote", "add", "--default", "--force", "team", str(remote))
    dvc(pipeline_project, "push")
    clone = fresh_clone(pipeline_project, tmp_path / "clone")
    assert not (clone / "models" / "audio" / "model.pt").exists()

    dvc(clone, "pull")
    for model in ("audio", "face", "video"):
        assert filecmp.cmp(pipeline_project / "models" / model / "model.pt", clone / "models" / model / "model.pt",
                           shallow=False)
    assert "up to date" in dvc(clone, "status", "dvc.yaml").stdout  # tuning/dvc.yaml runs only on demand

    # Exactly repeatable on one machine: retrain and re-evaluate the audio model in the clone.
    dvc(clone, "repro", "--force", "--single-item", "audio_train")
    dvc(clone, "repro", "--single-item", "audio_evaluate")
    retrained = json.loads((clone / "reports" / "audio" / "metrics.json").read_text())
    original = json.loads((pipeline_project / "reports" / "audio" / "metrics.json").read_text())
    assert retrained == original


def test_push_and_pull_through_s3(pipeline_project, tmp_path, monkeypatch):
    from moto.server import ThreadedMotoServer

    boto3 = pytest.importorskip("boto3")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="emotion-models")
        for project in (pipeline_project, fresh_clone(pipeline_project, tmp_path / "clone")):
            dvc(project, "remote", "add", "--force", "s3team", "s3://emotion-models/pipeline")
            dvc(project, "remote", "modify", "s3team", "endpointurl", endpoint)
        dvc(pipeline_project, "push", "--remote", "s3team", "audio_train")
        listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="emotion-models")
        assert listed["KeyCount"] >= 1

        clone = tmp_path / "clone"
        dvc(clone, "pull", "--remote", "s3team", "audio_train")
        assert filecmp.cmp(pipeline_project / "models" / "audio" / "model.pt", clone / "models" / "audio" / "model.pt",
                           shallow=False)
    finally:
        server.stop()
