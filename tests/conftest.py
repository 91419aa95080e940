"""Shared fixtures: the real data in ../shared/datasets and a project-local working folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTION_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
RAVDESS = SHARED / "ravdess-speech-16k"
CK_PLUS = SHARED / "ck-plus-48"
CREMA_D_VIDEO = SHARED / "crema-d-video"
CREMA_D_METADATA = SHARED / "crema-d-metadata"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def require_shared() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")


@pytest.fixture
def in_tmp_project(tmp_path, monkeypatch) -> Path:
    """Run a test with a temporary folder as the project root (outputs go there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
