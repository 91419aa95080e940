"""One file through the trained models, as `emotion predict` and the web app's /predict page use it.

An image goes through the face model (with the face box and a Grad-CAM heat map), an audio file
through the audio model (with its waveform), anything else is scored as a video exactly as
`emotion score` scores it (per-window probabilities of every view, a frame of each window with its
face box). Files that cannot be scored raise one of ``CANNOT_SCORE`` with the same reasons as
`emotion score` gives.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import polars as pl
import torch

from emotion_models.data.datasets.base import AUDIO_EXTENSIONS
from emotion_models.errors import MissingInput
from emotion_models.features.audio import clip_features
from emotion_models.features.face import Box, Face, ImageReadError, NoFaceError, load_image, preprocessor_for
from emotion_models.features.media import MediaError, decode_audio, iter_frames
from emotion_models.labels import CLASS_NAMES
from emotion_models.nets.audio import AudioSpec
from emotion_models.nets.face import FaceSpec
from emotion_models.params import AudioFeatureConfig, FaceFeatureConfig, Params
from emotion_models.reports.gradcam import cam_overlay, grad_cam
from emotion_models.scoring.fingerprints import content_hash
from emotion_models.scoring.score import load_models, score_video

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
BROWSER_VIDEO_SUFFIXES = {".mp4", ".webm"}  # played as they are; other containers are converted to WebM
CANNOT_SCORE = (MediaError, NoFaceError, ImageReadError, FileNotFoundError)
BOX_COLOUR = (0, 200, 80)


def kind_of(path: Path) -> str:
    """"image", "audio" or "video" (anything else is tried as a video), by the file's suffix."""
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "audio" if suffix in AUDIO_EXTENSIONS else "video"


@functools.lru_cache(maxsize=4)
def _load(name: str, checkpoint: str, mtime_ns: int) -> tuple[torch.nn.Module, dict]:
    model, meta = (FaceSpec() if name == "face" else AudioSpec()).load(Path(checkpoint))
    model.eval()
    return model, meta


def load_single(name: str, model_dir: Path) -> tuple[torch.nn.Module, dict]:
    """The face or audio checkpoint (loaded once per process until the file changes)."""
    checkpoint = model_dir / name / "model.pt"
    if not checkpoint.is_file():
        raise MissingInput(f"{checkpoint}: trained {name} model missing (run `dvc repro` first)")
    return _load(name, str(checkpoint.resolve()), checkpoint.stat().st_mtime_ns)


