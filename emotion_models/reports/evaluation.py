"""Metrics and the reports a person reviews: JSON for DVC, CSV for `dvc plots`, PNGs and an HTML page."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support  # noqa: E402

from emotion_models import atomic  # noqa: E402
from emotion_models.labels import CLASS_NAMES, NUM_CLASSES  # noqa: E402
from emotion_models.training.calibration import ECE_BINS, reliability  # noqa: E402

CLASSES = list(range(NUM_CLASSES))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    """accuracy, macro_f1, n, per-class precision/recall/F1/support and the confusion matrix."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    n = int(y_true.shape[0])
    if n == 0:
        empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return {"n": 0, "accuracy": 0.0, "macro_f1": 0.0, "per_class": {c: dict(empty) for c in CLASS_NAMES},
                "confusion": [[0] * NUM_CLASSES for _ in CLASSES], "class_names": list(CLASS_NAMES)}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=CLASSES, zero_division=0)
    present = [c for c in CLASSES if c in set(y_true.tolist())]
    return {
        "n": n,
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            CLASS_NAMES[c]: {"precision": float(precision[c]), "recall": float(recall[c]),
                             "f1": float(f1[c]), "support": int(support[c])}
            for c in CLASSES
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=CLASSES).tolist(),
        "class_names": list(CLASS_NAMES),
    }


def evaluation_metrics(y_true: Sequence[int], probabilities: np.ndarray, groups: Sequence[str]) -> dict:
    """Overall metrics plus the same per dataset (``groups``)."""
    y_pred = np.asarray(probabilities).argmax(1) if len(probabilities) else np.zeros(0, int)
    metrics = classification_metrics(y_true, y_pred)
    groups = np.asarray(groups)
    metrics["per_dataset"] = {
        str(group): {k: v for k, v in classification_metrics(np.asarray(y_true)[groups == group],
                                                             y_pred[groups == group]).items()
                     if k in ("n", "accuracy", "macro_f1")}
        for group in sorted(set(groups.tolist()))
    }
    return metrics


def figure_png(figure: plt.Figure) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def confusion_png(confusion: list[list[int]], title: str) -> bytes:
    matrix = np.asarray(confusion)
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(CLASSES, CLASS_NAMES, rotation=35, ha="right")
    axis.set_yticks(CLASSES, CLASS_NAMES)
    axis.set_xlabel("predicted")
    axis.set_ylabel("actual")
    axis.set_title(title)
    for (i, j), value in np.ndenumerate(matrix):
        axis.text(j, i, str(value), ha="center", va="center",
                  color="white" if value > matrix.max() / 2 else "black")
    return figure_png(figure)


def curves_png(history_csv: Path) -> bytes | None:
    if not history_csv.is_file():
        return None
    with history_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("train_loss", "val_loss"):
        left.plot(epochs, [float(r[key]) for r in rows], label=key)
    for key in ("train_accuracy", "val_accuracy", "val_macro_f1"):
        right.plot(epochs, [float(r[key]) for r in rows], label=key)
    left.set_xlabel("epoch")
    right.set_xlabel("epoch")
    left.legend()
    right.legend()
    return figure_png(figure)


