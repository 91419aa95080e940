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
last, so a run killed half-way and rerun scores every video exactly once. Models are loaded, and
the libraries warmed up, once per worker process when its first video needs scoring.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from emotion_models import atomic
from emotion_models.features.audio import mfcc_image, utterance_statistics
from emotion_models.features.media import MediaError
from emotion_models.features.text import text_featuriser
from emotion_models.features.transcription import transcriber_for
from emotion_models.features.video import extract_windows
from emotion_models.labels import CLASS_NAMES
from emotion_models.nets.audio import AudioSpec
from emotion_models.nets.face import FaceSpec
from emotion_models.nets.video import VideoSpec
from emotion_models.params import AudioFeatureConfig, FaceFeatureConfig, Params
from emotion_models.scoring.fingerprints import MODEL_VIEWS, content_hash, model_files, model_version
from emotion_models.scoring.outputs import SLUGS, output_key, reject_key

WINDOWS_PER_BATCH = 8


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
_WARM: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def load_models(model_dir: Path = Path("models"), out: Path | None = None) -> ScoringModels:
    """Load (once per process) the video, audio and face checkpoints; version = hash of all three
    (cached under ``out`` when given, see :func:`model_version`)."""
    files = model_files(model_dir)
    key = tuple((str(f.resolve()), f.stat().st_mtime_ns) for f in files)
    with _LOCK:
        if key not in _MODELS:
            version = model_version(model_dir, out)
            video, meta = VideoSpec().load(files[0])
            audio, _ = AudioSpec().load(files[1])
            face, _ = FaceSpec().load(files[2])
            _MODELS[key] = ScoringModels(video, audio, face, version,
                                         AudioFeatureConfig(**meta["config"]["audio"]["features"]),
                                         FaceFeatureConfig(**meta["config"]["face"]["features"]))
        return _MODELS[key]


def ready_models(model_dir: Path, params: Params, out: Path | None = None) -> ScoringModels:
    """The loaded models, with the libraries warmed up once per process and parameters."""
    models = load_models(model_dir, out)
    key = (models.version, params.model_dump_json())
    with _LOCK:
        if key not in _WARM:
            warm_up(models, params)
            _WARM.add(key)
    return models


def warm_up(models: ScoringModels, params: Params) -> None:
    """Pay once per process, before the first video, what it would otherwise pay: librosa's lazy
    imports (~3 s on first use), MediaPipe's import (~2 s), the text features' spaCy and TextBlob
    (~2 s) and loading Whisper. (Each worker thread builds its own MediaPipe graphs: ~0.1 s.)"""
    feature_params = models.feature_params(params)
    if feature_params.face.features.detector == "mediapipe":
        importlib.import_module("mediapipe")
    silence = np.zeros(feature_params.audio.features.sample_rate, np.float32)
    mfcc_image(silence, feature_params.audio.features)
    utterance_statistics(silence, feature_params.audio.features)
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
             for i in range(0, len(arrays["mfcc"]), chunk)]
    return {view: np.concatenate([p[view] for p in parts]) for view in views}


def _chunk_probabilities(models: ScoringModels, arrays: dict[str, np.ndarray],
                         views: tuple[str, ...]) -> dict[str, np.ndarray]:
    batch = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
    out = {}
    if "video" in views:
        out["video"] = torch.softmax(models.video(batch), 1).numpy()
    if "audio" in views:
        audio = torch.softmax(models.audio({"mfcc": batch["mfcc"], "stats": batch["audio_stats"]}), 1).numpy()
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


def score_file(path: Path, out: Path, params: Params, model_dir: Path = Path("models"),
               digest: str | None = None) -> dict:
    """Score one file into ``out`` exactly once. Returns {"path", "status": scored|skipped|rejected, ...}.
    ``digest``: the file's content hash when the caller knows it (else the file is read to hash it)."""
    version = model_version(model_dir, out)
    if digest is None:
        try:
            digest = content_hash(path)
        except OSError as exc:
            return _reject(out, path, None, version, f"{path}: cannot read file ({exc.strerror or exc})")
    key = output_key(digest, version)
    if (out / "videos" / f"{key}.parquet").exists():
        return {"path": str(path), "status": "skipped", "key": key}
    models = ready_models(model_dir, params, out)
    key = output_key(digest, models.version)
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
    target = out / "rejects" / f"{reject_key(path, digest, version)}.parquet"
    if target.exists():
        return {"path": str(path), "status": "skipped", "reason": reason}
    atomic.write_parquet(target, pl.DataFrame([{"path": str(path), "content_hash": digest,
                                                "model_version": version, "reason": reason}],
                                              schema={"path": pl.Utf8, "content_hash": pl.Utf8,
                                                      "model_version": pl.Utf8, "reason": pl.Utf8}))
    return {"path": str(path), "status": "rejected", "reason": reason}

