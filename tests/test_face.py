"""Face preprocessing, augmentation and Grad-CAM on real CK+ and FER2013 faces, CREMA-D frames and
synthetic frames."""

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
from emotion_models.features.media import iter_frames
from emotion_models.features.shards import FeatureStore, extract
from emotion_models.nets.face import FaceSpec
from emotion_models.params import FaceAugmentConfig, FaceFeatureConfig, load_params
from emotion_models.reports.gradcam import explanation_png, grad_cam
from emotion_models.training.augment import augment_face, face_augmentation
from tests.conftest import CK_PLUS, CREMA_D_VIDEO, FER2013, REPO, require_shared

CONFIG = FaceFeatureConfig()
SIZE = CONFIG.size


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
    assert face.crop.shape == (SIZE, SIZE, 3) and face.crop.dtype == np.uint8
    assert face.landmarks.shape == (LANDMARK_VALUES,) == (1404,) and face.has_landmarks
    xy = face.landmarks.reshape(468, 3)[:, :2]
    assert -0.1 < xy.min() and xy.max() < 1.1  # relative to the crop box (a tight crop may cut the chin)
    assert ((xy > 0) & (xy < 1)).all(axis=1).mean() > 0.9


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


def grey(crop: np.ndarray) -> bool:
    return bool(np.array_equal(crop[..., 0], crop[..., 1]) and np.array_equal(crop[..., 1], crop[..., 2]))


def test_a_video_frame_and_a_48px_grey_face_give_crops_of_the_same_kind(preprocessor):
    """The same face, as a colour video frame and as a FER2013-style 48x48 grey crop of it, reaches
    the model as the same grey 48x48 view, framed alike."""
    require_shared()
    frame = next(image for _, image in iter_frames(CREMA_D_VIDEO / "1001_DFA_HAP_XX.flv", 2.0))
    assert frame.shape == (360, 480, 3) and not grey(frame)
    from_video = preprocessor.process(frame, "frame")
    # FER2013 images are grey 48x48 face crops, framed as the detector's box grown by ~0.1 a side.
    fer_like, _ = crop_square(cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB),
                              preprocessor.detect(frame)[0], 0.1, 48)
    from_image = preprocessor.process(fer_like, "fer-like")
    for face in (from_video, from_image):
        assert face.crop.shape == (SIZE, SIZE, 3) and face.crop.dtype == np.uint8 and grey(face.crop)
        assert face.has_landmarks
    correlation = np.corrcoef(from_video.crop[..., 0].ravel().astype(float),
                              from_image.crop[..., 0].ravel().astype(float))[0, 1]
    assert correlation > 0.9
    assert abs(from_video.crop.mean() - from_image.crop.mean()) < 10


def test_dataset_face_crops_are_taken_whole(preprocessor):
    """A 48x48 dataset face is the model's view as it is (grey), even where the detector misses it."""
    require_shared()
    for path in sorted((FER2013 / "test" / "fear").glob("PublicTest_*.jpg"))[:10]:
        image = load_image(str(path))
        assert np.array_equal(preprocessor.process(image, path.name).crop, cv2.resize(image, (SIZE, SIZE)))
    blank = np.full((48, 48, 3), 128, np.uint8)
    blank[10:20, 5:40] = 30
    assert not preprocessor.detect(blank)
    assert np.array_equal(preprocessor.process(blank, "blank").crop, cv2.resize(blank, (SIZE, SIZE)))
    searched = FacePreprocessor(FaceFeatureConfig(face_crop_max_side=0, landmarks=False))
    with pytest.raises(NoFaceError, match="blank: no face found"):
        searched.process(blank, "blank")


def test_haar_fallback_detects_the_face():
    haar = FacePreprocessor(FaceFeatureConfig(detector="haar", landmarks=False))
    frame = np.full((300, 300, 3), 90, np.uint8)
    frame[50:250, 50:250] = cv2.resize(ck_face(), (200, 200), interpolation=cv2.INTER_CUBIC)
    face = haar.process(frame, "frame")
    assert face.crop.shape == (SIZE, SIZE, 3) and not face.has_landmarks


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
    crop = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    heat, probabilities = grad_cam(model, crop, np.zeros(1404, np.float32))
    assert heat.shape == (SIZE, SIZE) and 0.0 <= heat.min() and heat.max() <= 1.0
    assert probabilities.shape == (5,) and abs(probabilities.sum() - 1) < 1e-5
    assert explanation_png(crop, heat, probabilities).startswith(b"\x89PNG")


def test_face_model_forward_with_and_without_landmarks():
    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    for use in (True, False):
        config = {**spec.model_config(params), "use_landmarks": use}
        model = spec.build(config).eval()
        batch = {"crop": torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8), "landmarks": torch.zeros(2, 1404)}
        assert model(batch).shape == (2, 5)
        assert model.embed(batch["crop"], batch["landmarks"]).shape == (2, 32)


def test_compact_backbone_fits_48px_crops_and_the_original_backbones_stay_selectable():
    from emotion_models.nets.backbones import Backbone
    from emotion_models.params import BackboneConfig

    images = torch.zeros(2, 3, SIZE, SIZE)
    assert Backbone(BackboneConfig(name="compact_cnn_16"))(images).shape == (2, 128)
    assert Backbone(BackboneConfig(name="resnet34"))(images).shape == (2, 512)
    with pytest.raises(ValueError, match="unknown backbone 'compact_cnn_17'.*compact_cnn_16"):
        Backbone(BackboneConfig(name="compact_cnn_17"))


def test_training_starts_from_the_pretrained_checkpoint_of_the_same_network(in_tmp_project):
    from emotion_models.training.loop import save_checkpoint
    from tasks.train import initialise

    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    config = spec.model_config(params)
    pretrained = spec.build(config)
    torch.nn.init.constant_(pretrained.head[-1].bias, 0.25)
    save_checkpoint(spec.pretrained_path(), pretrained, {"config": config, "pretrained_on": ["fer2013"], "epoch": 3})
    model = spec.build(config)
    record = initialise(spec, model, config, report=lambda _: None)
    assert torch.equal(model.head[-1].bias, torch.full((5,), 0.25))
    assert record["datasets"] == ["fer2013"] and record["epoch"] == 3
    other = {**config, "backbone": {**config["backbone"], "name": "compact_cnn_24"}}
    with pytest.raises(RuntimeError, match="rerun the face_pretrain stage"):
        initialise(spec, spec.build(other), other, report=lambda _: None)
