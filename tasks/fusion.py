"""Stage `video_fusion`: late fusion against the learned fusion on the speaker-independent validation
split, and the choice scoring uses (``models/video/fusion.json``); the same comparison, with each
view alone, on any labelled video store (``emotion evaluate video``, the video report)."""

from __future__ import annotations

import numpy as np
import polars as pl

from emotion_models import atomic, paths
from emotion_models.features.shards import FeatureStore
from emotion_models.nets.video import VideoSpec
from emotion_models.params import Params
from emotion_models.reports.evaluation import classification_metrics
from emotion_models.scoring.fusion import CHOICE_FILE, choose_fusion
from emotion_models.scoring.score import ScoringModels, fuse_windows, load_models, window_probabilities
from tasks.train import split_labels

LATE, LEARNED = "late fusion (audio + face + text)", "learned fusion (combined model)"
# each row of the comparison: which of window_views' outputs it scores
COMPARED = {LATE: "late", LEARNED: "video", "audio only": "audio", "face only": "face", "text only": "text"}


def fusion_comparison(models: ScoringModels, params: Params, store: FeatureStore, labels: dict[str, int]) -> dict:
    """Per-window metrics of late fusion, the learned fusion and each view alone on the ``labels``
    rows of a video feature store: {name: {n, accuracy, macro_f1, coverage}}. A window where a
    method gives no estimate (the view is missing, or no person) counts as wrong; ``coverage`` is
    the share of windows with an estimate."""
    shapes = VideoSpec().arrays(params)
    truth: list[int] = []
    predicted: dict[str, list[int]] = {name: [] for name in COMPARED}
    for table, arrays in store.iter_shards(shapes, shapes):
        rows = np.flatnonzero(np.isin(np.asarray(table["clip_id"].to_list()), list(labels)))
        if not rows.size:
            continue
        batch = {name: np.asarray(values[rows]) for name, values in arrays.items()}
        transcripts = [table["transcript"][int(i)] for i in rows]
        views = fuse_windows(models, params, window_probabilities(models.predictors, batch), transcripts,
                             batch["frame_mask"].any(1), batch["audio_mask"].astype(bool), "late")
        views["late"] = views["fused"]
        for name, view in COMPARED.items():
            values = views[view]
            predicted[name].extend(np.where(np.isnan(values).any(1), -1, np.nan_to_num(values).argmax(1)).tolist())
        truth.extend(labels[table["clip_id"][int(i)]] for i in rows)
    comparison = {}
    for name, guesses in predicted.items():
        metrics = classification_metrics(truth, guesses)
        comparison[name] = {"n": metrics["n"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                            "coverage": float(np.mean(np.asarray(guesses) >= 0)) if guesses else 0.0}
    return comparison


def select_fusion(params: Params) -> dict:
    """Compare late and learned fusion on the real (never composed) validation clips and write the
    choice, both numbers and each view alone to ``models/video/fusion.json``."""
    manifest = pl.read_parquet(paths.MANIFEST)
    spec = VideoSpec()
    store = spec.store(params)
    extracted = set(store.index()["clip_id"].to_list())
    labels = {k: v for k, v in split_labels(spec, "val", manifest, include_composed=False).items() if k in extracted}
    speakers = manifest.filter(pl.col("clip_id").is_in(list(labels)))["speaker_id"].n_unique()
    models = load_models(paths.MODELS, params.video.fusion)
    comparison = fusion_comparison(models, params, store, labels)
    choice, reason = choose_fusion(comparison[LATE], comparison[LEARNED], speakers,
                                   params.video.fusion.min_validation_speakers)
    record = {"choice": choice, "reason": reason, "metric": "macro_f1",
              "validation": {"clips": len(labels), "speakers": speakers, "windows": comparison[LATE]["n"]},
              "weights": models.weights, "late": comparison[LATE], "learned": comparison[LEARNED],
              "views": {name: comparison[name] for name in ("audio only", "face only", "text only")}}
    atomic.write_json(paths.model_dir("video") / CHOICE_FILE, record)
    return record
