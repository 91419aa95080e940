"""Face detection, crops and MediaPipe Face Mesh landmarks, shared by the face and video models.

One crop rule, so a face from a video frame looks to the model like the dataset faces it trained on:

- a dataset's aligned face crop (its adapter says so: :meth:`DatasetAdapter.aligned_face`; RAF-DB
  aligned 100x100, FER2013 48x48, CK+48) is resized whole. It is never searched for a face: the
  detector misses ~6% of FER2013 crops and 341 of RAF-DB's 3,068 test crops;
- any other image (a video frame, a photo, CK+'s original frames) is aligned on the eyes of the
  largest face MediaPipe's detector finds (their centres from Face Mesh's eye corners): rotated so
  the eye line is level, scaled so the eyes are ``eye_distance`` of the crop side apart, their
  midpoint centred across and ``eye_height`` of the side from the top, then cut square at ``size``.
  The defaults are RAF-DB's own alignment, measured the same way on 283 of its crops (median eye
  distance 0.478 of the side, IQR 0.465-0.492; eye line at 0.348, IQR 0.340-0.353). FER2013 and
  CK+48 frame the face looser (eye distance 0.366 and 0.364, eye line at 0.393 and 0.404);
- OpenCV's Haar detector has no eye points: the eyes are placed where they sit in its box
  (``HAAR_EYES``), level;
- crops keep their colour (``grayscale`` makes every crop grey, replicated to 3 channels); FER2013
  and CK+ are grey, replicated. The network scales and normalises every crop alike.

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
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emotion_models.data.datasets import get_adapter
from emotion_models.data.datasets.fer2013 import ROW_SEP
from emotion_models.features.shards import Extracted, parameters_key
from emotion_models.params import FaceFeatureConfig

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and errors only

N_LANDMARKS = 468
LANDMARK_VALUES = N_LANDMARKS * 3
MESH_SIDE = 192  # crops are upscaled to this side for Face Mesh
# Face Mesh points at the corners of each eye (the image-left eye first): their midpoints are the eyes.
EYE_CORNERS = ((33, 133), (362, 263))
EYE_MESH_MARGIN = 0.25  # the detector's box grown by this on each side is where Face Mesh looks for the eyes
# Where the eyes sit in a Haar cascade box (fractions of its width and height), for its crops.
HAAR_EYES = ((0.32, 0.38), (0.68, 0.38))


def feature_fields(config: FaceFeatureConfig) -> dict:
    """The parameters that change the crops (not how many rows a shard holds or how many workers extract)."""
    return config.model_dump(exclude={"workers", "shard_rows"})


def feature_key(config: FaceFeatureConfig) -> str:
    """A short hash of ``feature_fields`` (cache key for extraction)."""
    return parameters_key(feature_fields(config))


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
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # (x, y) of the image-left eye, the other

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


def eyes_of(box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The box's eye points, or where they sit in a box without them (Haar)."""
    if box.eyes is not None:
        return np.asarray(box.eyes[0], float), np.asarray(box.eyes[1], float)
    return tuple(np.array([box.x + fx * box.width, box.y + fy * box.height]) for fx, fy in HAAR_EYES)


