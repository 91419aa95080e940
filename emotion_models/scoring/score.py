"""Batch scoring of video folders: per-window views and fused estimate, per-video summaries, rejects,
every input path, report.

Output layout: emotion_models.contract (the schemas, column order and slugs).
``<key>`` is content hash + model version: a video already scored by this model version is
skipped; a new model version scores it again. Each file is written atomically, the video row
last, so a run killed half-way and rerun scores every video exactly once. Models are loaded, and
the libraries warmed up, once per worker process when its first video needs scoring. Paths are
shown as text with any byte that is not UTF-8 escaped (``bad\\xff.mp4``): :func:`display_path`.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from emotion_models import atomic
from emotion_models.contract import REJECT_SCHEMA, VIDEO_SCHEMA, WINDOW_SCHEMA, WINDOW_VIEWS
from emotion_models.features.audio import WINDOW_PREFIX, signal_features
from emotion_models.features.media import FrameDecoding, MediaError
from emotion_models.features.normalise import normalise_windows
from emotion_models.features.text import text_featuriser
from emotion_models.features.video import extract_windows, video_transcriber
from emotion_models.files import display_path
from emotion_models.labels import CLASS_NAMES, SLUGS
from emotion_models.native import tune_for_scoring
from emotion_models.params import AudioFeatureConfig, FaceFeatureConfig, FusionConfig, Params
from emotion_models.scoring.fingerprints import content_hash
from emotion_models.scoring.fusion import read_choice, resolve_weights, transcript_evidence, window_views
from emotion_models.scoring.model_identity import MODEL_VIEWS, model_files, model_version
from emotion_models.scoring.outputs import output_key, reject_key
from emotion_models.scoring.runtime import OnnxPredictors, Predictors, TorchPredictors, read_meta, temperatures

WINDOWS_PER_BATCH = 8
TRANSCRIPT_CHARS = 500


@dataclass
class ScoringModels:
    """The three trained models, loaded once per worker process, and the feature parameters they
    were trained with (scoring extracts features exactly as training did, whatever params.yaml says)."""

    predictors: Predictors  # ONNX Runtime graphs (scoring) or the checkpoints (evaluation stages)
    version: str
    audio_features: AudioFeatureConfig
    face_features: FaceFeatureConfig
    weights: dict[str, float]  # late fusion's weight of each view
    fusion: dict  # models/video/fusion.json: "choice" (late or learned), "reason", validation numbers
    text_prior_votes: float
    audio_normalise: dict | None = None  # the audio checkpoint's audio.normalise (and its reference)

    def feature_params(self, params: Params) -> Params:
        return params.model_copy(update={
            "audio": params.audio.model_copy(update={"features": self.audio_features}),
            "face": params.face.model_copy(update={"features": self.face_features})})


_MODELS: dict[tuple, ScoringModels] = {}
_WARM: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def load_models(model_dir: Path = Path("models"), fusion: FusionConfig = FusionConfig(),
                out: Path | None = None, runtime: str = "torch") -> ScoringModels:
    """Load (once per process) the video, audio and face models and the fusion choice: the ONNX
    graphs of ``models/scoring/`` (``runtime="onnx"``, no torch import) or the checkpoints
    (``"torch"``). The version covers the files loaded, the runtime, the choice and the late-fusion
    settings (:func:`model_version`, cached under ``out`` when given)."""
    files = model_files(model_dir, runtime)
    choice_file = Path(model_dir) / "video" / "fusion.json"
    key = (*((str(f.resolve()), f.stat().st_mtime_ns) for f in files),
           choice_file.stat().st_mtime_ns if choice_file.is_file() else None, fusion, runtime)
    with _LOCK:
        if key not in _MODELS:
            version = model_version(model_dir, fusion, out, runtime)
            if runtime == "onnx":
                metas = read_meta(model_dir)
                predictors: Predictors = OnnxPredictors(model_dir)
            else:
                from emotion_models.nets.audio import AudioSpec
                from emotion_models.nets.face import FaceSpec
                from emotion_models.nets.video import VideoSpec

                (video, video_meta), (audio, audio_meta), (face, face_meta) = (
                    spec.load(path) for spec, path in zip((VideoSpec(), AudioSpec(), FaceSpec()), files))
                metas = {"video": video_meta, "audio": audio_meta, "face": face_meta}
                predictors = TorchPredictors(video, audio, face, temperatures(metas))
            config = metas["video"]["config"]
            weights = resolve_weights(fusion, {"audio": metas["audio"], "face": metas["face"]})
            _MODELS[key] = ScoringModels(predictors, version, AudioFeatureConfig(**config["audio"]["features"]),
                                         FaceFeatureConfig(**config["face"]["features"]),
                                         weights, read_choice(Path(model_dir)), fusion.text_prior_votes,
                                         metas["audio"]["config"].get("normalise"))
        return _MODELS[key]


def ready_models(model_dir: Path, params: Params, out: Path | None = None) -> ScoringModels:
    """The loaded models (``scoring.runtime``), with the libraries warmed up once per process and
    parameters, and the native libraries set for scoring (:func:`emotion_models.native.tune_for_scoring`)."""
    tune_for_scoring()
    models = load_models(model_dir, params.video.fusion, out, params.scoring.runtime)
    key = (models.version, params.model_dump_json())
    with _LOCK:
        if key not in _WARM:
            warm_up(models, params)
            _WARM.add(key)
    return models


def warm_up(models: ScoringModels, params: Params) -> None:
    """Pay once per process, before the first video, what it would otherwise pay: MediaPipe's
    import, the audio features' first pass, the text features' lexicons, and loading Whisper.
    (Each worker thread builds its own MediaPipe graphs: ~0.1 s.)"""
    feature_params = models.feature_params(params)
    if feature_params.face.features.detector == "mediapipe":
        importlib.import_module("mediapipe")
    videos = parallel_videos(params)
    if params.video.transcription.enabled:
        video_transcriber(params, workers=videos)
    silence = np.zeros(feature_params.audio.features.sample_rate, np.float32)
    # the window features' Whisper encoder: the transcriber's model when both are the same
    signal_features(silence, feature_params.audio.features, workers=videos)
    text_featuriser(params.video.text)("a calm start")


def parallel_videos(params: Params) -> int:
    """Videos one scoring process scores at once: ``scoring.thread_workers`` on the thread runner;
    a Dask worker scores one."""
    return params.scoring.thread_workers if params.scoring.task_runner == "thread" else 1


SINGLE_VIEWS = ("audio", "face")


def window_probabilities(predictors: Predictors, arrays: dict[str, np.ndarray], views: tuple[str, ...] = MODEL_VIEWS,
                         chunk: int = WINDOWS_PER_BATCH) -> dict[str, np.ndarray]:
    """(windows, 5) probabilities of each of ``views``; NaN rows where a view's stream is missing.

    Windows go through the models ``chunk`` at a time, so memory does not grow with video length.
    The single-modality views need no transcript: scoring computes them while Whisper still runs.
    Only frames with a face go through the face CNNs.
    """
    parts = [_chunk_probabilities(predictors, {name: a[i:i + chunk] for name, a in arrays.items()}, views)
             for i in range(0, len(arrays["audio_mask"]), chunk)]
    return {view: np.concatenate([p[view] for p in parts]) for view in views}


def _chunk_probabilities(predictors: Predictors, arrays: dict[str, np.ndarray],
                         views: tuple[str, ...]) -> dict[str, np.ndarray]:
    mask = arrays["frame_mask"].astype(bool)
    audio_mask = arrays["audio_mask"].astype(bool)
    audio_inputs = {name[len(WINDOW_PREFIX):]: a for name, a in arrays.items() if name.startswith(WINDOW_PREFIX)}
    crops, landmarks = arrays["frames"][mask], arrays["landmarks"][mask]
    out = {}
    if "video" in views:
        embeddings = predictors.video_faces(crops, landmarks) if mask.any() else None
        width = embeddings.shape[1] if embeddings is not None else predictors.video_face_width
        faces = np.zeros((*mask.shape, width), np.float32)
        if embeddings is not None:
            faces[mask] = embeddings
        out["video"] = predictors.video_fusion(faces, mask, audio_inputs, audio_mask, arrays["text"])
    if "audio" in views:
        audio = predictors.audio(audio_inputs)
        audio[~audio_mask] = np.nan
        out["audio"] = audio
    if "face" in views:
        per_frame = np.zeros((*mask.shape, len(SLUGS)), np.float32)
        if mask.any():
            per_frame[mask] = predictors.face(crops, landmarks)
        with np.errstate(invalid="ignore"):
            out["face"] = per_frame.sum(1) / mask.sum(1, keepdims=True)
    return out


def fuse_windows(models: ScoringModels, params: Params, probabilities: dict[str, np.ndarray], transcripts: list[str],
                 has_face: np.ndarray, has_audio: np.ndarray, method: str) -> dict[str, np.ndarray]:
    """Every view of each window and the fused estimate (emotion_models.scoring.fusion.window_views)
    from the models' ``probabilities``, the windows' transcripts and which streams they have."""
    has_speech = np.array([bool(t.strip()) for t in transcripts], bool)
    # without transcription speech cannot be told from other sound: any audio may be speech
    speech = has_speech if params.video.transcription.enabled else has_audio
    text = transcript_evidence(text_featuriser(params.video.text), transcripts, models.text_prior_votes)
    return window_views(probabilities, text, has_face, speech, models.weights, method)


def score_video(path: Path, params: Params, models: ScoringModels, digest: str) -> tuple[pl.DataFrame, dict]:
    """Window rows and the summary row of one video; raises MediaError for files that cannot be scored."""
    extracted = extract_windows(str(path), models.feature_params(params),
                                while_transcribing=lambda arrays: window_probabilities(models.predictors, arrays,
                                                                                       SINGLE_VIEWS),
                                parallel_videos=parallel_videos(params),
                                decoding=FrameDecoding(params.scoring.max_pixels, params.scoring.skip_nonref_frames_above))
    probabilities = {**extracted.early, **window_probabilities(models.predictors, extracted.arrays, ("video",))}
    rows, transcribed = extracted.rows, params.video.transcription.enabled
    has_face = np.array([window["faces"] > 0 for window in rows], bool)
    has_audio = np.array([window["has_audio"] for window in rows], bool)
    has_speech = np.array([bool(window["transcript"].strip()) for window in rows], bool)
    speech = (has_speech if transcribed else has_audio) & has_audio
    normalised = _video_normalised_audio(models, extracted.arrays, speech, probabilities)
    method = models.fusion["choice"]
    views = fuse_windows(models, params, probabilities, [w["transcript"] for w in rows], has_face, has_audio, method)
    base = {"path": display_path(path), "content_hash": digest, "model_version": models.version}
    columns = {**{name: [base[name]] * len(rows) for name in base},
               "window": [w["window"] for w in rows], "start": [w["start"] for w in rows],
               "end": [w["end"] for w in rows], "transcript": [w["transcript"][:TRANSCRIPT_CHARS] for w in rows],
               "has_face": has_face, "has_audio": has_audio,
               "has_speech": has_speech if transcribed else [None] * len(rows),  # unknown without transcription
               **{f"{view}_{slug}": views[view][:, c] for view in WINDOW_VIEWS for c, slug in enumerate(SLUGS)},
               "fusion": [method] * len(rows),
               "audio_normalisation": np.where(speech & normalised, "video", "none")}
    windows = pl.DataFrame(columns, schema=WINDOW_SCHEMA, strict=False).fill_nan(None)
    return windows, {**summarise(windows, base, extracted.info.duration, method),
                     "audio_normalisation": "video" if normalised else "none"}


def _video_normalised_audio(models: ScoringModels, arrays: dict[str, np.ndarray], speech: np.ndarray,
                            probabilities: dict[str, np.ndarray]) -> bool:
    """The audio view again from the video's speech windows standardised together, when the audio
    model was trained speaker-normalised and the video has enough of them (features.normalise);
    whether it was."""
    inputs = {name[len(WINDOW_PREFIX):]: a for name, a in arrays.items() if name.startswith(WINDOW_PREFIX)}
    inputs, normalised = normalise_windows(inputs, speech, models.audio_normalise)
    if normalised:
        window_arrays = {**arrays, **{WINDOW_PREFIX + name: a for name, a in inputs.items()}}
        probabilities["audio"] = window_probabilities(models.predictors, window_arrays, ("audio",))["audio"]
    return normalised


def summarise(windows: pl.DataFrame, base: dict, duration: float, fusion: str) -> dict:
    """One video's summary from its fused estimates, over the windows with a person, weighted by
    time: the share of that time each class is the most probable, each class's mean probability,
    the mean probability of the most probable class (confidence), and the dominant emotion (the
    largest share; the larger mean probability breaks a tie). No person anywhere: all null."""
    fused = windows.select([f"fused_{s}" for s in SLUGS]).to_numpy().astype(float)
    person = ~np.isnan(fused).any(1)
    seconds = (windows["end"] - windows["start"]).to_numpy()[person]
    summary = {**base, "duration": float(duration), "windows": windows.height, "dominant_emotion": None,
               **{f"share_{s}": None for s in SLUGS}, **{f"mean_probability_{s}": None for s in SLUGS},
               "mean_confidence": None}
    if person.any():
        probs, weights = fused[person], seconds / max(seconds.sum(), 1e-9)
        winners = probs.argmax(1)
        shares = np.array([weights[winners == c].sum() for c in range(len(SLUGS))])
        means = weights @ probs
        dominant = max(range(len(SLUGS)), key=lambda c: (shares[c], means[c]))
        summary.update({"dominant_emotion": CLASS_NAMES[dominant],
                        **{f"share_{s}": float(v) for s, v in zip(SLUGS, shares)},
                        **{f"mean_probability_{s}": float(v) for s, v in zip(SLUGS, means)},
                        "mean_confidence": float(weights @ probs.max(1))})
    return {**summary,
            "windows_no_face": int((~windows["has_face"]).sum()),
            "windows_no_audio": int((~windows["has_audio"]).sum()),
            "windows_no_speech": int((windows["has_speech"] == False).sum()),  # noqa: E712 (null: unknown)
            "windows_no_person": int((~person).sum()), "fusion": fusion,
            "scored_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def score_file(path: Path, out: Path, params: Params, model_dir: Path = Path("models"),
               digest: str | None = None) -> dict:
    """Score one file into ``out`` exactly once. Returns {"path" (display form), "status":
    scored|skipped|rejected, "content_hash", ...}; never raises for a bad file. ``digest``: the
    file's content hash when the caller knows it (else the file is read to hash it). The models are
    loaded only when the file needs scoring."""
    version = model_version(model_dir, params.video.fusion, out, params.scoring.runtime)
    shown = display_path(path)
    if digest is None:
        try:
            digest = content_hash(path)
        except OSError as exc:
            reason = (f"{shown}: dangling symbolic link to {display_path(os.readlink(path))}"
                      if path.is_symlink() and not path.exists() else
                      f"{shown}: cannot read file ({exc.strerror or exc})")
            return _reject(out, path, None, version, reason)
    key = output_key(digest, version)
    summary_path = out / "videos" / f"{key}.parquet"
    if summary_path.exists():
        dominant = pl.read_parquet(summary_path, columns=["dominant_emotion"])["dominant_emotion"][0]
        return {"path": shown, "status": "skipped", "key": key, "content_hash": digest, "dominant_emotion": dominant}
    models = ready_models(model_dir, params, out)
    try:
        windows, summary = score_video(path, params, models, digest)
    except MediaError as exc:
        return _reject(out, path, digest, models.version, display_path(str(exc)))
    except Exception as exc:  # one bad file never stops a batch
        return _reject(out, path, digest, models.version, display_path(f"{shown}: {type(exc).__name__}: {exc}"))
    atomic.write_parquet(out / "windows" / f"{key}.parquet", windows)
    atomic.write_parquet(summary_path, pl.DataFrame([summary], schema=VIDEO_SCHEMA))
    return {"path": shown, "status": "scored", "key": key, "content_hash": digest,
            "dominant_emotion": summary["dominant_emotion"]}


def _reject(out: Path, path: Path, digest: str | None, version: str, reason: str) -> dict:
    target = out / "rejects" / f"{reject_key(path, digest, version)}.parquet"
    shown = display_path(path)
    if target.exists():
        return {"path": shown, "status": "skipped", "reason": reason, "content_hash": digest}
    atomic.write_parquet(target, pl.DataFrame([{"path": shown, "content_hash": digest, "model_version": version,
                                                "reason": reason}], schema=REJECT_SCHEMA))
    return {"path": shown, "status": "rejected", "reason": reason, "content_hash": digest}

