"""The Markdown tables the flows publish as Prefect artifacts (the evaluation's: reports.evaluation)."""

from __future__ import annotations

import json

import polars as pl

from emotion_models.reports.evaluation import cross_validation_sections


def rejects_markdown(rejects: pl.DataFrame, limit: int = 100) -> str:
    """The first ``limit`` rejected clips and why."""
    return "| path | reason |\n|---|---|\n" + "\n".join(
        f"| {r['path']} | {r['reason']} |" for r in rejects.head(limit).to_dicts())


def cross_validation_markdown(model: str, result: dict) -> str:
    """A table per protocol of tasks.cross_validate's result: each fold, mean +- std and pooled."""
    lines = [f"# {model}: speaker-independent cross-validation"]
    for section in cross_validation_sections(result):
        lines += ["", f"## {section['name']}", "", "| | n | accuracy | macro-F1 |", "|---|---|---|---|"]
        lines += [f"| {name} | {row['n']} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} |"
                  for name, row in section["rows"].items()]
    return "\n".join(lines) + "\n"


def fusion_markdown(record: dict) -> str:
    """Late against learned fusion and each view alone on the validation windows (tasks.fusion's record)."""
    lines = [f"# Fusion used by scoring: {record['choice']}", "", record["reason"], "",
             "| validation (speaker-independent) | windows | accuracy | macro-F1 | coverage |", "|---|---|---|---|---|"]
    for name, row in (("late fusion", record["late"]), ("learned fusion", record["learned"]), *record["views"].items()):
        lines.append(f"| {name} | {row['n']} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} | {row['coverage']:.2f} |")
    return "\n".join(lines) + "\n"


def export_markdown(result: dict) -> str:
    """The scoring graphs against the checkpoints (tasks.export's result): agreement and face CNN speed."""
    face = result["face_test_split"]
    lines = ["# Scoring graphs against the checkpoints", "",
             f"Face test split: {face['n']} crops, the same class for {face['agreement']:.1%}; accuracy "
             f"{face['accuracy_checkpoint']:.3f} (checkpoint) vs {face['accuracy_scoring']:.3f} (scoring graph)", "",
             "| video window view | windows | same class |", "|---|---|---|"]
    lines += [f"| {view} | {row['n']} | {'-' if row['agreement'] is None else format(row['agreement'], '.1%')} |"
              for view, row in result["video_windows"].items()]
    lines += ["", "| face CNN, 64 crops | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in result["face_ms_per_64_crops"].items()]
    return "\n".join(lines) + "\n"


def tuning_markdown(model: str, trials: pl.DataFrame, best: dict, limit: int = 20) -> str:
    """The best ``limit`` trials of a search, best first."""
    trials = trials.sort("val_accuracy", descending=True)
    lines = [f"# {model} tuning: {trials.height} trials", "", f"best: `{json.dumps(best)}`", "",
             "| trial | val accuracy | val macro-F1 | hyperparameters |", "|---|---|---|---|"]
    lines += [f"| {r['trial']} | {r['val_accuracy']:.3f} | {r['val_macro_f1']:.3f} | `{r['hyperparameters']}` |"
              for r in trials.head(limit).iter_rows(named=True)]
    return "\n".join(lines)