def align_on_eyes(image: np.ndarray, left: np.ndarray, right: np.ndarray, eye_distance: float, eye_height: float,
                  size: int) -> tuple[np.ndarray, Box]:
    """A ``size`` square crop with the eye line level, the eyes ``eye_distance`` of the side apart,
    their midpoint centred across and ``eye_height`` of the side from the top; borders replicated.
    Returns the crop and the (unrotated) square it covers in the image."""
    dx, dy = right - left
    spacing = max(math.hypot(dx, dy), 1.0)
    side = spacing / eye_distance  # the crop's side in image pixels
    angle = math.atan2(dy, dx)
    middle = (left + right) / 2
    # The crop's centre in the image: below the eyes' midpoint, along the face's own vertical.
    down = np.array([-math.sin(angle), math.cos(angle)])
    centre = middle + down * (0.5 - eye_height) * side
    # Cut an upright square holding the rotated crop, shrunk to about the crop's scale first (INTER_AREA
    # keeps a large face from aliasing), then rotate and scale the rest of the way in one warp.
    reach = side * math.sqrt(2) / 2 + 2
    region_box = Box(math.floor(centre[0] - reach), math.floor(centre[1] - reach),
                     math.ceil(2 * reach), math.ceil(2 * reach))
    shrink = min(1.0, size / side)
    region_side = max(round(region_box.width * shrink), 1)
    region, _ = crop_square(image, region_box, 0.0, region_side)
    scale = region_side / region_box.width
    local = (centre - (region_box.x, region_box.y)) * scale
    matrix = cv2.getRotationMatrix2D((float(local[0]), float(local[1])), math.degrees(angle), size / (side * scale))
    matrix[:, 2] += (size / 2 - local[0], size / 2 - local[1])
    crop = cv2.warpAffine(region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    corner = centre - side / 2
    return crop, Box(round(corner[0]), round(corner[1]), round(side), round(side))


def resize_whole(image: np.ndarray, size: int) -> np.ndarray:
    """An aligned face crop at ``size`` x ``size``."""
    height, width = image.shape[:2]
    interpolation = cv2.INTER_AREA if max(height, width) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


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
            points = detection.location_data.relative_keypoints  # 0: right eye, 1: left eye (the person's)
            eyes = tuple((points[i].x * width, points[i].y * height) for i in (0, 1))
            boxes.append(Box(int(rel.xmin * width), int(rel.ymin * height), int(rel.width * width),
                             int(rel.height * height), float(detection.score[0]), eyes))
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

    def eyes(self, image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """The eye centres of the face in ``box``: Face Mesh's eye corners, found in the box grown by
        ``EYE_MESH_MARGIN`` (the detector's eye points vary by ~8% of their spacing with the face's
        size and place in the frame); the detector's own points where the mesh finds no face."""
        region, square = crop_square(image, box, EYE_MESH_MARGIN, MESH_SIDE)
        result = self._face_mesh(False).process(region)
        if not result.multi_face_landmarks:
            return eyes_of(box)
        points = result.multi_face_landmarks[0].landmark
        return tuple(np.array([sum(points[i].x for i in pair) / 2 * square.width + square.x,
                               sum(points[i].y for i in pair) / 2 * square.height + square.y]) for pair in EYE_CORNERS)

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

    def face_crop(self, image: np.ndarray, source: str = "image", aligned: bool = False) -> tuple[np.ndarray, Box]:
        """The model's view of the largest face of an RGB image and its square box in the image.

        ``aligned``: the image is an aligned face crop, resized whole. Otherwise the face is aligned on
        its eyes (see the module's doc); an image without a face raises NoFaceError naming ``source``.
        """
        config = self.config
        if aligned:
            height, width = image.shape[:2]
            crop, square = resize_whole(image, config.size), Box(0, 0, width, height)
        else:
            boxes = self.detect(image)
            if not boxes:
                raise NoFaceError(f"{source}: no face found ({config.detector} detector)")
            left, right = self.eyes(image, boxes[0])
            crop, square = align_on_eyes(image, left, right, config.eye_distance, config.eye_height, config.size)
            square = Box(square.x, square.y, square.width, square.height, boxes[0].score)
        if config.grayscale:
            crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        return crop, square

    def process(self, image: np.ndarray, source: str = "image", track: bool = False, aligned: bool = False) -> Face:
        """Crop (:meth:`face_crop`) and landmarks of the largest face of an RGB image. ``track``: the
        image is the next frame of a video (see :meth:`landmarks`); ``aligned``: an aligned face crop."""
        crop, square = self.face_crop(image, source, aligned)
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


def is_aligned_face(row: dict) -> bool:
    """Whether a manifest row's image is an aligned face crop, as its dataset's adapter says."""
    dataset = row.get("dataset")
    return dataset is not None and get_adapter(dataset).aligned_face(Path(row["path"]))


def featurise_face(row: dict, config: FaceFeatureConfig) -> Extracted:
    """Crop and landmarks of the largest face of one manifest row, or the reason it was rejected."""
    try:
        image = load_image(row["path"])
        face = preprocessor_for(config).process(image, row["path"], aligned=is_aligned_face(row))
    except (NoFaceError, ImageReadError) as exc:
        return Extracted(row, reason=str(exc))
    except Exception as exc:  # a worker must report, not crash the batch
        return Extracted(row, reason=f"{row['path']}: {type(exc).__name__}: {exc}")
    return Extracted({**row, "has_landmarks": face.has_landmarks}, {"crop": face.crop, "landmarks": face.landmarks})
