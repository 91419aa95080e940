"""Scored folders and model reports written in the output contract's layout, for the app's page tests."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from emotion_models.labels import SLUGS
from emotion_models.scoring.outputs import output_key

VERSION = "abc123def456"


def scored_video(out: Path, name: str, digest: str, winners: list[str | None], fused: bool,
                 scored_at: str = "2026-11-25T10:00:00+0000", transcript: str = "don't forget a jacket") -> dict:
    """Write one video's window rows and summary row; ``winners`` is each window's top emotion slug (None:
    no person in that window). ``fused`` writes the new contract's columns (fused_*, fusion, ...)."""
    rows = []
    for index, winner in enumerate(winners):
        row = {"path": f"/videos/{name}", "content_hash": digest, "model_version": VERSION, "window": index,
               "start": 4.0 * index, "end": 4.0 * index + 4.0, "transcript": transcript if winner else "",
               "has_face": winner is not None, "has_audio": True, "has_speech": winner is not None}
        for view in ("video", "audio", "face", *(("fused",) if fused else ())):
            for slug in SLUGS:
                value = (0.6 if slug == winner else 0.1) if winner or view == "video" else None
                row[f"{view}_{slug}"] = value
        if fused:
            row["fusion"] = "late"
        rows.append(row)
    windows = pl.DataFrame(rows)
    present = [w for w in winners if w]
    dominant = max(set(present), key=present.count) if present else None
    summary = {"path": f"/videos/{name}", "content_hash": digest, "model_version": VERSION,
               "duration": 4.0 * len(winners), "windows": len(winners),
               "dominant_emotion": {"sad_fear": "Sad/Fear", "neutral": "Neutral", "happy": "Happy", "angry": "Angry",
                                    "surprise_disgust": "Surprise/Disgust"}.get(dominant),
               **{f"share_{s}": present.count(s) / len(winners) for s in SLUGS},
               "mean_confidence": 0.6 if present else None,
               "windows_no_face": winners.count(None), "windows_no_audio": 0, "windows_no_speech": winners.count(None),
               "scored_at": scored_at}
    if fused:
        summary.update({f"mean_probability_{s}": 0.6 if s == dominant else 0.1 for s in SLUGS},
                       windows_no_person=winners.count(None), fusion="late")
    key = output_key(digest, VERSION)
    for table, frame in (("windows", windows), ("videos", pl.DataFrame([summary]))):
        (out / table).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(out / table / f"{key}.parquet")
    return summary


def rejected(out: Path, name: str, reason: str) -> None:
    (out / "rejects").mkdir(parents=True, exist_ok=True)
    pl.DataFrame([{"path": f"/videos/{name}", "content_hash": None, "model_version": VERSION, "reason": reason}],
                 schema={"path": pl.Utf8, "content_hash": pl.Utf8, "model_version": pl.Utf8, "reason": pl.Utf8}
                 ).write_parquet(out / "rejects" / f"{name}.parquet")


def model_reports(root: Path, model: str, accuracy: float, epochs: int = 3, trials: int = 0,
                  cross_validation: bool = False) -> None:
    """reports/<model>/metrics.json, models/<model>/history.csv (and tuning trials) as the pipeline writes them;
    ``cross_validation``: with the audio evaluation's calibration, cross-validation and per-language entries."""
    names = ["Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"]
    metrics = {"n": 10, "accuracy": accuracy, "macro_f1": accuracy - 0.05, "class_names": names,
               "per_class": {n: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for n in names},
               "confusion": [[2 if i == j else 0 for j in range(5)] for i in range(5)],
               "per_dataset": {"ravdess_audio": {"n": 10, "accuracy": accuracy, "macro_f1": accuracy - 0.05}},
               "trained_epoch": epochs, "val_accuracy": 0.5}
    if cross_validation:
        metrics.update(temperature=1.5, ece_before=0.12, ece_after=0.04, calibration_note="fitted on 40 validation clips",
                       cross_validation={
                           "ravdess_speaker_folds": {"folds": 6, "n": 1440, "accuracy_mean": 0.731, "accuracy_std": 0.042,
                                                     "macro_f1_mean": 0.70, "macro_f1_std": 0.05, "ece_before": 0.1,
                                                     "ece_after": 0.03},
                           "leave_corpus_out": {"ravdess": {"n": 1440, "accuracy": 0.552, "macro_f1": 0.5,
                                                            "ece_before": 0.2, "ece_after": 0.1},
                                                "casia": {"n": 1200, "accuracy": 0.301, "macro_f1": 0.25,
                                                          "ece_before": 0.3, "ece_after": 0.2}}},
                       cross_validation_per_language={
                           "speaker_folds": {"English": {"n": 1440, "accuracy": 0.731, "corpora": ["ravdess"]}},
                           "leave_corpus_out": {"English": {"n": 1440, "accuracy": 0.552, "corpora": ["ravdess"]},
                                                "Mandarin": {"n": 1200, "accuracy": 0.301, "corpora": ["casia"]}}})
    if model == "video":
        metrics["ablations"] = [{"name": "Per-modality ablations", "rows": {
            "audio only": {"n": 10, "accuracy": 0.3, "macro_f1": 0.2},
            "face only": {"n": 10, "accuracy": 0.4, "macro_f1": 0.3}}}]
    (root / "reports" / model).mkdir(parents=True, exist_ok=True)
    (root / "reports" / model / "metrics.json").write_text(json.dumps(metrics))
    (root / "models" / model).mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"epoch": list(range(1, epochs + 1)), "train_loss": [1.5 - 0.1 * e for e in range(epochs)],
                  "val_loss": [1.6 - 0.1 * e for e in range(epochs)],
                  "train_accuracy": [0.3 + 0.1 * e for e in range(epochs)],
                  "val_accuracy": [0.25 + 0.1 * e for e in range(epochs)],
                  "val_macro_f1": [0.2 + 0.1 * e for e in range(epochs)]}).write_csv(root / "models" / model /
                                                                                     "history.csv")
    if trials:
        (root / "models" / model / "tune").mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"trial": list(range(trials)), "hyperparameters": ['{"units": 128}'] * trials,
                      "choice_indices": ["{}"] * trials, "val_accuracy": [0.4 + 0.01 * t for t in range(trials)],
                      "val_macro_f1": [0.3] * trials, "epochs": [2] * trials, "seconds": [1.0] * trials}
                     ).write_parquet(root / "models" / model / "tune" / "trials.parquet")
