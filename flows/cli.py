"""The `emotion` command line: evaluate, predict, score, serve, explain, tune, app."""

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


@app.command()
def predict(
    file: Annotated[Path, typer.Argument(help="an image, audio file or video")],
    json_output: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    model_dir: Annotated[Path, typer.Option(help="folder with audio/, face/, video/ checkpoints")] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score one image, audio file or video and print the class probabilities."""
    from emotion_models.scoring.predict import CANNOT_SCORE, predict_file

    try:
        result = predict_file(file, load_params(params), model_dir)
    except CANNOT_SCORE as exc:
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


@app.command("app")
def web_app(
    scores: Annotated[list[Path] | None, typer.Option("--scores", help="a scored OUT folder (repeatable; "
                                                      "default: scoring.out)")] = None,
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8501,
    model_dir: Annotated[Path, typer.Option(help="folder with audio/, face/, video/ checkpoints")] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the review web app on http://127.0.0.1:PORT: /predict, /scores, /models (Ctrl-C stops it)."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    import flows.app
    from flows.app import ENV_MODELS, ENV_PARAMS, ENV_SCORES

    load_params(params)  # a broken params.yaml fails here, not in the browser
    main_script = Path(flows.app.__file__).with_name("main.py")
    package_root = str(main_script.parents[2])
    env = {**os.environ, ENV_PARAMS: str(params.resolve()), ENV_MODELS: str(model_dir.resolve()),
           ENV_SCORES: os.pathsep.join(str(folder.resolve()) for folder in scores or []),
           "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    console.print(f"emotion app: http://127.0.0.1:{port} (Ctrl-C stops it)")
    # streamlit's own script, not `python -m streamlit`: -m would put the working directory first on
    # sys.path, ahead of this package
    launcher = shutil.which("streamlit", path=str(Path(sys.executable).parent))
    command = [sys.executable, *([launcher] if launcher else ["-m", "streamlit"]), "run", str(main_script),
               "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--global.developmentMode", "false",
               "--client.toolbarMode", "viewer"]
    # a child, not exec: this process keeps filtering the native libraries' log lines out of its stderr
    server = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        code = server.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the server too; let it stop
        code = server.wait()
    raise typer.Exit(0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code)


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


def main() -> None:
    """Entry point: expected failures (missing models, changed features, bad params) print one clear line."""
    from emotion_models.params import ParamsError
    from emotion_models.scoring.score import ModelsUnavailable
    from tasks.evaluate import FeaturesChanged

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except (ParamsError, FeaturesChanged, ModelsUnavailable, FileNotFoundError, KeyError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
