"""Grad-CAM for the face model (pytorch-grad-cam): where in the face the prediction comes from."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.image import show_cam_on_image  # noqa: E402
from torch import nn  # noqa: E402

from emotion_models import paths  # noqa: E402
from emotion_models.features.face import Face, load_image, preprocessor_for  # noqa: E402
from emotion_models.labels import CLASS_NAMES  # noqa: E402
from emotion_models.nets.face import FaceEmotionNet, FaceEnsemble  # noqa: E402
from emotion_models.params import FaceFeatureConfig, Params  # noqa: E402
from emotion_models.reports.evaluation import figure_png  # noqa: E402


class _ImageOnly(nn.Module):
    """The face model as a function of the image alone (landmarks held fixed), as Grad-CAM needs."""

    def __init__(self, model: FaceEmotionNet | FaceEnsemble, landmarks: torch.Tensor) -> None:
        super().__init__()
        self.model, self.landmarks = model, landmarks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.image_logits(images, self.landmarks.expand(images.shape[0], -1))


def target_layers(model: FaceEmotionNet | FaceEnsemble) -> list[nn.Module]:
    """Each network's last backbone convolution (the finest map that still sees the whole face); an
    ensemble's maps are averaged by Grad-CAM."""
    networks = model.members if isinstance(model, FaceEnsemble) else [model]
    return [[m for m in network.backbone.modules() if isinstance(m, nn.Conv2d)][-1] for network in networks]


def grad_cam(model: FaceEmotionNet | FaceEnsemble, crop: np.ndarray, landmarks: np.ndarray, temperature: float = 1.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """``(heat map in [0, 1] of the crop's size, class probabilities)`` for one uint8 crop; the
    probabilities calibrated by the checkpoint's ``temperature``."""
    model.eval()
    crops = torch.from_numpy(np.ascontiguousarray(crop))[None]
    marks = torch.from_numpy(np.asarray(landmarks, dtype=np.float32))[None]
    images = model.image_tensor(crops)
    wrapped = _ImageOnly(model, marks)
    with torch.no_grad():  # the model's own output (with face.test_time_flip, the mirror's too)
        probabilities = torch.softmax(model({"crop": crops, "landmarks": marks}) / temperature, dim=1)[0].numpy()
    with GradCAM(model=wrapped, target_layers=target_layers(model)) as cam:
        heat = cam(input_tensor=images, targets=None)[0]
    return heat, probabilities


def cam_overlay(crop: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The uint8 RGB crop with its heat map blended over it."""
    return show_cam_on_image(crop.astype(np.float32) / 255.0, heat, use_rgb=True)


def explanation_png(crop: np.ndarray, heat: np.ndarray, probabilities: np.ndarray, title: str = "") -> bytes:
    """The crop with its heat map beside a bar chart of the class probabilities."""
    overlay = cam_overlay(crop, heat)
    figure, (left, right) = plt.subplots(1, 2, figsize=(6.4, 2.8), gridspec_kw={"width_ratios": [1, 1.4]})
    left.imshow(overlay)
    left.axis("off")
    left.set_title(title or f"predicted: {CLASS_NAMES[int(probabilities.argmax())]}", fontsize=9)
    right.barh(range(len(CLASS_NAMES)), probabilities, color="#4c72b0")
    right.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES, fontsize=8)
    right.set_xlim(0, 1)
    right.invert_yaxis()
    right.set_xlabel("probability", fontsize=8)
    return figure_png(figure)


def explain_image(model: FaceEmotionNet | FaceEnsemble, meta: dict, image_path: str) -> tuple[bytes, np.ndarray, Face]:
    """Detect, crop (as the checkpoint's ``meta`` says) and explain one image: ``(PNG bytes,
    calibrated probabilities, face)``."""
    face = preprocessor_for(FaceFeatureConfig(**meta["config"]["features"])).process(load_image(image_path), image_path)
    heat, probabilities = grad_cam(model, face.crop, face.landmarks, meta.get("temperature", 1.0))
    return explanation_png(face.crop, heat, probabilities), probabilities, face


def evaluation_gallery(spec, params: Params, size: int, model: nn.Module, meta: dict) -> list[dict]:
    """Up to ``size`` test examples, half correctly and half wrongly classified by ``model`` (its
    checkpoint ``meta``), with Grad-CAM."""
    if size <= 0:
        return []
    manifest = pl.read_parquet(paths.MANIFEST).filter((pl.col("split") == "test") & (pl.col("modality") == "face"))
    labels = dict(zip(manifest["clip_id"].to_list(), manifest["label"].to_list()))
    correct, wrong = [], []
    store = spec.store(params)
    for table, arrays in store.iter_shards(["crop", "landmarks"], spec.arrays(params)):
        for row, clip_id in enumerate(table["clip_id"].to_list()):
            if clip_id not in labels or (len(correct) >= size // 2 and len(wrong) >= size - size // 2):
                continue
            heat, probabilities = grad_cam(model, np.array(arrays["crop"][row]), np.array(arrays["landmarks"][row]),
                                           meta.get("temperature", 1.0))
            predicted, actual = int(probabilities.argmax()), labels[clip_id]
            bucket = correct if predicted == actual else wrong
            if len(bucket) < (size // 2 if bucket is correct else size - size // 2):
                title = f"{'OK' if predicted == actual else 'WRONG'}: {CLASS_NAMES[predicted]} (true {CLASS_NAMES[actual]})"
                bucket.append({"title": f"{title} - {clip_id.split('/')[-1]}",
                               "png": explanation_png(np.array(arrays["crop"][row]), heat, probabilities, title)})
    return correct + wrong