def _as_probabilities(model: torch.nn.Module, meta: dict, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Class probabilities calibrated by the checkpoint's temperature, as scoring gives them."""
    with torch.no_grad():
        return torch.softmax(model(batch) / meta.get("temperature", 1.0), 1)[0].numpy()


def _label(probabilities: np.ndarray) -> str:
    return CLASS_NAMES[int(np.argmax(probabilities))]


@dataclass
class ImagePrediction:
    """The face model's view of one image."""

    probabilities: np.ndarray
    image: np.ndarray  # the RGB image
    face: Face
    heat: np.ndarray | None = None  # Grad-CAM heat map over ``face.crop``, in [0, 1]

    @property
    def label(self) -> str:
        return _label(self.probabilities)

    def boxed(self) -> np.ndarray:
        """The image with the face box the model saw drawn on it."""
        return draw_box(self.image, self.face.box)

    def overlay(self) -> np.ndarray | None:
        """The face crop with the Grad-CAM heat map over it."""
        return None if self.heat is None else cam_overlay(self.face.crop, self.heat)


def predict_image(path: Path, model_dir: Path, explain: bool = False) -> ImagePrediction:
    """Detect the largest face, crop it as the face model was trained, and classify it."""
    model, meta = load_single("face", model_dir)
    config = FaceFeatureConfig(**meta["config"]["features"])
    image = load_image(str(path))
    face = preprocessor_for(config).process(image, str(path))
    batch = {"crop": torch.from_numpy(face.crop)[None], "landmarks": torch.from_numpy(face.landmarks)[None]}
    probabilities = _as_probabilities(model, meta, batch)
    heat = grad_cam(model, face.crop, face.landmarks)[0] if explain else None
    return ImagePrediction(probabilities, image, face, heat)


@dataclass
class AudioPrediction:
    """The audio model's view of one recording."""

    probabilities: np.ndarray
    signal: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int

    @property
    def label(self) -> str:
        return _label(self.probabilities)

    def waveform(self, points: int = 600) -> pl.DataFrame:
        """The waveform's envelope for a chart: ``time`` (s), ``low`` and ``high`` of each of ``points`` slices."""
        signal = self.signal if self.signal.size else np.zeros(1, np.float32)
        edges = np.linspace(0, signal.size, min(points, signal.size) + 1).astype(int)
        slices = [signal[a:max(b, a + 1)] for a, b in zip(edges[:-1], edges[1:])]
        return pl.DataFrame({"time": edges[:-1] / self.sample_rate, "low": [float(s.min()) for s in slices],
                             "high": [float(s.max()) for s in slices]})


def predict_audio(path: Path, model_dir: Path) -> AudioPrediction:
    """Classify one recording with the audio model, using the features it was trained on."""
    model, meta = load_single("audio", model_dir)
    config = AudioFeatureConfig(**meta["config"]["features"])
    batch = {name: torch.from_numpy(array)[None] for name, array in clip_features(str(path), config).items()}
    probabilities = _as_probabilities(model, meta, batch)
    return AudioPrediction(probabilities, decode_audio(path, config.sample_rate), config.sample_rate)


@dataclass
class WindowFrame:
    """A frame from the middle of one window, and the largest face found in it (None: no face)."""

    window: int
    time: float
    image: np.ndarray
    box: Box | None

    def boxed(self) -> np.ndarray:
        return self.image if self.box is None else draw_box(self.image, self.box)


@dataclass
class VideoPrediction:
    """Window rows and the summary row, exactly as `emotion score` writes them."""

    windows: pl.DataFrame
    summary: dict
    fusion: dict  # how the fused estimate was made: method ("late"/"learned"), reason, view weights

    @property
    def label(self) -> str | None:
        return self.summary.get("dominant_emotion")


def predict_video(path: Path, params: Params, model_dir: Path) -> VideoPrediction:
    """Score one video as `emotion score` does (every view, every window), without writing anything."""
    models = load_models(model_dir, params.video.fusion, runtime=params.scoring.runtime)
    windows, summary = score_video(path, params, models, content_hash(path))
    fusion = {"method": models.fusion["choice"], "reason": models.fusion["reason"], "weights": models.weights}
    return VideoPrediction(windows, summary, fusion)


def window_frames(path: Path, windows: pl.DataFrame, params: Params, width: int = 320) -> list[WindowFrame]:
    """For each window, the sampled frame nearest its middle (``width`` pixels wide) with its face box."""
    middles = [(row["window"], (row["start"] + row["end"]) / 2) for row in windows.select("window", "start", "end")
               .iter_rows(named=True)]
    best: dict[int, tuple[float, np.ndarray]] = {}
    for time, image in iter_frames(path, params.video.features.fps, params.scoring.max_pixels):
        for window, middle in middles:
            if window not in best or abs(time - middle) < abs(best[window][0] - middle):
                best[window] = (time, image)
        if time > middles[-1][1] + 1:
            break
    detector = preprocessor_for(params.face.features)
    frames = []
    for window, _ in middles:
        if window not in best:
            continue
        time, image = best[window]
        scale = width / image.shape[1]
        small = cv2.resize(image, (width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        boxes = detector.detect(image)
        box = None if not boxes else Box(*(round(v * scale) for v in (boxes[0].x, boxes[0].y, boxes[0].width,
                                                                     boxes[0].height)), boxes[0].score)
        frames.append(WindowFrame(window, time, small, box))
    return frames


def draw_box(image: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``image`` with ``box`` drawn on it."""
    boxed = np.ascontiguousarray(image).copy()
    thickness = max(2, round(max(image.shape[:2]) / 200))
    cv2.rectangle(boxed, (box.x, box.y), (box.x + box.width, box.y + box.height), BOX_COLOUR, thickness)
    return boxed


def browser_video(path: Path, target: Path, height: int = 360) -> Path:
    """A copy of the video that browsers play: MP4 and WebM as they are, other containers (FLV, AVI,
    MKV, MOV...) converted to WebM (VP8 + Opus) at most ``height`` pixels high. Returns the file to play."""
    if path.suffix.lower() in BROWSER_VIDEO_SUFFIXES:
        return path
    try:
        with av.open(str(path)) as source, av.open(str(target), "w", format="webm") as sink:
            video = source.streams.video[0] if source.streams.video else None
            audio = source.streams.audio[0] if source.streams.audio else None
            streams = [s for s in (video, audio) if s is not None]
            out_video = out_audio = None
            if video is not None:
                rate = video.average_rate or 25
                out_video = sink.add_stream("libvpx", rate=rate)
                scale = min(1.0, height / video.codec_context.height)
                out_video.width = max(2, int(video.codec_context.width * scale) // 2 * 2)
                out_video.height = max(2, int(video.codec_context.height * scale) // 2 * 2)
                out_video.pix_fmt = "yuv420p"
                out_video.bit_rate = 800_000
            if audio is not None:
                out_audio = sink.add_stream("libopus", rate=48000)
                out_audio.layout = "stereo"
                resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000)
            for packet in source.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is video:
                        frame = frame.reformat(width=out_video.width, height=out_video.height, format="yuv420p")
                        sink.mux(out_video.encode(frame))
                    else:
                        for resampled in resampler.resample(frame):
                            sink.mux(out_audio.encode(resampled))
            for stream in (out_video, out_audio):
                if stream is not None:
                    sink.mux(stream.encode(None))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot be converted for playback in a browser ({exc})") from exc
    return target


def predict_file(path: Path, params: Params, model_dir: Path) -> dict:
    """Probabilities for one image (face model), audio file (audio model) or video (all views), as JSON-ready data."""
    kind = kind_of(path)
    if kind == "video":
        video = predict_video(path, params, model_dir)
        return {"path": video.summary["path"], "model": "video", "prediction": video.label, "fusion": video.fusion,
                "summary": video.summary, "windows": video.windows.to_dicts()}
    result = predict_image(path, model_dir) if kind == "image" else predict_audio(path, model_dir)
    return {"path": str(path), "model": "face" if kind == "image" else "audio", "prediction": result.label,
            "probabilities": dict(zip(CLASS_NAMES, result.probabilities.tolist()))}