def reliability_png(y_true: Sequence[int], uncalibrated: np.ndarray, calibrated: np.ndarray, temperature: float,
                    ece: tuple[float, float]) -> bytes:
    """Reliability diagrams before and after temperature scaling: the accuracy of each confidence bin
    against its mean confidence (a calibrated model's bars meet the diagonal), with the rows per bin."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    width = 1.0 / ECE_BINS
    for axis, probabilities, title, error in ((axes[0], uncalibrated, "uncalibrated (T = 1)", ece[0]),
                                              (axes[1], calibrated, f"temperature T = {temperature:.2f}", ece[1])):
        counts, confidence, accuracy = reliability(probabilities, np.asarray(y_true))
        filled = counts > 0
        centres = (np.arange(ECE_BINS) + 0.5) * width
        axis.bar(centres[filled], accuracy[filled], width=width * 0.9, color="#4c72b0", label="accuracy")
        axis.bar(centres[filled], accuracy[filled] - confidence[filled], bottom=confidence[filled], width=width * 0.9,
                 color="#c44e52", alpha=0.3, edgecolor="#c44e52", hatch="//", label="gap: accuracy - confidence")
        axis.plot([0, 1], [0, 1], "k--", linewidth=1)
        for x, n in zip(centres[filled], counts[filled]):
            axis.text(x, 0.02, str(n), ha="center", fontsize=6, rotation=90, color="white")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("confidence (top probability)")
        axis.set_title(f"{title}: ECE {error:.3f}", fontsize=10)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    return figure_png(figure)


def write_confusion_csv(path: Path, y_true: Sequence[int], y_pred: Sequence[int]) -> None:
    """One row per sample (actual, predicted): the format `dvc plots` draws as a confusion matrix."""
    lines = ["actual,predicted"] + [f"{CLASS_NAMES[t]},{CLASS_NAMES[p]}" for t, p in zip(y_true, y_pred)]
    atomic.write_text(path, "\n".join(lines) + "\n")


def data_uri(png: bytes | None) -> str | None:
    """A PNG as a data: URI, for self-contained HTML reports."""
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


def render_report(
    out_dir: Path,
    title: str,
    metrics: dict,
    history_csv: Path | None = None,
    sections: Sequence[dict] = (),
    gallery: Sequence[dict] = (),
    notes: Sequence[str] = (),
    reliability_plot: bytes | None = None,
) -> Path:
    """Write confusion.png, training_curves.png, reliability.png and report.html into ``out_dir``.

    ``sections`` are extra metric blocks (e.g. ablations: {"name", "metrics"}); ``gallery``
    items are {"title", "png"} images shown under the metrics; ``reliability_plot`` is the reliability
    diagram (:func:`reliability_png`) of the calibration numbers in ``metrics``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    confusion = confusion_png(metrics["confusion"], title)
    (out_dir / "confusion.png").write_bytes(confusion)
    curves = curves_png(history_csv) if history_csv else None
    if curves:
        (out_dir / "training_curves.png").write_bytes(curves)
    if reliability_plot:
        (out_dir / "reliability.png").write_bytes(reliability_plot)
    env = Environment(loader=PackageLoader("emotion_models.reports", "templates"), autoescape=select_autoescape())
    html = env.get_template("report.html.j2").render(
        title=title, metrics=metrics, confusion=data_uri(confusion), curves=data_uri(curves),
        reliability=data_uri(reliability_plot),
        sections=sections, notes=notes,
        gallery=[{"title": item["title"], "src": data_uri(item["png"])} for item in gallery],
    )
    return atomic.write_text(out_dir / "report.html", html)


