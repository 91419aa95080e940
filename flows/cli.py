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
from flows.native_logs import silence_native_logs

app = typer.Typer(help="Speaker-independent emotion recognition from audio, faces and video.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
DEFAULT_DATASET = {"audio": "ravdess_audio", "face": "ck_plus", "video": "crema_d_video"}
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]


@app.callback()
def options(verbose: Annotated[bool, typer.Option("--verbose", help="keep native libraries' log lines")] = False) -> None:
    """Speaker-independent emotion recognition from audio, faces and video."""
    if not verbose:
        silence_native_logs()


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
    from emotion_models.nets.registry import get_spec
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
    from emotion_models.labels import CLASS_NAMES
    from emotion_models.nets.face import FaceSpec
    from emotion_models.params import FaceFeatureConfig
    from emotion_models.reports.gradcam import explain_image

    face_model, meta = FaceSpec().load(model)
    png, probabilities, _ = explain_image(face_model, FaceFeatureConfig(**meta["config"]["features"]), str(image))
    target = out or image.with_name(f"{image.stem}_gradcam.png")
    with atomic.atomic_path(target) as tmp:
        tmp.write_bytes(png)
    for name, probability in sorted(zip(CLASS_NAMES, probabilities), key=lambda item: -item[1]):
        console.print(f"{name:18s} {probability:.3f}")
    console.print(f"Grad-CAM written to {target}")


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac"}


def predict_file(path: Path, params_path: Path, model_dir: Path) -> dict:
    """Probabilities for one image (face model), audio file (audio model) or video (all three views)."""
    import torch

    from emotion_models.labels import CLASS_NAMES

    params = load_params(params_path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in AUDIO_SUFFIXES:
        from emotion_models.features.audio import clip_features
        from emotion_models.features.face import load_image, preprocessor_for
        from emotion_models.nets.audio import AudioSpec
        from emotion_models.nets.face import FaceSpec
        from emotion_models.params import AudioFeatureConfig, FaceFeatureConfig

        if suffix in IMAGE_SUFFIXES:
            model, meta = FaceSpec().load(model_dir / "face" / "model.pt")
            features = FaceFeatureConfig(**meta["config"]["features"])  # as the model was trained
            face = preprocessor_for(features).process(load_image(str(path)), str(path))
            batch = {"crop": torch.from_numpy(face.crop)[None], "landmarks": torch.from_numpy(face.landmarks)[None]}
            kind = "face"
        else:
            model, meta = AudioSpec().load(model_dir / "audio" / "model.pt")
            features = AudioFeatureConfig(**meta["config"]["features"])
            batch = {name: torch.from_numpy(array)[None] for name, array in clip_features(str(path), features).items()}
            kind = "audio"
        with torch.no_grad():
            probabilities = torch.softmax(model(batch), 1)[0].tolist()
        return {"path": str(path), "model": kind, "prediction": CLASS_NAMES[max(range(5), key=probabilities.__getitem__)],
                "probabilities": dict(zip(CLASS_NAMES, probabilities))}
    from emotion_models.scoring.fingerprints import content_hash
    from emotion_models.scoring.score import load_models, score_video

    windows, summary = score_video(path, params, load_models(model_dir), content_hash(path))
    return {"path": str(path), "model": "video", "prediction": summary["dominant_emotion"], "summary": summary,
            "windows": windows.to_dicts()}


@app.command()
def predict(
    file: Annotated[Path, typer.Argument(help="an image, audio file or video")],
    json_output: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    model_dir: Annotated[Path, typer.Option(help="folder with audio/, face/, video/ checkpoints")] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score one image, audio file or video and print the class probabilities."""
    from emotion_models.features.face import ImageReadError, NoFaceError
    from emotion_models.features.media import MediaError

    try:
        result = predict_file(file, params, model_dir)
    except (MediaError, NoFaceError, ImageReadError, FileNotFoundError) as exc:
        console.print(f"[red]cannot score[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if json_output:
        print(json.dumps(result, default=str))
        return
    console.print(f"{file}: [bold]{result['prediction']}[/bold] ({result['model']} model)")
    if "probabilities" in result:
        for name, value in result["probabilities"].items():
            console.print(f"  {name:18s} {value:.3f}")
    else:
        for window in result["windows"]:
            probabilities = {k.removeprefix("video_"): v for k, v in window.items() if k.startswith("video_")}
            best = max(probabilities, key=probabilities.get)
            console.print(f"  {window['start']:6.1f}-{window['end']:6.1f} s  {best:18s} {probabilities[best]:.3f}  "
                          f"\"{window['transcript']}\"")


@app.command()
def score(
    folders: Annotated[list[Path], typer.Argument(help="folders of videos (searched recursively)")],
    out: Annotated[Path, typer.Option(help="output folder: windows/, videos/, rejects/, report.html")],
    model_dir: Annotated[Path, typer.Option(help="folder with audio/, face/, video/ checkpoints")] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Run the score flow once: every new or changed video, exactly once per model version."""
    from flows.scoring import run_scoring

    counts = run_scoring([str(f) for f in folders], str(out), str(params), str(model_dir), show_progress=True)
    console.print(f"scored {counts['scored']}, skipped {counts['skipped']}, rejected {counts['rejected']}; "
                  f"report: {out / 'report.html'}")


@app.command()
def serve(
    folders: Annotated[list[Path] | None, typer.Argument(help="folders to score (default: scoring.folders)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: scoring.out)")] = None,
    cron: Annotated[str | None, typer.Option(help="cron schedule (default: scoring.schedule_cron)")] = None,
    interval_minutes: Annotated[float | None, typer.Option(help="interval (default: scoring.schedule_interval_minutes)")] = None,
    model_dir: Annotated[Path, typer.Option(help="folder with audio/, face/, video/ checkpoints")] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the scheduled `score-folders` deployment; watch its runs in the Prefect UI."""
    from flows.scoring import serve_scoring

    config = load_params(params).scoring
    chosen = [str(f) for f in folders] if folders else config.folders
    if not chosen:
        console.print("[red]no folders to score[/red]: pass them or set scoring.folders in params.yaml")
        raise typer.Exit(2)
    if not cron and interval_minutes is None:
        cron, interval_minutes = config.schedule_cron, config.schedule_interval_minutes
    serve_scoring(chosen, str(out or config.out), str(params), str(model_dir), cron, interval_minutes)


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help="audio, face or video")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Hyperparameter search (tune.* in params.yaml); writes models/MODEL/best_hyperparameters.json."""
    from flows.tuning import run_tuning

    best = run_tuning(model, str(params))
    console.print(f"best hyperparameters for {model}: {json.dumps(best)}")
    console.print(f"trials: models/{model}/tune/trials.parquet, report: reports/{model}/tune.html; "
                  f"retrain with `dvc repro {model}_train`")


def expected_failure(exc: Exception) -> bool:
    """Missing models, changed features, bad params...: failures a user can fix from one clear line.
    Imported only when something failed (tasks.evaluate pulls in torch, which `score` may not need)."""
    from emotion_models.params import ParamsError
    from emotion_models.scoring.fingerprints import ModelsUnavailable
    from tasks.evaluate import FeaturesChanged

    return isinstance(exc, (ParamsError, FeaturesChanged, ModelsUnavailable, FileNotFoundError, KeyError))


def main() -> None:
    """Entry point: expected failures print one clear line, anything else its traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except Exception as exc:
        if not expected_failure(exc):
            raise
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
