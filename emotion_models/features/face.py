"""Face detection, crops and MediaPipe Face Mesh landmarks, shared by the face and video models.

One preprocessing for every image, so a face from a colour video frame looks to the model like
the 48x48 grey dataset faces it trained on:

- an image no larger than ``face_crop_max_side`` on both sides (FER2013 and CK+48 are 48x48) is
  already a face crop: it is taken whole, not searched (MediaPipe misses the face in about 6% of
  FER2013 images, and re-detecting a tight crop shifts and shrinks the face at random);
- in a larger image (a video frame, a photo) the detector's box of the largest face is grown by
  ``margin`` (0.1) on each side into a square crop. Measured with MediaPipe: its box fills 0.88
  (median) of a FER2013 image and 0.88 of a CREMA-D video-frame crop made with margin 0.1 (0.69
  with the former 0.2), so such a crop frames a face as FER2013 does (CK+48: 0.95, a little tighter);
- the crop is resized to ``size`` (48, FER2013's own) and, with ``grayscale``, made grey and
  replicated to 3 channels; the network then scales and normalises every crop alike.

Rule for several faces: the largest box wins. No face: :class:`NoFaceError` with the reason.
Frames of one video use Face Mesh in tracking mode (``track=True``, reset per video with
:meth:`FacePreprocessor.start_video`): the previous crop's landmarks place the mesh on the face
instead of a second face detection inside every crop (Face Mesh CPU -25 to -40% on 240 crops of a
480p video; landmarks within 0.4% of the crop side, on average, of the per-image mode's).
Detection uses MediaPipe's short-range face detector (its model ships inside mediapipe 0.10.21,
so it runs offline) or OpenCV's bundled Haar cascade. Landmarks are the 468 Face Mesh points
(x, y, z) of the face crop: x and y relative to the crop box (0..1), z on the same scale as x;
1404 values per face, all zero when the mesh finds no face in the crop (``has_landmarks`` False).
"""

from __future__ import annotations

import csv
import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emotion_models.data.datasets.fer2013 import ROW_SEP
from emotion_models.features.shards import Extracted
from emotion_models.params import FaceFeatureConfig

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and errors only

N_LANDMARKS = 468
LANDMARK_VALUES = N_LANDMARKS * 3
MESH_SIDE = 192  # crops are upscaled to this side for Face Mesh


class NoFaceError(ValueError):
    """No face was found in the image."""


class ImageReadError(ValueError):
    """The image file cannot be read."""


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Face:
    crop: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: np.ndarray  # (1404,) float32
    has_landmarks: bool
    box: Box


@functools.lru_cache(maxsize=2)
def _fer2013_pixels(csv_path: str) -> list[str]:
    with open(csv_path, newline="") as handle:
        return [row["pixels"] for row in csv.DictReader(handle)]


def load_image(path: str) -> np.ndarray:
    """An RGB uint8 image from a file, or from a FER2013 row (``fer2013.csv#row=N``); grey is replicated."""
    if ROW_SEP in path:
        csv_path, row = path.split(ROW_SEP)
        try:
            values = _fer2013_pixels(csv_path)[int(row)].split()
            grey = np.asarray(values, dtype=np.uint8).reshape(48, 48)
        except (OSError, IndexError, ValueError) as exc:
            raise ImageReadError(f"{path}: cannot read FER2013 row ({exc})") from exc
        return np.repeat(grey[:, :, None], 3, axis=2)
    if not Path(path).is_file():
        raise ImageReadError(f"{path}: file not found")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crop_square(image: np.ndarray, box: Box, margin: float, size: int) -> tuple[np.ndarray, Box]:
    """A square crop around ``box`` grown by ``margin`` on each side, edge-padded, resized to ``size``."""
    side = int(round(max(box.width, box.height) * (1 + 2 * margin)))
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
    crop = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation), Box(x0, y0, side, side, box.score)


