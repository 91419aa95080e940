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
    align_on_eyes,
    crop_square,
    featurise_face,
    is_aligned_face,
    load_image,
)
from emotion_models.features.shards import Extracted, FeatureStore, extract
from emotion_models.nets.face import FaceSpec
from emotion_models.params import FaceAugmentConfig, FaceFeatureConfig, load_params
from emotion_models.reports.gradcam import explanation_png, grad_cam
from emotion_models.training.augment import augment_face, face_augmentation
from tests.conftest import CK_PLUS, FER2013, REPO, SHARED, require_shared

RAF_DB = SHARED / "raf-db-basic"

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
    face = preprocessor.process(image, "S010", aligned=True)
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


def in_video_frame(face: np.ndarray, scale: float, angle: float, centre: tuple[int, int]) -> np.ndarray:
    """A 640x480 frame showing ``face`` (borders extended) scaled, rotated and centred at ``centre``."""
    face = cv2.copyMakeBorder(face, 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    height, width = face.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += (centre[0] - width / 2, centre[1] - height / 2)
    frame = np.full((480, 640, 3), 70, np.uint8)
    return cv2.warpAffine(face, matrix, (640, 480), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)


def similar(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference and correlation of two crops."""
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(np.abs(a - b).mean()), float(np.corrcoef(a, b)[0, 1])


def test_an_aligned_dataset_face_and_the_same_face_in_a_video_frame_give_the_same_crop():
    """RAF-DB's aligned crop, resized whole, and the same face placed larger and rolled a few degrees
    in a video frame, cut by the eye rule: the model sees near-identical crops (colour kept)."""
    require_shared()
    colour = FacePreprocessor(FaceFeatureConfig(size=96, grayscale=False, landmarks=False))
    image = load_image(str(RAF_DB / "Image" / "aligned" / "train_00008_aligned.jpg"))
    dataset = colour.process(image, "raf", aligned=True).crop
    assert dataset.shape == (96, 96, 3) and not grey(dataset)
    for scale, angle, centre in ((2.5, 7, (330, 220)), (3.0, -6, (250, 260)), (4.0, 4, (400, 240))):
        frame = colour.process(in_video_frame(image, scale, angle, centre), "frame").crop
        difference, correlation = similar(dataset, frame)
        assert difference < 20 and correlation > 0.9, (scale, angle, difference, correlation)


def test_the_eye_rule_does_not_depend_on_where_the_face_is_in_the_frame(preprocessor):
    """A CK+ face upscaled alone and the same face smaller, rolled and elsewhere in a frame: one crop."""
    alone = cv2.resize(ck_face(), (240, 240), interpolation=cv2.INTER_CUBIC)
    reference = preprocessor.process(alone, "alone")
    for scale, angle in ((0.7, 8), (1.0, -8)):
        face = preprocessor.process(in_video_frame(alone, scale, angle, (420, 260)), "frame")
        difference, correlation = similar(reference.crop, face.crop)
        assert difference < 12 and correlation > 0.95, (scale, angle, difference, correlation)
        assert 420 - face.box.width < face.box.x < 420 < face.box.x + face.box.width


def test_aligned_eyes_are_level_and_where_the_rule_puts_them():
    image = np.zeros((200, 300, 3), np.uint8)
    left, right = np.array([100.0, 120.0]), np.array([160.0, 100.0])  # rolled by -18 degrees
    for point, value in ((left, 255), (right, 128)):
        cv2.circle(image, tuple(int(v) for v in point), 3, (value, value, value), -1)
    crop, square = align_on_eyes(image, left, right, eye_distance=0.4, eye_height=0.3, size=100)
    found = [np.argwhere(crop[..., 0] > threshold).mean(axis=0) for threshold in (200, 100)]
    (left_y, left_x), (both_y, _) = found
    assert abs(left_y - 30) < 2 and abs(left_x - 30) < 2  # the brighter (left) eye: (0.3, 0.3) of the side
    assert abs(both_y - 30) < 2  # both eyes on one level line
    assert abs(square.width - np.hypot(60, 20) / 0.4) < 2


def test_dataset_face_crops_are_taken_whole(preprocessor, tmp_path):
    """An aligned dataset face (its adapter says so) is resized whole, even where the detector misses
    it; the same image as a frame is searched and rejected. Unreadable images are rejects."""
    require_shared()
    for path in sorted((FER2013 / "test" / "fear").glob("PublicTest_*.jpg"))[:10]:
        image = load_image(str(path))
        assert np.array_equal(preprocessor.process(image, path.name, aligned=True).crop,
                              cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR))
    blank = np.full((100, 100, 3), 128, np.uint8)
    blank[30:40, 20:80] = 30
    aligned = tmp_path / "Image" / "aligned"  # RAF-DB's layout
    aligned.mkdir(parents=True)
    cv2.imwrite(str(aligned / "train_00001_aligned.jpg"), blank)
    (aligned / "train_00002_aligned.jpg").write_bytes(b"\xff\xd8 broken")
    rows = [{"clip_id": name, "path": str(aligned / name), "dataset": "raf_db", "label": 0}
            for name in ("train_00001_aligned.jpg", "train_00002_aligned.jpg")]
    rows.append({"clip_id": "frame", "path": str(aligned / "train_00001_aligned.jpg"), "dataset": "crema_d_video",
                 "label": 0})
    store = FeatureStore(tmp_path / "store", "k", "npy")
    assert extract(rows, partial(featurise_face, config=CONFIG), store, workers=1, shard_rows=4) == (1, 2)
    reasons = dict(zip(store.rejects()["clip_id"], store.rejects()["reason"]))
    assert "not a readable image" in reasons["train_00002_aligned.jpg"] and "no face found" in reasons["frame"]
    assert is_aligned_face({"dataset": "raf_db", "path": str(RAF_DB / "Image" / "aligned" / "train_00001_aligned.jpg")})
    assert not is_aligned_face({"dataset": "raf_db", "path": str(RAF_DB / "Image" / "original" / "train_00001.jpg")})
    assert is_aligned_face({"dataset": "ck_plus", "path": str(CK_PLUS / "happy" / "S010_006_00000013.png")})
    assert not is_aligned_face({"dataset": "ck_plus", "path": "ck/cohn-kanade-images/S010/006/S010_006_00000013.png"})
    assert is_aligned_face({"dataset": "fer2013", "path": "fer2013.csv#row=3"})


def test_raf_db_official_layout_reads_every_training_image():
    require_shared()
    from emotion_models.data.datasets import Reject, get_adapter

    items = list(get_adapter("raf_db").scan(RAF_DB))
    assert len(items) == 12271 and not any(isinstance(item, Reject) for item in items)
    assert sum(item.emotion == "fear" for item in items) == 281


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
        config = {**spec.model_config(params), "use_landmarks": use, "test_time_flip": not use}
        model = spec.build(config).eval()
        batch = {"crop": torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8), "landmarks": torch.zeros(2, 1404)}
        assert model(batch).shape == (2, 5)
        assert model.embed(batch["crop"], batch["landmarks"]).shape == (2, params.face.members * params.face.head.units)


def test_test_time_flip_gives_the_mean_of_the_crop_and_its_mirror_outside_training(tmp_path):
    import onnxruntime as ort

    from emotion_models.export.graphs import FaceProbabilities, _export

    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    config = {**spec.model_config(params), "use_landmarks": False}
    torch.manual_seed(0)
    plain = spec.build({**config, "test_time_flip": False}, pretrained=False)
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8))
    crops[:, :, : SIZE // 3] = 255  # a bright left side: the mirror is another image
    mirrors = torch.from_numpy(np.ascontiguousarray(crops.numpy()[:, :, ::-1]))
    with torch.no_grad():
        for _ in range(20):  # batch-norm statistics of such crops, so the untrained network tells them apart
            plain({"crop": torch.cat([crops, mirrors])})
    plain.eval()
    flipping = spec.build({**config, "test_time_flip": True}, pretrained=False).eval()
    flipping.load_state_dict(plain.state_dict())
    with torch.no_grad():
        own, mirrored = plain({"crop": crops}).softmax(1), plain({"crop": mirrors}).softmax(1)
        assert not torch.allclose(own, mirrored, atol=1e-4)  # the mirror is another input to the network
        torch.testing.assert_close(flipping({"crop": crops}).softmax(1), (own + mirrored) / 2)
    landmarks = torch.zeros(len(crops), LANDMARK_VALUES)
    _export(FaceProbabilities(flipping), {"crops": crops, "landmarks": landmarks}, tmp_path / "face.onnx")
    session = ort.InferenceSession(str(tmp_path / "face.onnx"), providers=["CPUExecutionProvider"])
    scored = session.run(None, {"crops": crops.numpy()[:3]})[0]  # the scoring graph, another batch size
    np.testing.assert_allclose(scored, ((own + mirrored) / 2)[:3].numpy(), atol=1e-5)
    with torch.no_grad():
        flipping.train()
        torch.testing.assert_close(flipping({"crop": crops}), plain.train()({"crop": crops}))  # training: no flip
    with pytest.raises(ValueError, match="landmarks"):
        spec.build({**config, "use_landmarks": True, "test_time_flip": True}, pretrained=False)


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

    spec = FaceSpec()
    params = spec.member_params(load_params(REPO / "params.yaml"), 1)  # an ensemble's second network
    config = spec.model_config(params)
    pretrained = spec.build(config)
    torch.nn.init.constant_(pretrained.head[-1].bias, 0.25)
    path = spec.pretrained_path(1)
    save_checkpoint(path, pretrained, {"config": config, "pretrained_on": ["fer2013"], "epoch": 3})
    assert path.parent.name == "member-1" and spec.pretrained_path(0).parent == path.parent.parent
    model = spec.build(config)
    record = initialise(spec, model, config, report=lambda _: None, member=1)
    assert torch.equal(model.head[-1].bias, torch.full((5,), 0.25))
    assert record["datasets"] == ["fer2013"] and record["epoch"] == 3 and record["path"] == str(path)
    other = {**config, "backbone": {**config["backbone"], "name": "compact_cnn_24"}}
    with pytest.raises(RuntimeError, match="rerun the face_pretrain stage"):
        initialise(spec, spec.build(other), other, report=lambda _: None, member=1)


def test_video_frame_augmentations_change_the_face_and_keep_its_landmarks_with_it():
    require_shared()
    crop = cv2.resize(load_image(str(RAF_DB / "Image" / "aligned" / "train_00008_aligned.jpg")), (96, 96))
    landmarks = np.random.default_rng(1).random(1404).astype(np.float32)
    names = ("pose_p", "motion_blur_p", "compression_p", "low_light_p", "occlusion_p")
    off = {name: 0.0 for name in ("hflip_p", "rotate_p", "noise_p", "contrast_p", "sharpen_blur_p", "hue_saturation_p")}
    for name in names:
        pipeline = face_augmentation(FaceAugmentConfig(**off, **{name: 1.0}))
        image, marks = augment_face(pipeline, crop, landmarks, np.random.default_rng(3))
        assert image.shape == crop.shape and image.dtype == np.uint8 and marks.shape == (1404,)
        assert np.abs(image.astype(int) - crop).mean() > 1, name
        if name != "pose_p":
            assert np.allclose(marks, landmarks, atol=1e-5), name  # only pose moves the face
    dark, _ = augment_face(face_augmentation(FaceAugmentConfig(**off, low_light_p=1.0)), crop, landmarks,
                           np.random.default_rng(4))
    assert dark.mean() < crop.mean() - 10


def test_the_face_crops_key_is_one_rule_for_the_face_store_and_the_video_windows():
    """Options that change the crops re-extract both stores; shard size and worker count change neither."""
    from emotion_models.nets.video import video_feature_key

    params = load_params()

    def keys(**update) -> tuple[str, str]:
        changed = params.model_copy(update={"face": params.face.model_copy(update={
            "features": params.face.features.model_copy(update=update)})})
        return FaceSpec().feature_key(changed), video_feature_key(changed)

    same = keys()
    assert keys(workers=7, shard_rows=3) == same
    bigger, other_margin = keys(size=64), keys(eye_distance=0.5)
    assert all(a != b for a, b in zip(bigger, same)) and all(a != b for a, b in zip(other_margin, same))


def _toy_face_features(row: dict, size: int) -> Extracted:
    """A grey crop whose brightness and a bar position follow the clip's class (a learnable toy corpus)."""
    number = int(row["clip_id"][4:])
    rng = np.random.default_rng(number)
    crop = rng.integers(0, 60, (size, size, 3)).astype(np.uint8) + np.uint8(30 * (number % 5))
    crop[:, 8 * (number % 5):8 * (number % 5) + 6] = 255
    return Extracted(row, {"crop": crop, "landmarks": np.zeros(LANDMARK_VALUES, np.float32)})


def test_a_face_ensemble_trains_each_member_on_its_own_seed_and_averages_their_probabilities(in_tmp_project):
    """face.members: each member is trained apart (seed + i, here from scratch), the checkpoint holds all
    of them, its probabilities are the mean of theirs and one temperature is fitted on validation."""
    from emotion_models.nets.face import FaceEnsemble
    from tasks.train import TrainingRun, train_model

    params = load_params(REPO / "params.yaml")
    train = params.face.train.model_copy(update={"epochs": 2, "balance": "none", "epoch_samples": None,
                                                 "batch_size": 16})
    params = params.model_copy(update={"face": params.face.model_copy(update={"members": 2, "train": train})})
    spec = FaceSpec()
    store = spec.store(params, root=in_tmp_project / "store")
    extract([{"clip_id": f"face{i}", "path": f"/x/face{i}.png"} for i in range(60)],
            partial(_toy_face_features, size=params.face.features.size), store, workers=1, shard_rows=32)
    labels = {f"face{i}": i % 5 for i in range(60)}
    splits = {"train": {k: v for k, v in labels.items() if int(k[4:]) < 40},
              "val": {k: v for k, v in labels.items() if int(k[4:]) >= 40}}
    out = in_tmp_project / "model"
    history = train_model(spec, params, TrainingRun(out_dir=out, store=store, splits=splits, from_pretrained=False),
                          report=lambda _: None)
    model, meta = spec.load(out / "model.pt")
    assert isinstance(model, FaceEnsemble) and len(model.members) == 2
    assert [m["seed"] for m in meta["members"]] == [params.seed, params.seed + 1]
    assert not torch.equal(model.members[0].head[-1].weight, model.members[1].head[-1].weight)
    assert meta["temperature"] > 0 and meta["calibration"]["clips"] == 20
    assert 0.0 <= meta["val_accuracy"] <= 1.0 and len(history) == 2
    assert (out / "history.csv").is_file() and not list(out.glob("member-*"))  # the members live in model.pt
    batch = {"crop": torch.from_numpy(np.stack([_toy_face_features({"clip_id": f"face{i}"}, 48).arrays["crop"]
                                                for i in (40, 41, 42)])), "landmarks": torch.zeros(3, LANDMARK_VALUES)}
    with torch.no_grad():
        mean = torch.stack([torch.softmax(member(batch), 1) for member in model.members]).mean(0)
        assert torch.allclose(torch.exp(model(batch)), mean, atol=1e-5)
        assert model.embed(batch["crop"]).shape == (3, 2 * params.face.head.units)
    heat, probabilities = grad_cam(model, batch["crop"][0].numpy(), np.zeros(LANDMARK_VALUES, np.float32),
                                   meta["temperature"])
    assert heat.shape == batch["crop"].shape[1:3] and abs(probabilities.sum() - 1) < 1e-5


def test_each_member_refits_from_its_own_pretraining(in_tmp_project, monkeypatch):
    """train.refit trains a member again from the pretrained network its selection run started from
    (face's params forbid refit with several members today; train_model's own contract holds regardless)."""
    import tasks.train
    from emotion_models.training.loop import save_checkpoint

    params = load_params(REPO / "params.yaml")
    train = params.face.train.model_copy(update={"epochs": 1, "balance": "none", "epoch_samples": None,
                                                 "batch_size": 16, "refit": True})
    params = params.model_copy(update={"face": params.face.model_copy(update={"members": 2, "train": train})})
    spec = FaceSpec()
    for member in range(2):
        config = spec.model_config(spec.member_params(params, member))
        save_checkpoint(spec.pretrained_path(member), spec.build(config),
                        {"config": config, "pretrained_on": ["fer2013"], "epoch": 1})
    store = spec.store(params, root=in_tmp_project / "store")
    extract([{"clip_id": f"face{i}", "path": f"/x/face{i}.png"} for i in range(40)],
            partial(_toy_face_features, size=params.face.features.size), store, workers=1, shard_rows=32)
    splits = {"train": {f"face{i}": i % 5 for i in range(30)}, "val": {f"face{i}": i % 5 for i in range(30, 40)}}
    started_from, initialise = [], tasks.train.initialise

    def recorded(spec, model, config, report, member=0):
        started_from.append(member)
        return initialise(spec, model, config, report, member)

    monkeypatch.setattr(tasks.train, "initialise", recorded)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # the members one after another, in this process
    tasks.train.train_model(spec, params, tasks.train.TrainingRun(out_dir=in_tmp_project / "model", store=store,
                                                                  splits=splits), report=lambda _: None)
    assert started_from == [0, 0, 1, 1]  # each member: its selection run, then its refit
