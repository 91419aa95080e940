"""Batch scoring of video folders: per-window probabilities, per-video summaries, rejects, report.

Output layout (a contract; see the README), under OUT:
- ``windows/<key>.parquet``: one row per window: path, content_hash, model_version, window,
  start, end, transcript, has_face/has_audio/has_speech, and 5 class probabilities per model
  (``video_*`` the combined model, ``audio_*`` the audio model, ``face_*`` the face model averaged
  over the window's frames with a face; null where that stream is missing).
- ``videos/<key>.parquet``: one row per video: path, content_hash, model_version, duration,
  windows, dominant_emotion, share_* (time share per emotion), mean_confidence, windows_no_face,
  windows_no_audio, windows_no_speech, scored_at.
- ``rejects/<key>.parquet``: path, content_hash (when readable), model_version, reason.
- ``report.html``: the batch's videos with an emotion timeline each.
``<key>`` is content hash + model version: a video already scored by this model version is
skipped; a new model version scores it again. Each file is written atomically, the video row
last, so a run killed half-way and rerun scores every video exactly once.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from emotion_models import atomic
from emotion_models.features.audio import signal_features
from emotion_models.features.media import MediaError
from emotion_models.features.text import text_featuriser
from emotion_models.features.transcription import transcriber_for
from emotion_models.features.video import extract_windows
from emotion_models.labels import CLASS_NAMES
from emotion_models.nets.audio import AudioSpec, window_inputs
from emotion_models.nets.face import FaceSpec
from emotion_models.nets.video import VideoSpec
from emotion_models.params import AudioFeatureConfig, FaceFeatureConfig, Params

SLUGS = ("sad_fear", "neutral", "happy", "angry", "surprise_disgust")
MODEL_VIEWS = ("video", "audio", "face")
WINDOWS_PER_BATCH = 8


class ModelsUnavailable(RuntimeError):
    """The trained models are missing: nothing can be scored (a systemic failure)."""


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def discover_videos(folders: list[str | Path], extensions: list[str]) -> list[Path]:
    """Every file below ``folders`` (recursive) with a video extension, sorted, without duplicates."""
    wanted = {e.lower() for e in extensions}
    found = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: input folder not found")
        found.update(p for p in folder.rglob("*") if p.suffix.lower() in wanted and not p.is_dir())
    return sorted(found)


@dataclass
class ScoringModels:
    """The three trained models, loaded once per worker process, and the feature parameters they
    were trained with (scoring extracts features exactly as training did, whatever params.yaml says)."""

    video: torch.nn.Module
    audio: torch.nn.Module
    face: torch.nn.Module
    version: str
    audio_features: AudioFeatureConfig
    face_features: FaceFeatureConfig

    def feature_params(self, params: Params) -> Params:
        return params.model_copy(update={
            "audio": params.audio.model_copy(update={"features": self.audio_features}),
            "face": params.face.model_copy(update={"features": self.face_features})})


_MODELS: dict[tuple, ScoringModels] = {}
_LOCK = threading.Lock()


def load_models(model_dir: Path = Path("models")) -> ScoringModels:
    """Load (once per process) the video, audio and face checkpoints; version = hash of all three."""
    files = [model_dir / name / "model.pt" for name in MODEL_VIEWS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelsUnavailable(f"trained models missing: {', '.join(missing)} (run `dvc repro` first)")
    key = tuple((str(f.resolve()), f.stat().st_mtime_ns) for f in files)
    with _LOCK:
        if key not in _MODELS:
            digest = hashlib.sha256()
            for f in files:
                digest.update(f.read_bytes())
            video, meta = VideoSpec().load(files[0])
            audio, _ = AudioSpec().load(files[1])
            face, _ = FaceSpec().load(files[2])
            _MODELS[key] = ScoringModels(video, audio, face, digest.hexdigest()[:12],
                                         AudioFeatureConfig(**meta["config"]["audio"]["features"]),
                                         FaceFeatureConfig(**meta["config"]["face"]["features"]))
        return _MODELS[key]


def warm_up(models: ScoringModels, params: Params) -> None:
    """Pay once per process, before the first video, what it would otherwise pay: librosa's lazy
    imports (~3 s on first use), MediaPipe's import (~2 s), the text features' spaCy and TextBlob
    (~2 s) and loading Whisper. (Each worker thread builds its own MediaPipe graphs: ~0.1 s.)"""
    feature_params = models.feature_params(params)
    if feature_params.face.features.detector == "mediapipe":
        importlib.import_module("mediapipe")
    silence = np.zeros(feature_params.audio.features.sample_rate, np.float32)
    signal_features(silence, feature_params.audio.features)  # also loads the Whisper encoder
    text_featuriser(params.video.text)("a calm start")
    if params.video.transcription.enabled:
        transcriber_for(params.video.transcription)


SINGLE_VIEWS = ("audio", "face")


@torch.no_grad()
def window_probabilities(models: ScoringModels, arrays: dict[str, np.ndarray], views: tuple[str, ...] = MODEL_VIEWS,
                         chunk: int = WINDOWS_PER_BATCH) -> dict[str, np.ndarray]:
    """(windows, 5) probabilities of each of ``views``; NaN rows where a view's stream is missing.

    Windows go through the models ``chunk`` at a time, so memory does not grow with video length.
    The single-modality views need no transcript: scoring computes them while Whisper still runs.
    """
    parts = [_chunk_probabilities(models, {name: a[i:i + chunk] for name, a in arrays.items()}, views)
             for i in range(0, len(arrays["audio_mask"]), chunk)]
    return {view: np.concatenate([p[view] for p in parts]) for view in views}


def _chunk_probabilities(models: ScoringModels, arrays: dict[str, np.ndarray],
                         views: tuple[str, ...]) -> dict[str, np.ndarray]:
    batch = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
    out = {}
    if "video" in views:
        out["video"] = torch.softmax(models.video(batch), 1).numpy()
    if "audio" in views:
        audio = torch.softmax(models.audio(window_inputs(batch)), 1).numpy()
        audio[~arrays["audio_mask"].astype(bool)] = np.nan
        out["audio"] = audio
    if "face" in views:
        mask = arrays["frame_mask"].astype(bool)
        per_frame = np.zeros((*mask.shape, len(SLUGS)), np.float32)
        if mask.any():  # only frames with a face go through the face model
            present = torch.from_numpy(mask)
            faces = {"crop": batch["frames"][present], "landmarks": batch["landmarks"][present]}
            per_frame[mask] = torch.softmax(models.face(faces), 1).numpy()
        with np.errstate(invalid="ignore"):
            out["face"] = per_frame.sum(1) / mask.sum(1, keepdims=True)
    return out


def score_video(path: Path, params: Params, models: ScoringModels, digest: str) -> tuple[pl.DataFrame, dict]:
    """Window rows and the summary row of one video; raises MediaError for files that cannot be scored."""
    for model in (models.video, models.audio, models.face):
        model.eval()
    extracted = extract_windows(str(path), models.feature_params(params),
                                while_transcribing=lambda arrays: window_probabilities(models, arrays, SINGLE_VIEWS))
    probabilities = {**extracted.early, **window_probabilities(models, extracted.arrays, ("video",))}
    base = {"path": str(path), "content_hash": digest, "model_version": models.version}
    rows = []
    for index, window in enumerate(extracted.rows):
        row = {**base, "window": window["window"], "start": window["start"], "end": window["end"],
               "transcript": window["transcript"][:500], "has_face": window["faces"] > 0,
               "has_audio": window["has_audio"], "has_speech": bool(window["transcript"].strip())}
        for view in MODEL_VIEWS:
            for slug, value in zip(SLUGS, probabilities[view][index]):
                row[f"{view}_{slug}"] = None if np.isnan(value) else float(value)
        rows.append(row)
    windows = pl.DataFrame(rows)
    return windows, summarise(windows, base, extracted.info.duration)


def summarise(windows: pl.DataFrame, base: dict, duration: float) -> dict:
    """Dominant emotion, share of time per emotion and mean confidence of one video's windows."""
    probs = windows.select([f"video_{s}" for s in SLUGS]).to_numpy()
    seconds = (windows["end"] - windows["start"]).to_numpy()
    winners = probs.argmax(1)
    shares = np.array([seconds[winners == c].sum() for c in range(len(SLUGS))]) / max(seconds.sum(), 1e-9)
    return {**base, "duration": float(duration), "windows": windows.height,
            "dominant_emotion": CLASS_NAMES[int(shares.argmax())],
            **{f"share_{s}": float(v) for s, v in zip(SLUGS, shares)},
            "mean_confidence": float(probs.max(1).mean()),
            "windows_no_face": int((~windows["has_face"]).sum()),
            "windows_no_audio": int((~windows["has_audio"]).sum()),
            "windows_no_speech": int((~windows["has_speech"]).sum()),
            "scored_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def output_key(digest: str, version: str) -> str:
    return f"{digest[:32]}-{version}"


def score_file(path: Path, out: Path, params: Params, model_dir: Path = Path("models")) -> dict:
    """Score one file into ``out`` exactly once. Returns {"path", "status": scored|skipped|rejected, ...}."""
    models = load_models(model_dir)
    try:
        digest = content_hash(path)
    except OSError as exc:
        return _reject(out, path, None, models.version, f"{path}: cannot read file ({exc.strerror or exc})")
    key = output_key(digest, models.version)
    if (out / "videos" / f"{key}.parquet").exists():
        return {"path": str(path), "status": "skipped", "key": key}
    try:
        windows, summary = score_video(path, params, models, digest)
    except MediaError as exc:
        return _reject(out, path, digest, models.version, str(exc))
    except Exception as exc:  # one bad file never stops a batch
        return _reject(out, path, digest, models.version, f"{path}: {type(exc).__name__}: {exc}")
    atomic.write_parquet(out / "windows" / f"{key}.parquet", windows)
    atomic.write_parquet(out / "videos" / f"{key}.parquet", pl.DataFrame([summary]))
    return {"path": str(path), "status": "scored", "key": key, "dominant_emotion": summary["dominant_emotion"]}


def _reject(out: Path, path: Path, digest: str | None, version: str, reason: str) -> dict:
    identity = hashlib.sha256(f"{path}\0{digest}".encode()).hexdigest()[:32]
    target = out / "rejects" / f"{identity}-{version}.parquet"
    if target.exists():
        return {"path": str(path), "status": "skipped", "reason": reason}
    atomic.write_parquet(target, pl.DataFrame([{"path": str(path), "content_hash": digest,
                                                "model_version": version, "reason": reason}],
                                              schema={"path": pl.Utf8, "content_hash": pl.Utf8,
                                                      "model_version": pl.Utf8, "reason": pl.Utf8}))
    return {"path": str(path), "status": "rejected", "reason": reason}


def check_writable(out: Path) -> None:
    """Raise OSError with a clear message when ``out`` cannot be written (a systemic failure)."""
    for sub in ("windows", "videos", "rejects"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    probe = out / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"{out}: output folder is not writable ({exc.strerror})") from exc
