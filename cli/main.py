"""The `emotion` command line: evaluate, predict, score, serve, explain, tune, app."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emotion_models.contract import VIEW_TITLES
from emotion_models.errors import EmotionError
from emotion_models.labels import CLASS_NAMES, SLUGS
from emotion_models.native_logs import silence_native_logs
from emotion_models.params import load_params

app = typer.Typer(help="Speaker-independent emotion recognition from audio, faces and video.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
DEFAULT_DATASET = {"audio": "ravdess_audio", "face": "ck_plus", "video": "crema_d_video"}
ModelName = Literal["audio", "face", "video"]
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read")]


def dataset_help() -> str:
    """--dataset's help: every adapter by model, the default first, and the labelled-folder layouts."""
    from emotion_models.data.datasets import ADAPTERS

    names = {model: sorted((name for name, adapter in ADAPTERS.items() if adapter.modality == model),
                           key=lambda name: (name != default, name)) for model, default in DEFAULT_DATASET.items()}
    return ("adapter name, the first of each model its default: "
            + "; ".join(f"{model}: {', '.join(found)}" for model, found in names.items())
            + ". folders: your own audio in <label>/<file> or <speaker>/<label>/<file>, label names as in "
              "params.yaml data.folder_labels")


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


def fusion_table(fusion: dict) -> Table:
    """Late and learned fusion and each view alone on the same windows (``emotion evaluate video``)."""
    table = Table(title=f"fusion on the same windows (scoring uses {fusion['used_by_scoring']}: {fusion['reason']})")
    for column in ("variant", "windows", "accuracy", "macro-F1", "coverage"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, row in fusion["variants"].items():
        table.add_row(name, str(row["n"]), f"{row['accuracy']:.3f}", f"{row['macro_f1']:.3f}", f"{row['coverage']:.2f}")
    return table


@app.command()
def evaluate(
    model: Annotated[ModelName, typer.Argument(help="audio, face or video")],
    data_root: Annotated[Path, typer.Option(help="a dataset copy in its original layout")],
    out: Annotated[Path, typer.Option(help="metrics JSON to write")],
    dataset: Annotated[str | None, typer.Option(help=dataset_help())] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Evaluate the trained MODEL on every clip of a dataset copy (e.g. speakers it never saw)."""
    from emotion_models.data.datasets import ADAPTERS
    from emotion_models.nets.registry import get_spec
    from tasks.evaluate import evaluate_external

    name = dataset or DEFAULT_DATASET[model]
    if name not in ADAPTERS:
        raise typer.BadParameter(f"unknown dataset '{name}'; known: {', '.join(sorted(ADAPTERS))}",
                                 param_hint="--dataset")
    spec = get_spec(model)
    progress, callback = progress_bar(f"featurising {name}")
    with progress:
        metrics = evaluate_external(spec, load_params(params), data_root, name, out, callback)
    console.print(metrics_table(f"{model} on {name}", metrics))
    if "fusion" in metrics:
        console.print(fusion_table(metrics["fusion"]))
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
    from emotion_models.nets.face import FaceSpec
    from emotion_models.reports.gradcam import explain_image

    face_model, meta = FaceSpec().load(model)
    png, probabilities, _ = explain_image(face_model, meta, str(image))
    target = out or image.with_name(f"{image.stem}_gradcam.png")
    with atomic.atomic_path(target) as tmp:
        tmp.write_bytes(png)
    for name, probability in sorted(zip(CLASS_NAMES, probabilities), key=lambda item: -item[1]):
        console.print(f"{name:18s} {probability:.3f}")
    console.print(f"Grad-CAM written to {target}")


def _best(window: dict, view: str) -> str:
    values = [window[f"{view}_{slug}"] for slug in SLUGS]
    if values[0] is None:
        return "no person" if view == "fused" else "-"
    best = max(range(len(values)), key=values.__getitem__)
    return f"{CLASS_NAMES[best]} {values[best]:.2f}"


def print_video_prediction(result: dict) -> None:
    """The fused estimate of a video and, per window, every view's most probable class."""
    summary, fusion = result["summary"], result["fusion"]
    how = ("learned fusion" if fusion["method"] == "learned" else
           "late fusion, weights " + ", ".join(f"{v} {w:.2f}" for v, w in fusion["weights"].items()))
    if summary["dominant_emotion"] is None:
        console.print(f"{result['path']}: [bold]no person[/bold] (no face and no speech in any window: no emotion)",
                      soft_wrap=True)
    else:
        console.print(f"{result['path']}: [bold]{summary['dominant_emotion']}[/bold] (fused estimate: {how}; "
                      f"mean confidence {summary['mean_confidence']:.2f})", soft_wrap=True)
        console.print("  mean probability: " + " · ".join(
            f"{name} {summary[f'mean_probability_{slug}']:.2f}" for slug, name in zip(SLUGS, CLASS_NAMES)))
    table = Table(box=None, padding=(0, 1))
    for column in ("seconds", *VIEW_TITLES, "transcript"):  # the views by their column prefix
        table.add_column(column)
    for window in result["windows"]:
        table.add_row(f"{window['start']:.1f}-{window['end']:.1f}", *(_best(window, view) for view in VIEW_TITLES),
                      window["transcript"])
    console.print(table)


MODELS_HELP = "the trained models (dvc repro): audio/, face/, video/ checkpoints and the scoring/ ONNX graphs"


@app.command()
def predict(
    file: Annotated[Path, typer.Argument(help="an image, audio file or video")],
    json_output: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    model_dir: Annotated[Path, typer.Option(help=MODELS_HELP)] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score one image, audio file or video and print the class probabilities."""
    from emotion_models.predict.interactive import CANNOT_SCORE, predict_file

    try:
        result = predict_file(file, load_params(params), model_dir)
    except CANNOT_SCORE as exc:
        console.print(f"[red]cannot score[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if json_output:
        print(json.dumps(result, default=str))
        return
    if result["model"] == "video":
        print_video_prediction(result)
        return
    console.print(f"{file}: [bold]{result['prediction']}[/bold] ({result['model']} model)", soft_wrap=True)
    for name, value in result["probabilities"].items():
        console.print(f"  {name:18s} {value:.3f}")


ProjectOption = Annotated[Path, typer.Option(
    "--project", help="project folder: params.yaml, models/ and scoring.* paths are read from it (default: here)")]
ProjectModels = Annotated[Path | None, typer.Option(
    help=f"{MODELS_HELP} (default: PROJECT/models)")]
ProjectParams = Annotated[Path | None, typer.Option("--params", help="params.yaml to read (default: PROJECT/params.yaml)")]


def project_paths(project: Path, params: Path | None, model_dir: Path | None) -> tuple[Path, Path]:
    """params.yaml and the models folder: as given (relative to here), else inside ``project``."""
    project = project.absolute()
    return (params or project / "params.yaml").absolute(), (model_dir or project / "models").absolute()


@app.command()
def score(
    folders: Annotated[list[Path], typer.Argument(help="folders of videos (searched recursively)")],
    out: Annotated[Path, typer.Option(help="output folder: windows/, videos/, rejects/, paths/, report.html")],
    project: ProjectOption = Path("."),
    model_dir: ProjectModels = None,
    params: ProjectParams = None,
) -> None:
    """Run the score flow once: every new or changed video, exactly once per model version."""
    from flows.scoring import run_scoring

    params_path, models = project_paths(project, params, model_dir)
    counts = run_scoring([str(f.absolute()) for f in folders], str(out.absolute()), str(params_path), str(models),
                         show_progress=True)
    console.print(f"scored {counts['scored']}, skipped {counts['skipped']}, rejected {counts['rejected']}; "
                  f"report: {out / 'report.html'}")


@app.command()
def serve(
    folders: Annotated[list[Path] | None, typer.Argument(
        help="folders to score (default: scoring.folders, relative to PROJECT)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: scoring.out, relative to PROJECT)")] = None,
    cron: Annotated[str | None, typer.Option(
        help="cron schedule, UTC unless --timezone (default: scoring.schedule_cron)")] = None,
    timezone: Annotated[str | None, typer.Option(
        help="IANA time zone of the cron schedule, e.g. Europe/Berlin (default: scoring.schedule_timezone, else UTC)")] = None,
    interval_minutes: Annotated[float | None, typer.Option(
        help="interval (default: scoring.schedule_interval_minutes)")] = None,
    project: ProjectOption = Path("."),
    model_dir: ProjectModels = None,
    params: ProjectParams = None,
) -> None:
    """Check the folders, models and output, then serve the scheduled `score-folders` deployment
    (watch its runs in the Prefect UI; Ctrl+C stops serving and pauses the schedule)."""
    from flows.scoring import serve_scoring

    params_path, models = project_paths(project, params, model_dir)
    config = load_params(params_path).scoring
    root = project.absolute()
    chosen = [str(f.absolute()) for f in folders] if folders else [str(root / f) for f in config.folders]
    if not chosen:
        console.print("[red]no folders to score[/red]: pass them or set scoring.folders in params.yaml")
        raise typer.Exit(2)
    if not cron and interval_minutes is None:
        cron, interval_minutes = config.schedule_cron, config.schedule_interval_minutes
    target = out.absolute() if out else root / config.out
    serve_scoring(chosen, str(target), str(params_path), str(models), cron, interval_minutes,
                  timezone or config.schedule_timezone)


@app.command("app")
def web_app(
    scores: Annotated[list[Path] | None, typer.Option("--scores", help="a scored OUT folder (repeatable; "
                                                      "default: scoring.out)")] = None,
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8501,
    model_dir: Annotated[Path, typer.Option(help=MODELS_HELP)] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the review web app on http://127.0.0.1:PORT: /predict, /scores, /models (Ctrl-C stops it)."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    import app as review_app
    from app import ENV_MODELS, ENV_PARAMS, ENV_SCORES

    load_params(params)  # a broken params.yaml fails here, not in the browser
    main_script = Path(review_app.__file__).with_name("main.py")
    package_root = str(main_script.parents[1])
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
    model: Annotated[ModelName, typer.Argument(help="audio, face or video")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Hyperparameter search (tune.* in params.yaml); writes models/MODEL/best_hyperparameters.json."""
    from flows.tuning import run_tuning

    best = run_tuning(model, str(params))
    console.print(f"best hyperparameters for {model}: {json.dumps(best)}")
    console.print(f"trials: models/{model}/tune/trials.parquet, report: reports/{model}/tune.html; "
                  f"retrain with `dvc repro {model}_train`")


def main() -> None:
    """Entry point: expected failures (EmotionError) print one clear line, anything else its traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except EmotionError as exc:  # missing models or inputs, bad params.yaml...: one line a user can act on
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
