"""End to end: `emotion app` in a real headless Chromium over a folder scored from the shared CREMA-D clips."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.browser import (
    browser_binaries,
    chromium_driver,
    full_page_screenshot,
    running_app,
    wait_for_element,
    wait_for_text,
)
from tests.conftest import CREMA_D_VIDEO, REPO
from tests.test_cli import emotion

pytestmark = pytest.mark.slow  # runs on the CI-sized `dvc repro` (pipeline_project)

SCREENSHOTS = REPO / "reports" / "app"


@pytest.fixture(scope="module")
def scored_crema(pipeline_project, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crema-scores")
    emotion(pipeline_project, "score", str(CREMA_D_VIDEO), "--out", str(out))
    return out


def test_scores_and_predict_in_chromium(pipeline_project, scored_crema):
    chromium, chromedriver = browser_binaries()
    if not chromium or not chromedriver:
        pytest.skip("chromium and chromedriver are not installed (scripts/install.sh installs them: "
                    "apt-get install chromium chromium-driver)")
    videos = pl.read_parquet(scored_crema / "videos" / "*.parquet")
    expected = {Path(path).name: emotion or "no person"
                for path, emotion in zip(videos["path"], videos["dominant_emotion"])}
    assert len(expected) == len(list(CREMA_D_VIDEO.glob("*.flv")))
    with running_app(pipeline_project, "--scores", str(scored_crema)) as url:
        driver = chromium_driver()
        try:
            driver.get(f"{url}/scores")
            wait_for_text(driver, ["Scored folders", *expected, *set(expected.values()), "Rejected files (0)"])
            full_page_screenshot(driver, SCREENSHOTS / "scores.png")

            driver.get(f"{url}/predict")
            wait_for_text(driver, ["Predict one file", "Upload a file"])
            clip = sorted(CREMA_D_VIDEO.glob("*.flv"))[0]
            wait_for_element(driver, "input[type=file]").send_keys(str(clip))
            source = wait_for_text(driver, [f"Prediction: {expected[clip.name]}", "Timeline", "play from 0:00.0"],
                                   timeout=300)
            assert "<video" in source
            full_page_screenshot(driver, SCREENSHOTS / "predict.png")

            driver.get(f"{url}/models")
            wait_for_text(driver, ["Models", "Test accuracy", "Per class"])
            full_page_screenshot(driver, SCREENSHOTS / "models.png")
        finally:
            driver.quit()
