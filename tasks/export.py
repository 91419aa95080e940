"""Stage `scoring_export`: the three checkpoints as the ONNX graphs scoring runs (``models/scoring/``),
the face CNNs quantised to int8 on training crops (``scoring.quantise``), and how the graphs agree
with the checkpoints: on the face test split and on every window of the video store
(``reports/scoring/export.json``, DVC metrics)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from emotion_models import atomic, paths
from emotion_models.export.graphs import export_graphs, quantise
from emotion_models.features.audio import input_shapes
from emotion_models.nets.audio import AudioSpec
from emotion_models.nets.face import FaceSpec
from emotion_models.nets.video import VideoSpec
from emotion_models.params import AudioFeatureConfig, FaceFeatureConfig, Params
from emotion_models.reports.evaluation import classification_metrics
from emotion_models.scoring.runtime import META_FILE, OnnxPredictors, TorchPredictors, export_dir, temperatures
from tasks.train import split_labels

CALIBRATION_CROPS = 1024  # training crops that set the int8 activation ranges
CALIBRATION_BATCH = 64
TIMING_BATCH = 64  # crops per timed pass (about a 16-frame window's worth x 4)
EXPORT_REPORT = Path("reports") / "scoring" / "export.json"


def _face_rows(params: Params, labels: dict[str, int], limit: int | None, seed: int) -> tuple[dict, list[str]]:
    """Crops and landmarks of ``labels`` rows of the face store (a seeded random ``limit`` of them)."""
    spec = FaceSpec()
    store, shapes = spec.store(params), spec.arrays(params)
    rng = np.random.default_rng(seed)
    wanted = set(labels)
    if limit is not None and len(wanted) > limit:
        wanted = set(rng.choice(sorted(wanted), limit, replace=False).tolist())
    crops, landmarks, ids = [], [], []
    for table, arrays in store.iter_shards(shapes, shapes):
        clip_ids = table["clip_id"].to_list()
        rows = [i for i, clip in enumerate(clip_ids) if clip in wanted]
        crops.append(arrays["crop"][rows])
        landmarks.append(arrays["landmarks"][rows].astype(np.float32))
        ids += [clip_ids[i] for i in rows]
    return {"crops": np.concatenate(crops), "landmarks": np.concatenate(landmarks)}, ids


def _ms_per_pass(predict: Callable[[np.ndarray, np.ndarray], np.ndarray], faces: dict, repeats: int = 20) -> float:
    crops, landmarks = faces["crops"][:TIMING_BATCH], faces["landmarks"][:TIMING_BATCH]
    predict(crops, landmarks)
    start = time.perf_counter()
    for _ in range(repeats):
        predict(crops, landmarks)
    return 1000 * (time.perf_counter() - start) / repeats


def export_scoring_models(params: Params, model_dir: Path = paths.MODELS, report=print) -> dict:
    """Export, quantise and check the scoring graphs; returns (and writes) the report."""
    video, video_meta = VideoSpec().load(model_dir / "video" / "model.pt")
    audio, audio_meta = AudioSpec().load(model_dir / "audio" / "model.pt")
    face, face_meta = FaceSpec().load(model_dir / "face" / "model.pt")
    audio_features = AudioFeatureConfig(**video_meta["config"]["audio"]["features"])
    face_features = FaceFeatureConfig(**video_meta["config"]["face"]["features"])
    frames = int(round(params.video.features.window_seconds * params.video.features.fps))
    manifest = pl.read_parquet(paths.MANIFEST)
    calibration = temperatures({"video": video_meta, "audio": audio_meta, "face": face_meta})
    torch_predictors = TorchPredictors(video, audio, face, calibration)
    result: dict = {"quantised": params.scoring.quantise}
    with tempfile.TemporaryDirectory(prefix="scoring-export-", dir=model_dir) as tmp:
        staging = Path(tmp) / "scoring"
        export_graphs(video, audio, face, input_shapes(audio_features), face_features.size, frames, staging,
                      calibration)
        atomic.write_json(staging / META_FILE, {"video": video_meta, "audio": audio_meta, "face": face_meta,
                                                "export": {"quantised": params.scoring.quantise}})
        test_labels = split_labels(FaceSpec(), "test", manifest, include_composed=False)
        test, test_ids = _face_rows(params, test_labels, None, params.seed)
        fp32 = OnnxPredictors(staging.parent)
        timing = {"torch fp32": _ms_per_pass(torch_predictors.face, test),
                  "onnx fp32": _ms_per_pass(fp32.face, test)}
        if params.scoring.quantise:
            train_labels = split_labels(FaceSpec(), "train", manifest, include_composed=False)
            calibration, _ = _face_rows(params, train_labels, CALIBRATION_CROPS, params.seed)
            for graph in ("face", "video_face"):
                quantise(staging / f"{graph}.onnx", [
                    {name: values[i:i + CALIBRATION_BATCH] for name, values in calibration.items()}
                    for i in range(0, len(calibration["crops"]), CALIBRATION_BATCH)])
            report(f"face CNNs quantised to int8 on {len(calibration['crops'])} training crops")
        exported = OnnxPredictors(staging.parent)
        if params.scoring.quantise:
            timing["onnx int8"] = _ms_per_pass(exported.face, test)
        truth = [test_labels[i] for i in test_ids]
        reference = torch_predictors.face(test["crops"], test["landmarks"]).argmax(1)
        delivered = exported.face(test["crops"], test["landmarks"]).argmax(1)
        datasets = dict(zip(manifest["clip_id"].to_list(), manifest["dataset"].to_list()))
        corpora, same = np.array([datasets[i] for i in test_ids]), reference == delivered
        result["face_test_split"] = {
            "n": len(truth), "agreement": float(np.mean(same)),
            "accuracy_checkpoint": classification_metrics(truth, reference.tolist())["accuracy"],
            "accuracy_scoring": classification_metrics(truth, delivered.tolist())["accuracy"],
            "per_dataset": {name: {"n": int((corpora == name).sum()), "agreement": float(same[corpora == name].mean())}
                            for name in sorted(set(corpora))}}
        result["face_ms_per_64_crops"] = timing
        result["video_windows"] = _video_agreement(params, torch_predictors, exported)
        report(json.dumps(result, indent=1))
        target = export_dir(model_dir)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    atomic.write_json(EXPORT_REPORT, result)
    return result


def _video_agreement(params: Params, checkpoint, exported) -> dict:
    """How often the graphs and the checkpoints pick the same class, view by view, on every window of
    the video store (composed CI clips included: this checks the export, not accuracy)."""
    from emotion_models.scoring.score import MODEL_VIEWS, window_probabilities

    spec = VideoSpec()
    shapes = spec.arrays(params)
    agree = {view: [] for view in MODEL_VIEWS}
    for _, arrays in spec.store(params).iter_shards(shapes, shapes):
        expected = window_probabilities(checkpoint, arrays)
        got = window_probabilities(exported, arrays)
        for view in MODEL_VIEWS:
            valid = ~np.isnan(expected[view]).any(1)
            agree[view] += (expected[view][valid].argmax(1) == got[view][valid].argmax(1)).tolist()
    return {view: {"n": len(values), "agreement": float(np.mean(values)) if values else None}
            for view, values in agree.items()}
