"""Face preprocessing, augmentation and Grad-CAM on real CK+ faces and synthetic frames."""

from functools import partial

import cv2
import numpy as np
import pytest
import torch

from emotion_models.features.face import (
    LANDMARK_VALUES,
    Box,
    FacePreprocessor,
    NoFaceError,
    crop_square,
    featurise_face,
    load_image,
)
from emotion_models.features.shards import FeatureStore, extract
from emotion_models.nets.face import FaceSpec
from emotion_models.params import FaceAugmentConfig, FaceFeatureConfig, load_params
from emotion_models.reports.gradcam import explanation_png, grad_cam
from emotion_models.training.augment import augment_face, face_augmentation
from tests.conftest import CK_PLUS, REPO, require_shared

CONFIG = FaceFeatureConfig()


@pytest.fixture(scope="module")
def preprocessor():
    return FacePreprocessor(CONFIG)


def ck_face() -> np.ndarray:
    require_shared()
    return load_image(str(CK_PLUS / "happy" / "S010_006_00000013.png"))


def test_real_ck_plus_crop_and_landmarks(preprocessor):
    image = ck_face()
    assert image.shape == (48, 48, 3) and np.array_equal(image[..., 0], image[..., 2])  # grey replicated
    face = preprocessor.process(image, "S010")
    assert face.crop.shape == (64, 64, 3) and face.crop.dtype == np.uint8
    assert face.landmarks.shape == (LANDMARK_VALUES,) == (1404,) and face.has_landmarks
    xy = face.landmarks.reshape(468, 3)[:, :2]
    assert 0.0 < xy.min() and xy.max() < 1.0  # relative to the crop box


def test_face_inside_a_larger_frame_is_found_where_it_was_placed(preprocessor):
    face = cv2.resize(ck_face(), (192, 192), interpolation=cv2.INTER_CUBIC)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[200:392, 60:252] = face  # top-left corner (x=60, y=200), 192 px
    box = preprocessor.detect(frame)[0]
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    assert 60 < cx < 252 and 200 < cy < 392
    assert abs(cx - 156) < 30 and abs(cy - 296) < 40
    assert 100 < box.width < 230


def test_largest_face_wins(preprocessor):
    frame = np.full((300, 400, 3), 90, np.uint8)
    frame[10:170, 230:390] = cv2.resize(ck_face(), (160, 160), interpolation=cv2.INTER_CUBIC)
    frame[170:290, 10:130] = cv2.resize(ck_face(), (120, 120), interpolation=cv2.INTER_CUBIC)
    boxes = preprocessor.detect(frame)
    assert len(boxes) == 2 and boxes[0].x > 200 and boxes[0].area > boxes[1].area
    assert preprocessor.process(frame, "two faces").box.x > 200


def test_no_face_is_a_reject_with_reason(preprocessor, tmp_path):
    with pytest.raises(NoFaceError, match="wall.png: no face found"):
        preprocessor.process(np.full((120, 160, 3), 128, np.uint8), "wall.png")
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((120, 160, 3), 128, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    rows = [{"clip_id": n, "path": str(tmp_path / n), "label": 0} for n in ("wall.png", "broken.png", "gone.png")]
    store = FeatureStore(tmp_path / "store", "k", "npy")
    assert extract(rows, partial(featurise_face, config=CONFIG), store, workers=1, shard_rows=4) == (0, 3)
    reasons = dict(zip(store.rejects()["clip_id"], store.rejects()["reason"]))
    assert "no face found" in reasons["wall.png"]
    assert "not a readable image" in reasons["broken.png"] and "file not found" in reasons["gone.png"]


def test_haar_fallback_detects_the_face():
    haar = FacePreprocessor(FaceFeatureConfig(detector="haar", landmarks=False))
    frame = np.full((300, 300, 3), 90, np.uint8)
    frame[50:250, 50:250] = cv2.resize(ck_face(), (200, 200), interpolation=cv2.INTER_CUBIC)
    face = haar.process(frame, "frame")
    assert face.crop.shape == (64, 64, 3) and not face.has_landmarks


def test_crop_square_pads_at_the_border():
    image = np.zeros((100, 100, 3), np.uint8)
    crop, square = crop_square(image, Box(-10, -10, 40, 40), margin=0.2, size=64)
    assert crop.shape == (64, 64, 3) and square.width == square.height == 56


def test_augmentation_keeps_shape_and_dtype_and_moves_landmarks_with_the_image():
    crop = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    landmarks = np.random.default_rng(1).random(1404).astype(np.float32)
    always_flip = face_augmentation(FaceAugmentConfig(hflip_p=1.0, rotate_p=0.0, noise_p=0.0, contrast_p=0.0,
                                                      sharpen_blur_p=0.0, hue_saturation_p=0.0))
    flipped, moved = augment_face(always_flip, crop, landmarks, np.random.default_rng(2))
    assert np.array_equal(flipped, crop[:, ::-1])
    points, new = landmarks.reshape(-1, 3), moved.reshape(-1, 3)
    assert np.allclose(new[:, 0], 1.0 - points[:, 0], atol=1.0 / 64) and np.allclose(new[:, 1:], points[:, 1:])
    full = face_augmentation(FaceAugmentConfig(rotate_limit=180))
    for seed in range(5):
        image, marks = augment_face(full, crop, landmarks, np.random.default_rng(seed))
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert marks.shape == (1404,) and marks.dtype == np.float32


def test_grad_cam_map_has_the_crop_size():
    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    model = spec.build(spec.model_config(params)).eval()
    crop = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    heat, probabilities = grad_cam(model, crop, np.zeros(1404, np.float32))
    assert heat.shape == (64, 64) and 0.0 <= heat.min() and heat.max() <= 1.0
    assert probabilities.shape == (5,) and abs(probabilities.sum() - 1) < 1e-5
    assert explanation_png(crop, heat, probabilities).startswith(b"\x89PNG")


def test_face_model_forward_with_and_without_landmarks():
    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    for use in (True, False):
        config = {**spec.model_config(params), "use_landmarks": use}
        model = spec.build(config).eval()
        batch = {"crop": torch.zeros(2, 64, 64, 3, dtype=torch.uint8), "landmarks": torch.zeros(2, 1404)}
        assert model(batch).shape == (2, 5)
        assert model.embed(batch["crop"], batch["landmarks"]).shape == (2, 32)
