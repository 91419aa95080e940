"""What a person needs to compare the trained models in one place: held-out metrics, training curves,
ablations and tuning trials of each model, and which DVC version of the models the project holds."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from emotion_models import paths
from emotion_models.labels import CLASS_NAMES
from emotion_models.nets.registry import MODEL_NAMES
from emotion_models.reports.evaluation import LEAVE_CORPUS_OUT, SPEAKER_FOLDS


@dataclass
class ModelOverview:
    """Everything recorded about one model in the project (None where a stage has not run)."""

    name: str
    metrics: dict | None
    history: pl.DataFrame | None
    trials: pl.DataFrame | None
    best_hyperparameters: dict = field(default_factory=dict)
    report: Path | None = None
    checkpoint: Path | None = None
    locked_md5: str | None = None  # the model.pt hash dvc.lock records
    actual_md5: str | None = None  # the hash of the model.pt on disk

    @property
    def matches_lock(self) -> bool | None:
        """Whether the checkpoint on disk is the one dvc.lock names (None: nothing to compare)."""
        if self.locked_md5 is None or self.actual_md5 is None:
            return None
        return self.locked_md5 == self.actual_md5

    def cross_validation(self) -> pl.DataFrame:
        """The model's cross-validation in metrics.json: a row per speaker-fold protocol (accuracy and macro-F1
        as mean +- std over its folds) and a row per corpus left out; the pooled test clips' calibration error
        uncalibrated -> calibrated."""
        rows = []
        for protocol, found in (self.metrics or {}).get("cross_validation", {}).items():
            if protocol == LEAVE_CORPUS_OUT:
                rows += [{"protocol": "leave one corpus out", "tested": f"{corpus} (all speakers)", "folds": 1,
                          "clips": row["n"], "accuracy": f"{row['accuracy']:.1%}", "macro-F1": f"{row['macro_f1']:.3f}",
                          "ECE": _ece(row)} for corpus, row in found.items()]
            else:
                rows.append({"protocol": "speaker folds", "tested": f"{protocol.removesuffix('_speaker_folds')} "
                             "(unseen speakers)", "folds": found["folds"], "clips": found["n"],
                             "accuracy": f"{found['accuracy_mean']:.1%} ± {found['accuracy_std']:.1%}",
                             "macro-F1": f"{found['macro_f1_mean']:.3f} ± {found['macro_f1_std']:.3f}",
                             "ECE": _ece(found)})
        rows.sort(key=lambda row: row["protocol"] != "speaker folds")
        return pl.DataFrame(rows) if rows else pl.DataFrame()

    def per_language(self) -> pl.DataFrame:
        """Accuracy per language of the cross-validation's test clips (speaker folds and leave one corpus
        out pooled apart), where metrics.json has it (the audio model)."""
        titles = {SPEAKER_FOLDS: "speaker folds", LEAVE_CORPUS_OUT: "leave one corpus out"}
        rows = [{"pooled over": titles.get(kind, kind), "language": language, "corpora": ", ".join(row["corpora"]),
                 "clips": row["n"], "accuracy": row["accuracy"]}
                for kind, languages in (self.metrics or {}).get("cross_validation_per_language", {}).items()
                for language, row in languages.items()]
        return pl.DataFrame(rows) if rows else pl.DataFrame()

    def calibration(self) -> dict | None:
        """Temperature, expected calibration error on the test split before and after it, and how the
        temperature was fitted; None for a model evaluated before calibration."""
        metrics = self.metrics or {}
        if "ece_before" not in metrics:
            return None
        return {"temperature": metrics.get("temperature", 1.0), "ece_before": metrics["ece_before"],
                "ece_after": metrics["ece_after"], "note": metrics.get("calibration_note") or ""}

    def per_class(self) -> pl.DataFrame:
        """Precision, recall, F1 and support of each class on the test split."""
        per_class = (self.metrics or {}).get("per_class", {})
        rows = [{"class": name, **{k: per_class[name].get(k) for k in ("precision", "recall", "f1", "support")}}
                for name in CLASS_NAMES if name in per_class]
        return pl.DataFrame(rows) if rows else pl.DataFrame()

    def per_corpus(self) -> pl.DataFrame:
        """n, accuracy and macro-F1 of each corpus (dataset) in the test split."""
        rows = [{"corpus": name, **values} for name, values in (self.metrics or {}).get("per_dataset", {}).items()]
        return pl.DataFrame(rows) if rows else pl.DataFrame()

    def confusion(self) -> pl.DataFrame:
        """Long form of the confusion matrix: actual, predicted, count."""
        metrics = self.metrics or {}
        names = metrics.get("class_names", [])
        return pl.DataFrame([{"actual": names[i], "predicted": names[j], "count": count}
                             for i, row in enumerate(metrics.get("confusion", [])) for j, count in enumerate(row)],
                            schema={"actual": pl.Utf8, "predicted": pl.Utf8, "count": pl.Int64})

    def ablations(self) -> pl.DataFrame:
        """The extra evaluation blocks recorded with the metrics (the video model with some views switched off,
        late vs learned fusion, the audio model's cross-validation): one row per variant, its numbers."""
        rows = [{"block": block["name"], "variant": variant,
                 **{k: v for k, v in values.items() if isinstance(v, (int, float, str)) or v is None}}
                for block in (self.metrics or {}).get("ablations", []) for variant, values in block["rows"].items()
                if isinstance(values, dict)]
        return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _ece(row: dict) -> str:
    """``ECE before -> after`` of a metrics row, empty where it has none."""
    return f"{row['ece_before']:.3f} → {row['ece_after']:.3f}" if "ece_before" in row else ""


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def file_md5(path: Path) -> str:
    """The file's MD5, as DVC records it."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def locked_hashes(root: Path) -> dict[str, str]:
    """``{output path: md5}`` of every stage output dvc.lock records."""
    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {out["path"]: out["md5"] for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])
            if "path" in out and "md5" in out}


def git_revision(root: Path) -> str | None:
    """The project's git commit (short hash, "+" when the work tree has changes), or None outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def model_overview(name: str, root: Path = Path("."), locked: dict[str, str] | None = None) -> ModelOverview:
    """What the project holds about model ``name`` under ``root``."""
    model_dir, report_dir = root / paths.model_dir(name), root / paths.report_dir(name)
    history_path, trials_path = model_dir / "history.csv", model_dir / "tune" / "trials.parquet"
    checkpoint = model_dir / "model.pt"
    locked = locked_hashes(root) if locked is None else locked
    return ModelOverview(
        name=name,
        metrics=_read_json(report_dir / "metrics.json"),
        history=pl.read_csv(history_path) if history_path.is_file() else None,
        trials=pl.read_parquet(trials_path).sort("trial") if trials_path.is_file() else None,
        best_hyperparameters=_read_json(model_dir / "best_hyperparameters.json") or {},
        report=report_dir / "report.html" if (report_dir / "report.html").is_file() else None,
        checkpoint=checkpoint if checkpoint.is_file() else None,
        locked_md5=locked.get(str(paths.model_dir(name) / "model.pt")),
        actual_md5=file_md5(checkpoint) if checkpoint.is_file() else None,
    )


def project_overview(root: Path = Path(".")) -> list[ModelOverview]:
    """Every model of the project, in registry order."""
    locked = locked_hashes(root)
    return [model_overview(name, root, locked) for name in MODEL_NAMES]


def prefect_links(api_url: str | None) -> dict[str, str]:
    """Links into the Prefect UI served with the API at ``api_url`` (``PREFECT_API_URL``); none when unset."""
    if not api_url:
        return {}
    ui = api_url.rstrip("/").removesuffix("/api")
    return {"flow runs": f"{ui}/runs", "deployments": f"{ui}/deployments", "artifacts": f"{ui}/artifacts"}
