"""The `emotion` command line: evaluate, predict, score, serve, explain, tune."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emotion_models.params import load_params

app = typer.Typer(help="Speaker-independent emotion recognition from audio, faces and video.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
DEFAULT_DATASET = {"audio": "ravdess_audio", "face": "ck_plus", "video": "crema_d_video"}
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]


def progress_bar(description: str):
    """A rich progress bar and a ``callback(done, total)`` that advances it."""
    progress = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    task = progress.add_task(description, total=None)

    def callback(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, callback


def metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=f"{title}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, n={metrics['n']}")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    return table


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="audio, face or video")],
    data_root: Annotated[Path, typer.Option(help="a dataset copy in its original layout")],
    out: Annotated[Path, typer.Option(help="metrics JSON to write")],
    dataset: Annotated[str | None, typer.Option(help="adapter name (default: ravdess_audio, ck_plus, crema_d_video)")] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Evaluate the trained MODEL on every clip of a dataset copy (e.g. speakers it never saw)."""
    from emotion_models.specs import get_spec
    from tasks.evaluate import evaluate_external

    spec = get_spec(model)
    name = dataset or DEFAULT_DATASET[model]
    progress, callback = progress_bar(f"featurising {name}")
    with progress:
        metrics = evaluate_external(spec, load_params(params), data_root, name, out, callback)
    console.print(metrics_table(f"{model} on {name}", metrics))
    if metrics["rejects"]:
        console.print(f"{len(metrics['rejects'])} files rejected (see {out})")
    console.print(f"metrics written to {out}")


@app.command()
def explain(
    image: Annotated[Path, typer.Argument(help="an image with a face")],
    out: Annotated[Path | None, typer.Option(help="PNG to write (default: IMAGE_gradcam.png beside it)")] = None,
    model: Annotated[Path, typer.Option(help="face model checkpoint")] = Path("models/face/model.pt"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Grad-CAM of the face model: a PNG with the heat map over the face and the class probabilities."""
    from emotion_models import atomic
    from emotion_models.face import FaceSpec
    from emotion_models.gradcam import explain_image
    from emotion_models.labels import CLASS_NAMES
    from emotion_models.params import FaceFeatureConfig

    face_model, meta = FaceSpec().load(model)
    png, probabilities, _ = explain_image(face_model, FaceFeatureConfig(**meta["config"]["features"]), str(image))
    target = out or image.with_name(f"{image.stem}_gradcam.png")
    with atomic.atomic_path(target) as tmp:
        tmp.write_bytes(png)
    for name, probability in sorted(zip(CLASS_NAMES, probabilities), key=lambda item: -item[1]):
        console.print(f"{name:18s} {probability:.3f}")
    console.print(f"Grad-CAM written to {target}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
