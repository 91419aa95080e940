"""Shared fixtures: the real data in ../shared/datasets and a project-local working folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTION_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
RAVDESS = SHARED / "ravdess-speech-16k"
CK_PLUS = SHARED / "ck-plus-48"
TESS = SHARED / "tess-16k"
SAVEE = SHARED / "savee-audio-16k"
FER2013 = SHARED / "fer2013-images"
CREMA_D_VIDEO = SHARED / "crema-d-video"
CREMA_D_METADATA = SHARED / "crema-d-metadata"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def require_shared() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")


@pytest.fixture(autouse=True)
def keep_main_module():
    """Streamlit's AppTest installs each page as `__main__`; put pytest's back afterwards, or every later
    spawned process (feature workers, Dask nannies) would re-run that page on start."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def in_tmp_project(tmp_path, monkeypatch) -> Path:
    """Run a test with a temporary folder as the project root (outputs go there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect API for the whole session; subprocesses (dvc stages) use it too."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@pytest.fixture(scope="session")
def pipeline_project(tmp_path_factory, prefect_api) -> Path:
    """A copy of the project after a CI-sized `dvc repro` on ../shared/datasets (trained models inside)."""
    from tests.pipeline_project import dvc, make_project

    require_shared()
    project = make_project(tmp_path_factory.mktemp("pipeline-project"))
    dvc(project, "repro")
    return project