def metrics_markdown(title: str, metrics: dict) -> str:
    """A short Markdown summary for a Prefect artifact."""
    lines = [f"# {title}", "", f"accuracy **{metrics['accuracy']:.3f}**, macro-F1 **{metrics['macro_f1']:.3f}**, "
             f"n = {metrics['n']}", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in metrics["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    if metrics.get("per_dataset"):
        lines += ["", "| dataset | n | accuracy | macro-F1 |", "|---|---|---|---|"]
        for name, row in metrics["per_dataset"].items():
            lines.append(f"| {name} | {row['n']} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} |")
    return "\n".join(lines) + "\n"


LEAVE_CORPUS_OUT = "leave_corpus_out"


def _protocol_title(protocol: str, summary: dict) -> str:
    if protocol == LEAVE_CORPUS_OUT:
        return "Leave one corpus out: each corpus tested by a model trained on the other corpora only"
    corpus = protocol.removesuffix("_speaker_folds")
    folds = len(summary["folds"])
    kind = "leave one speaker out" if all(len(f["test_speakers"]) == 1 for f in summary["folds"]) else \
        f"{folds} folds of its speakers"
    return (f"Speaker cross-validation, {corpus}: {kind}, each fold trained on every other speaker of every corpus "
            "(validation speakers apart)")


def cross_validation_sections(result: dict) -> list[dict]:
    """Report sections of tasks.cross_validate's result: a row per fold, the mean +- std over folds
    and all test clips pooled."""
    sections = []
    protocols = sorted(result["protocols"].items(), key=lambda item: item[0] == LEAVE_CORPUS_OUT)  # speakers first
    for protocol, summary in protocols:
        rows = {}
        for fold in summary["folds"]:
            label = (f"{fold['fold']}: trained on {', '.join(fold['train_corpora'])}" if protocol == LEAVE_CORPUS_OUT
                     else f"{fold['fold']}: test {', '.join(fold['test_speakers'])}")
            if not fold.get("val_speakers"):
                label += " (no validation speaker: epoch chosen on training accuracy)"
            rows[label] = {key: fold[key] for key in ("n", "accuracy", "macro_f1")}
        accuracy, f1 = summary["accuracy"], summary["macro_f1"]
        rows[f"mean over folds (accuracy std {accuracy['std']:.3f}, macro-F1 std {f1['std']:.3f})"] = {
            "n": summary["pooled"]["n"], "accuracy": accuracy["mean"], "macro_f1": f1["mean"]}
        rows["all test clips pooled"] = summary["pooled"]
        sections.append({"name": _protocol_title(protocol, summary), "rows": rows})
    return sections


SPEAKER_FOLDS = "speaker_folds"  # every "<corpus>_speaker_folds" protocol, pooled


def tested_corpus(protocol: str, fold: dict) -> str:
    """The corpus a fold tests: a speaker-fold protocol tests speakers of its corpus, a leave-one-corpus-out
    fold all of the corpus it is named after."""
    return fold["fold"] if protocol == LEAVE_CORPUS_OUT else protocol.removesuffix("_speaker_folds")


def per_language(result: dict, corpus_language: Callable[[str], str]) -> dict[str, dict[str, dict]]:
    """Accuracy per language (``corpus_language`` of a corpus, data.datasets' map) of the cross-validation's
    test clips, pooled over the folds of every speaker-fold protocol and, apart, of leave-one-corpus-out:
    ``{"speaker_folds" | "leave_corpus_out": {language: {"n", "accuracy", "corpora"}}}``. A fold tests one
    corpus, so its clips count under that corpus's language."""
    pooled: dict[str, dict[str, dict]] = {}
    for protocol, found in result["protocols"].items():
        kind = LEAVE_CORPUS_OUT if protocol == LEAVE_CORPUS_OUT else SPEAKER_FOLDS
        for fold in found["folds"]:
            corpus = tested_corpus(protocol, fold)
            row = pooled.setdefault(kind, {}).setdefault(corpus_language(corpus),
                                                         {"n": 0, "correct": 0, "corpora": set()})
            row["n"] += fold["n"]
            row["correct"] += round(fold["n"] * fold["accuracy"])
            row["corpora"].add(corpus)
    return {kind: {language: {"n": row["n"], "accuracy": row["correct"] / row["n"] if row["n"] else 0.0,
                              "corpora": sorted(row["corpora"])}
                   for language, row in sorted(languages.items())}
            for kind, languages in sorted(pooled.items(), key=lambda item: item[0] == LEAVE_CORPUS_OUT)}


def language_sections(languages: dict[str, dict[str, dict]]) -> list[dict]:
    """Report sections of ``per_language``: one table per pooling (speaker folds, leave one corpus out)."""
    titles = {SPEAKER_FOLDS: "Accuracy per language: speaker cross-validation, test clips of every fold pooled",
              LEAVE_CORPUS_OUT: "Accuracy per language: leave one corpus out, test clips of every corpus pooled"}
    return [{"name": titles[kind], "note": "Macro-F1 is not pooled here (each fold's per-class counts are not kept).",
             "rows": {f"{language} ({', '.join(row['corpora'])})": {"n": row["n"], "accuracy": row["accuracy"],
                                                                    "macro_f1": None}
                      for language, row in found.items()}}
            for kind, found in languages.items()]


CALIBRATION = ("ece_before", "ece_after")


def cross_validation_summary(result: dict) -> dict:
    """metrics.json entries of tasks.cross_validate's result: per speaker-fold protocol the mean and
    std over folds and the pooled clips' calibration error; per corpus left out its metrics."""
    summary: dict[str, dict] = {}
    for protocol, found in result["protocols"].items():
        if protocol == LEAVE_CORPUS_OUT:
            summary[protocol] = {f["fold"]: {key: f[key] for key in ("n", "accuracy", "macro_f1", *CALIBRATION)}
                                 for f in found["folds"]}
        else:
            summary[protocol] = {"folds": len(found["folds"]), "n": found["pooled"]["n"],
                                 **{f"{name}_{stat}": found[name][stat] for name in ("accuracy", "macro_f1")
                                    for stat in ("mean", "std")},
                                 **{key: found["pooled"][key] for key in CALIBRATION}}
    return {"cross_validation": summary}
