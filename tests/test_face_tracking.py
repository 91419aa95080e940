"""Face Mesh in tracking mode over a video's frames: close to the per-image landmarks, and a video's
landmarks never depend on the video before it."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_models.features.face import FacePreprocessor
from emotion_models.features.media import iter_frames
from emotion_models.params import FaceFeatureConfig
from tests.conftest import CREMA_D_VIDEO, require_shared


def frames(name: str) -> list[np.ndarray]:
    return [image for _, image in iter_frames(CREMA_D_VIDEO / name, 4)]


@pytest.fixture(scope="module")
def videos() -> tuple[list[np.ndarray], list[np.ndarray]]:
    require_shared()
    return frames("1001_DFA_ANG_XX.flv"), frames("1001_DFA_HAP_XX.flv")


def landmarks(preprocessor: FacePreprocessor, images: list[np.ndarray], track: bool) -> np.ndarray:
    if track:
        preprocessor.start_video()
    return np.stack([preprocessor.process(image, "frame", track=track).landmarks for image in images])


def test_tracking_stays_close_to_per_image_landmarks(videos):
    preprocessor = FacePreprocessor(FaceFeatureConfig())
    angry, _ = videos
    tracked, per_image = landmarks(preprocessor, angry, True), landmarks(preprocessor, angry, False)
    assert tracked.any() and per_image.any()
    xy = np.abs(tracked - per_image).reshape(len(angry), -1, 3)[:, :, :2]
    assert xy.mean() < 0.01  # under 1% of the crop side


def test_a_video_does_not_depend_on_the_one_before(videos):
    angry, happy = videos
    after_angry = FacePreprocessor(FaceFeatureConfig())
    landmarks(after_angry, angry, True)
    alone = landmarks(FacePreprocessor(FaceFeatureConfig()), happy, True)
    np.testing.assert_array_equal(landmarks(after_angry, happy, True), alone)