class FacePreprocessor:
    """Detect the largest face, crop it and (optionally) compute its landmarks. One per process."""

    def __init__(self, config: FaceFeatureConfig) -> None:
        self.config = config
        self._detector = None
        self._mesh = None
        self._tracking_mesh = None

    def _mediapipe_boxes(self, image: np.ndarray) -> list[Box]:
        import mediapipe as mp

        if self._detector is None:
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=self.config.min_detection_confidence)
        result = self._detector.process(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        boxes = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            boxes.append(Box(int(rel.xmin * width), int(rel.ymin * height), int(rel.width * width),
                             int(rel.height * height), float(detection.score[0])))
        return boxes

    def _haar_boxes(self, image: np.ndarray) -> list[Box]:
        if self._detector is None:
            self._detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        found = self._detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]

    def detect(self, image: np.ndarray) -> list[Box]:
        """Every face box found, largest first."""
        boxes = self._mediapipe_boxes(image) if self.config.detector == "mediapipe" else self._haar_boxes(image)
        return sorted((b for b in boxes if b.width > 0 and b.height > 0), key=lambda b: b.area, reverse=True)

    def _face_mesh(self, track: bool):
        import mediapipe as mp

        if track:
            if self._tracking_mesh is None:
                self._tracking_mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                                                      min_detection_confidence=0.3)
            return self._tracking_mesh
        if self._mesh is None:
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                         min_detection_confidence=0.3)
        return self._mesh

    def start_video(self) -> None:
        """Forget the face tracked in the previous video (a video's landmarks never depend on another's)."""
        if self._tracking_mesh is not None:
            self._tracking_mesh.reset()

    def landmarks(self, crop: np.ndarray, track: bool = False) -> np.ndarray | None:
        """(1404,) Face Mesh landmarks of a face crop, or None when the mesh finds no face; with
        ``track``, the mesh starts from the previous crop's landmarks (consecutive video frames)."""
        mesh = self._face_mesh(track)
        result = mesh.process(cv2.resize(crop, (MESH_SIDE, MESH_SIDE), interpolation=cv2.INTER_LINEAR))
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        return np.asarray([(p.x, p.y, p.z) for p in points], dtype=np.float32).reshape(-1)

    def face_crop(self, image: np.ndarray, source: str = "image") -> tuple[np.ndarray, Box]:
        """The model's view of the largest face of an RGB image and its square box in the image.

        A small image (a dataset's face crop) is taken whole; in a larger one without a face,
        raises NoFaceError naming ``source``.
        """
        height, width = image.shape[:2]
        if max(height, width) <= self.config.face_crop_max_side:
            crop, square = crop_square(image, Box(0, 0, width, height), 0.0, self.config.size)
        else:
            boxes = self.detect(image)
            if not boxes:
                raise NoFaceError(f"{source}: no face found ({self.config.detector} detector)")
            crop, square = crop_square(image, boxes[0], self.config.margin, self.config.size)
        if self.config.grayscale:
            crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        return crop, square

    def process(self, image: np.ndarray, source: str = "image", track: bool = False) -> Face:
        """Crop (:meth:`face_crop`) and landmarks of the largest face of an RGB image. ``track``: the
        image is the next frame of a video (see :meth:`landmarks`)."""
        crop, square = self.face_crop(image, source)
        points = self.landmarks(crop, track) if self.config.landmarks else None
        landmarks = points if points is not None else np.zeros(LANDMARK_VALUES, np.float32)
        return Face(crop, landmarks, points is not None, square)

    def close(self) -> None:
        for solution in (self._detector, self._mesh, self._tracking_mesh):
            if solution is not None and hasattr(solution, "close"):
                solution.close()
        self._detector = self._mesh = self._tracking_mesh = None


_local = threading.local()


def preprocessor_for(config: FaceFeatureConfig) -> FacePreprocessor:
    """One preprocessor per thread and configuration (MediaPipe graphs are costly to build and
    not safe to share between threads)."""
    cache = _local.__dict__.setdefault("preprocessors", {})
    if config not in cache:
        cache[config] = FacePreprocessor(config)
    return cache[config]


def featurise_face(row: dict, config: FaceFeatureConfig) -> Extracted:
    """Crop and landmarks of the largest face of one manifest row, or the reason it was rejected."""
    try:
        face = preprocessor_for(config).process(load_image(row["path"]), row["path"])
    except (NoFaceError, ImageReadError) as exc:
        return Extracted(row, reason=str(exc))
    except Exception as exc:  # a worker must report, not crash the batch
        return Extracted(row, reason=f"{row['path']}: {type(exc).__name__}: {exc}")
    return Extracted({**row, "has_landmarks": face.has_landmarks}, {"crop": face.crop, "landmarks": face.landmarks})
