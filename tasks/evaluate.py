"""Stages `<model>_evaluate`, and evaluation of a trained model on any dataset copy."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from emotion_models import atomic, paths
from emotion_models.data.datasets import Reject, corpus_language, get_adapter
from emotion_models.errors import EmotionError, MissingInput
from emotion_models.features.face import NoFaceError, preprocessor_for
from emotion_models.features.media import MediaError, iter_frames
from emotion_models.features.shards import FeatureStore, extract
from emotion_models.labels import CLASS_NAMES, DroppedEmotion, harmonise_emotion
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import CrossValidationConfig, Params
from emotion_models.reports.evaluation import (
    classification_metrics,
    cross_validation_sections,
    cross_validation_summary,
    evaluation_metrics,
    language_sections,
    per_language,
    reliability_png,
    render_report,
    write_confusion_csv,
)
from emotion_models.scoring.score import load_models
from emotion_models.training.calibration import ECE_BINS, expected_calibration_error, predict_logits, softmax
from emotion_models.training.data import ShardDataset, make_loader
from emotion_models.training.loop import select_device
from tasks.fusion import fusion_comparison
from tasks.train import split_labels


class FeaturesChanged(EmotionError, RuntimeError):
    """The model was trained on features made with other parameters."""


def _check_features(spec: ModelSpec, meta: dict, store: FeatureStore) -> None:
    if meta.get("feature_key") != store.key:
        raise FeaturesChanged(f"{spec.name}: the model was trained on features {meta.get('feature_key')}, "
                              f"params.yaml now makes {store.key}; retrain (dvc repro) first")


def score_store(spec: ModelSpec, params: Params, store: FeatureStore, labels: dict[str, int], datasets: dict[str, str],
                model=None, meta: dict | None = None) -> tuple[dict, list[str], list[int], list[int], np.ndarray]:
    """Metrics of the trained model on ``labels`` rows of ``store`` (with the calibration's: the
    checkpoint's ``temperature`` and the expected calibration error before and after it); also ids,
    true and predicted labels and the logits."""
    if model is None:
        model, meta = spec.load()
    _check_features(spec, meta, store)
    device = select_device()
    data = ShardDataset(store, spec.arrays(params), labels)
    logits, y_true, ids = predict_logits(model, make_loader(data, 128, 0, device), device)
    temperature = float(meta.get("temperature", 1.0))
    metrics = evaluation_metrics(y_true, softmax(logits, temperature), [datasets[i] for i in ids])
    metrics.update(temperature=temperature, ece_bins=ECE_BINS,
                   ece_before=expected_calibration_error(softmax(logits), y_true),
                   ece_after=expected_calibration_error(softmax(logits, temperature), y_true))
    return metrics, ids, y_true.tolist(), logits.argmax(1).tolist() if len(ids) else [], logits


def evaluate(spec: ModelSpec, params: Params, trained: tuple[nn.Module, dict], sections: list[dict] | None = None,
             gallery: list[dict] | None = None, notes: list[str] | None = None,
             summary: dict | None = None) -> dict:
    """Evaluate ``trained`` (the model and its checkpoint meta, ``spec.load()``) on the speaker-independent
    test split; write reports/<name>/ (metrics.json, plots, HTML). ``summary`` (e.g. cross-validation
    results) is added to metrics.json."""
    manifest = pl.read_parquet(paths.MANIFEST)
    store = spec.store(params)
    labels = split_labels(spec, "test", manifest, include_composed=False)
    extracted = set(store.index()["clip_id"].to_list())
    missing = len(set(labels) - extracted)
    labels = {k: v for k, v in labels.items() if k in extracted}
    datasets = dict(zip(manifest["clip_id"].to_list(), manifest["dataset"].to_list()))
    model, meta = trained
    metrics, ids, y_true, y_pred, logits = score_store(spec, params, store, labels, datasets, model, meta)
    metrics.update(rejected_test_clips=missing, trained_epoch=meta.get("epoch"),
                   val_accuracy=meta.get("val_accuracy"), train_clips=meta.get("train_clips"), **(summary or {}))
    calibration = meta.get("calibration", {"note": "checkpoint from before calibration (T = 1)"})
    metrics["calibration_note"] = calibration.get("note") or (
        f"fitted on {calibration['clips']} validation clips"
        + (" with the selection run's model, before the refit on them" if "model" in calibration else ""))
    if sections:
        metrics["ablations"] = sections  # {"name", "rows": {variant: {n, accuracy, macro_f1}}}, for the app's /models
    out = paths.report_dir(spec.name)
    atomic.write_json(out / "metrics.json", metrics)
    write_confusion_csv(out / "confusion.csv", y_true, y_pred)
    tested = manifest.filter(pl.col("clip_id").is_in(ids)).group_by("dataset").agg(
        pl.len().alias("clips"), pl.col("speaker_id").n_unique().alias("speakers")).sort("dataset")
    per_dataset = "; ".join(f"{d}: {c} clips of {s} speakers" for d, c, s in tested.iter_rows())
    render_report(out, f"{spec.name.capitalize()} model: speaker-independent test split", metrics,
                  paths.model_dir(spec.name) / "history.csv", sections or [], gallery or [],
                  [f"{len(ids)} test clips from speakers never seen in training ({per_dataset}); "
                   f"{missing} test clips rejected by feature extraction.", *(notes or [])],
                  reliability_png(y_true, softmax(logits), softmax(logits, metrics["temperature"]),
                                  metrics["temperature"], (metrics["ece_before"], metrics["ece_after"])))
    return metrics


def external_rows(spec: ModelSpec, params: Params, data_root: Path, dataset: str) -> tuple[list[dict], list[Reject]]:
    """Labelled rows of every clip of ``dataset`` found in ``data_root`` (its original layout)."""
    adapter = get_adapter(dataset, params.data)
    if adapter.modality != spec.modality:
        raise ValueError(f"dataset '{dataset}' is {adapter.modality}, the {spec.name} model needs {spec.modality}")
    if not data_root.is_dir():
        raise MissingInput(f"{data_root}: data root not found")
    rows, rejects = [], []
    for item in adapter.scan(data_root, data_root):
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        try:
            _, label = harmonise_emotion(item.emotion, params.data.labels.as_dict())
        except DroppedEmotion as exc:
            rejects.append(Reject(item.path, str(exc)))
            continue
        rows.append({"clip_id": f"{dataset}:{item.path}", "path": item.path, "dataset": dataset,
                     "speaker_id": item.speaker_id, "label": label})
    return rows, rejects


def evaluate_external(spec: ModelSpec, params: Params, data_root: Path, dataset: str, out: Path,
                      progress=None) -> dict:
    """Evaluate the trained model on every clip of a dataset copy; write the metrics JSON to ``out``.
    The video model's metrics also hold ``fusion``: late and learned fusion and each view alone on
    the same windows, and the fusion scoring uses."""
    rows, rejects = external_rows(spec, params, data_root, dataset)
    model, meta = spec.load()
    features = getattr(params, spec.name).features
    with tempfile.TemporaryDirectory(prefix="emotion-eval-") as tmp:
        store = spec.store(params, Path(tmp) / "features")
        extract(rows, spec.featuriser(params), store, features.workers, features.shard_rows, progress)
        labels = {r["clip_id"]: r["label"] for r in rows}
        metrics, *_ = score_store(spec, params, store, labels, {r["clip_id"]: dataset for r in rows}, model, meta)
        if spec.name == "video":
            models = load_models(paths.MODELS, params.video.fusion)
            metrics["fusion"] = {"used_by_scoring": models.fusion["choice"], "reason": models.fusion["reason"],
                                 "weights": models.weights,
                                 "variants": fusion_comparison(models, params, store, labels)}
        feature_rejects = store.rejects()
    metrics.update(dataset=dataset, data_root=str(data_root), model=str(spec.checkpoint_path()),
                   rejects=[{"path": r.path, "reason": r.reason} for r in rejects]
                   + feature_rejects.select("path", "reason").to_dicts())
    atomic.write_json(out, metrics)
    return metrics


ABLATIONS = {"fused (audio + face + text)": ("audio", "face", "text"), "audio only": ("audio",),
             "face only": ("face",), "text only": ("text",)}


def ablation_sections(spec: ModelSpec, params: Params) -> list[dict]:
    """The fusion scoring uses (and why); late against learned fusion with each view alone; the
    learned video model with only some streams switched on; composed clips apart."""
    manifest = pl.read_parquet(paths.MANIFEST)
    store = spec.store(params)
    model, meta = spec.load()
    datasets = dict(zip(manifest["clip_id"].to_list(), manifest["dataset"].to_list()))
    real = split_labels(spec, "test", manifest, include_composed=False)
    composed_rows = manifest.filter(pl.col("composed") & (pl.col("modality") == spec.modality)
                                    & (pl.col("split") != "train"))
    composed = dict(zip(composed_rows["clip_id"].to_list(), composed_rows["label"].to_list()))
    models = load_models(paths.MODELS, params.video.fusion)
    choice = models.fusion
    validated = {name: choice[key] for name, key in (("late fusion", "late"), ("learned fusion", "learned"))
                 if choice.get(key, {}).get("n")}
    sections = [{"name": f"Fusion used by scoring: {choice['choice']} (models/video/fusion.json, validation split)",
                 "rows": validated, "coverage": True, "note": choice["reason"]}]
    for title, labels in (("speaker-independent test split", real),
                          ("composed clips (synthetic CI data, validation + test speakers; never reported accuracy)",
                           composed)):
        if labels:
            sections.append({"name": f"Late vs learned fusion, and each view alone (late fusion's views): {title}",
                             "rows": fusion_comparison(models, params, store, labels), "coverage": True,
                             "note": "A window without an estimate (its view missing, or no person) counts as wrong."})
    for title, labels in (("Learned fusion with streams switched off: speaker-independent test split", real),
                          ("Learned fusion with streams switched off: composed clips (synthetic CI data, "
                           "validation + test speakers; never reported accuracy)", composed)):
        if not labels:
            continue
        rows = {}
        for name, streams in ABLATIONS.items():
            model.use = {stream: stream in streams for stream in model.use}
            metrics, *_ = score_store(spec, params, store, labels, datasets, model, meta)
            rows[name] = {key: metrics[key] for key in ("n", "accuracy", "macro_f1")}
        sections.append({"name": title, "rows": rows})
    return sections


# Published or measured peers of each model on people they never met, shown beside its numbers.
PEERS = {"audio": "Peer on unseen speakers: openSMILE eGeMAPS + SVM, about 50% (50.4% on 720 clips of "
                  "12 RAVDESS actors outside ../shared, 5 classes)."}


def configured_protocols(spec: ModelSpec, params: Params) -> CrossValidationConfig | None:
    """The model's cross-validation protocols in params.yaml (``<model>.evaluation``), None when it has none."""
    config = getattr(getattr(params, spec.name), "evaluation", None)
    return config if config is not None and (config.speaker_folds or config.leave_corpus_out) else None


def cross_validation_extras(spec: ModelSpec, params: Params) -> dict:
    """The model's cross-validation (reports/<model>/cross_validation.json, stage <model>_cross_validate)
    as report sections and metrics.json entries (the audio model's also per language); nothing when
    params.yaml configures no protocol."""
    if configured_protocols(spec, params) is None:
        return {}
    path = paths.report_dir(spec.name) / "cross_validation.json"
    if not path.is_file():
        raise MissingInput(f"{path}: cross-validation results not found (run the {spec.name}_cross_validate "
                                "stage first: dvc repro)")
    result = json.loads(path.read_text())
    extras = {"sections": cross_validation_sections(result), "summary": cross_validation_summary(result)}
    if spec.modality == "audio":  # speech: the accuracy per language spoken
        languages = per_language(result, corpus_language)
        extras["sections"] += language_sections(languages)
        extras["summary"]["cross_validation_per_language"] = languages
    return extras


VIDEO_CHECK_DATASET = "crema_d_video"  # the shared talking-face clips the face report's video-frame check reads


def frame_check_metrics(clips: list[tuple[int, np.ndarray]]) -> dict:
    """Per-frame and per-clip metrics of ``(label, calibrated probabilities of each face frame)`` per clip:
    every frame with a face counts once; a clip is predicted by the mean probability over its frames (a
    clip without a face frame is left out and counted)."""
    with_face = [(label, frames) for label, frames in clips if len(frames)]
    frame_labels = [label for label, frames in with_face for _ in frames]
    frame_predictions = [int(p) for _, frames in with_face for p in frames.argmax(1)]
    keep = ("n", "accuracy", "macro_f1")
    per_frame = classification_metrics(frame_labels, frame_predictions)
    per_clip = classification_metrics([label for label, _ in with_face],
                                      [int(frames.mean(0).argmax()) for _, frames in with_face])
    return {"per_frame": {k: per_frame[k] for k in keep}, "per_clip": {k: per_clip[k] for k in keep},
            "clips_without_face": len(clips) - len(with_face)}


def clip_frame_probabilities(path: str, params: Params, model, temperature: float) -> tuple[np.ndarray, int]:
    """Calibrated class probabilities of every frame of a video with a face, sampled at video.features.fps and
    cropped by the face model's rule as the video features crop them; also how many frames were sampled."""
    preprocessor = preprocessor_for(params.face.features)
    preprocessor.start_video()
    crops, landmarks, sampled = [], [], 0
    for _, image in iter_frames(path, params.video.features.fps, params.scoring.max_pixels,
                                params.scoring.skip_nonref_frames_above):
        sampled += 1
        try:
            face = preprocessor.process(image, path, track=True)
        except NoFaceError:
            continue
        crops.append(face.crop)
        landmarks.append(face.landmarks)
    if not crops:
        return np.zeros((0, len(CLASS_NAMES))), sampled
    device = select_device()
    with torch.no_grad():
        logits = model.to(device).eval()({"crop": torch.from_numpy(np.stack(crops)).to(device),
                                          "landmarks": torch.from_numpy(np.stack(landmarks)).to(device)})
    return softmax(logits.float().cpu().numpy(), temperature), sampled


def video_frame_check(params: Params, manifest: pl.DataFrame, model, meta: dict) -> dict:
    """The face model on the frames of the manifest's CREMA-D video clips (a smoke check of one actor, not a
    measure): per-frame accuracy over frames with a face and per-clip accuracy of the mean probability over
    a clip's frames, labelled with the actors and clips it covers; a clip that cannot be decoded is a reject."""
    rows = manifest.filter((pl.col("dataset") == VIDEO_CHECK_DATASET) & ~pl.col("composed")).sort("path")
    if not rows.height:
        return {"label": f"no {VIDEO_CHECK_DATASET} clips in the manifest (data.datasets.{VIDEO_CHECK_DATASET} "
                         "disabled or missing): no video-frame check", "clips": 0}
    speakers = sorted(set(rows["speaker_id"].to_list()))
    actors = "one actor" if len(speakers) == 1 else f"{len(speakers)} actors"
    clips, rejects, frames = [], [], 0
    for path, label in zip(rows["path"].to_list(), rows["label"].to_list()):
        try:
            probabilities, sampled = clip_frame_probabilities(path, params, model, float(meta.get("temperature", 1.0)))
        except MediaError as exc:
            rejects.append({"path": path, "reason": str(exc)})
            continue
        clips.append((int(label), probabilities))
        frames += sampled
    return {"label": f"{actors} (CREMA-D {', '.join(speakers)}), {rows.height} clips: a smoke check, not a measure",
            "clips": rows.height, "speakers": speakers, "fps": params.video.features.fps, "frames": frames,
            "frames_with_face": sum(len(p) for _, p in clips), **frame_check_metrics(clips), "rejects": rejects}


def video_frame_section(check: dict) -> dict:
    """The report section of :func:`video_frame_check`."""
    section = {"name": f"Video-frame check: {check['label']}"}
    if not check["clips"]:
        return {**section, "rows": {}}
    return {**section, "rows": {
        f"per frame ({check['frames_with_face']} of {check['frames']} frames at {check['fps']:g} FPS with a face)":
            check["per_frame"],
        f"per clip (mean probability over its face frames; {check['clips_without_face']} clips without a face, "
        f"{len(check['rejects'])} unreadable)": check["per_clip"]},
        "note": "Frames decoded and cropped as the video features do (video.features.fps, the face model's crop rule), "
                "scored by the face checkpoint with its temperature."}


class MeasurementsUnreadable(EmotionError, ValueError):
    """A committed measurement file is not in the expected form."""


def backbone_comparison_section(measurements: Path, test_sizes: dict[str, int]) -> dict | None:
    """The face backbones measured on the same splits and draws (``measurements``: the records
    scripts/face_experiments.py printed) as a report section, one row per backbone and test corpus
    (``test_sizes``: faces per corpus in the test split); None without the file."""
    if not measurements.exists():
        return None
    try:
        measured = json.loads(measurements.read_text())
        rows = {f"{record['backbone']} ({record['recipe']}; {record['measured']}): {corpus} test":
                {"n": test_sizes.get(corpus), "accuracy": accuracy / 100, "macro_f1": None}
                for record in measured["records"] for corpus, accuracy in record["test"].items()}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise MeasurementsUnreadable(f"{measurements}: not a backbone measurement file ({exc!r})") from exc
    return {"name": "Backbones side by side on the same splits (scripts/face_experiments.py)", "rows": rows,
            "note": f"{measured.get('about', '')} The delivered model's own numbers are under 'Per dataset'. "
                    f"Source: {measurements}."}


def corpus_sizes_in_test_split(spec: ModelSpec, manifest: pl.DataFrame) -> dict[str, int]:
    """How many clips of each corpus the model's test split holds."""
    test = manifest.filter(pl.col("clip_id").is_in(list(split_labels(spec, "test", manifest))))
    return dict(test.group_by("dataset").len().iter_rows())


def members_note(meta: dict) -> list[str]:
    """The report's line on a model of several networks (``face.members``); none for one network."""
    members = meta.get("members")
    if not members:
        return []
    seeds = ", ".join(str(m["seed"]) for m in members)
    alone = " / ".join(f"{m['val_accuracy']:.3f}" for m in members)
    return [f"The model is {len(members)} networks (seeds {seeds}), each pretrained and fine-tuned on its own, "
            f"their probabilities averaged: validation accuracy {alone} alone, {meta['val_accuracy']:.3f} together. "
            "The training curves are the members' mean per epoch."]


def report_extras(spec: ModelSpec, params: Params, trained: tuple[nn.Module, dict]) -> dict:
    """Extra content of ``trained``'s evaluation report (keyword arguments of ``evaluate``): the
    audio model's cross-validation and peers, the face model's cross-validation, video-frame check, backbones
    side by side and Grad-CAM gallery, the video model's per-modality ablations."""
    if spec.name == "audio":
        return {**cross_validation_extras(spec, params), "notes": [PEERS["audio"]]}
    if spec.name == "face":
        from emotion_models.reports.gradcam import evaluation_gallery

        extras = cross_validation_extras(spec, params)
        model, meta = trained
        manifest = pl.read_parquet(paths.MANIFEST)
        check = video_frame_check(params, manifest, model, meta)
        backbones = backbone_comparison_section(paths.FACE_BACKBONE_MEASUREMENTS, corpus_sizes_in_test_split(spec, manifest))
        return {"sections": [*extras.get("sections", []), video_frame_section(check), *([backbones] if backbones else [])],
                "summary": {**extras.get("summary", {}), "video_frame_check": check},
                "gallery": evaluation_gallery(spec, params, params.face.gallery_size, model, meta), "notes": members_note(meta)}
    if spec.name == "video":
        return {"sections": ablation_sections(spec, params)}
    return {}
