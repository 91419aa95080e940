"""The `score` flow: score every new or changed video of some folders, on a schedule if served.

A run stats every file, reads and hashes only the files whose fingerprint changed since the last
scan (``emotion_models.scoring.fingerprints``), and submits one task per file that this model
version has not scored or rejected yet; the rest are counted in the run's summary. This module
imports no model code: torch, the models and Whisper load in the workers, on their first video."""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from prefect import flow, runtime, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.utilities.urls import url_for

from emotion_models import atomic
from emotion_models.files import display_path
from emotion_models.params import load_params
from emotion_models.reports.scores import batch_counts, fusion_note, outcome, render_batch_report, summary_markdown
from emotion_models.scoring.fingerprints import check_folders, scan_and_hash
from emotion_models.scoring.fusion import fusion_in_use
from emotion_models.scoring.model_identity import model_version
from emotion_models.scoring.outputs import check_writable, plan_batch, record_paths
from flows.common import artifact_key, publish_markdown, task_runner_for

LAST_BATCH = "last_batch.json"  # in OUT: the last batch that scored or rejected something
_PROGRESS = contextvars.ContextVar("score_progress", default=False)  # a progress bar (emotion score), not a parameter


def _task_run_name() -> str:
    return f"score {display_path(runtime.task_run.parameters['path'])}"


@task(name="score-video", task_run_name=_task_run_name)
def score_task(path: str, out: str, params_path: str | None, model_dir: str, digest: str | None = None) -> dict:
    """Score one file (or record why it cannot be); never raises for a bad file."""
    from emotion_models.scoring.score import score_file  # model code only where something is scored

    return score_file(Path(path), Path(out), load_params(params_path), Path(model_dir), digest)


def batch_key(out: Path) -> str:
    """The artifact key suffix of one output folder: its last two path parts and a short hash of the
    whole path, so every output folder (every deployment's) keeps its own artifact history."""
    digest = hashlib.sha256(os.fsencode(out)).hexdigest()[:8]
    return f"{artifact_key('-'.join(out.parts[-2:]))[:48]}-{digest}".strip("-")


@flow(name="score", log_prints=True)
def score_flow(folders: list[str], out: str, params_path: str | None = None, model_dir: str = "models") -> dict[str, int]:
    """Score the videos below ``folders`` into ``out`` (windows/, videos/, rejects/, paths/, report.html)."""
    params = load_params(params_path)
    out_path, models = Path(out).absolute(), Path(model_dir).absolute()
    # missing folders or models, or an unwritable output, fail the run: nothing could be scored
    check_folders(folders)
    version = model_version(models, params.video.fusion, out_path, params.scoring.runtime)
    check_writable(out_path)
    scan = scan_and_hash(folders, params.scoring.extensions, out_path)
    plan = plan_batch(scan, out_path, version)
    shown_folders = [display_path(f) for f in folders]
    print(f"{len(scan.files)} video files in {', '.join(shown_folders)}: {scan.hashed} new or changed (read and "
          f"hashed), {plan.done} already scored or rejected by models {version}, {len(plan.todo)} to score")
    results = []
    if plan.todo:
        futures = score_task.map([path for path, _ in plan.todo], out=unmapped(str(out_path)),
                                 params_path=unmapped(params_path), model_dir=unmapped(str(models)),
                                 digest=[digest for _, digest in plan.todo])
        results = sorted(_collect(futures, len(plan.todo)), key=lambda r: r["path"])
    now = dt.datetime.now(dt.timezone.utc)
    record_paths(out_path, [{"path": display_path(f.path), "content_hash": scan.digests[f.path]} for f in scan.files],
                 now)
    counts = batch_counts(results, unchanged=plan.done)
    key = batch_key(out_path)
    last = out_path / LAST_BATCH
    note = ""
    if counts["scored"] or counts["rejected"]:  # a batch with nothing new leaves the last report as it was
        choice, weights = fusion_in_use(models, params.video.fusion, params.scoring.runtime)
        note = fusion_note(choice["choice"], choice.get("reason", ""), weights)
        report = render_batch_report(out_path, results, note, unchanged=plan.done)
        create_table_artifact(key=f"score-videos-{key}",
                              description=f"Videos of the last scoring batch into {display_path(out_path)}",
                              table=[{"path": r["path"], "status": r["status"], "result": outcome(r)} for r in results])
        atomic.write_json(last, {"finished_at": now.isoformat(timespec="seconds"), "counts": counts,
                                 "flow_run_id": str(runtime.flow_run.id), "flow_run_url": _flow_run_url(),
                                 "report": str(report)})
    previous = json.loads(last.read_text()) if last.is_file() else None
    publish_markdown(f"score-summary-{key}",
                     summary_markdown(results, note, shown_folders, previous, unchanged=plan.done),
                     f"Scoring batch summary: {display_path(out_path)}")
    print(f"scored {counts['scored']}, skipped {counts['skipped']}, rejected {counts['rejected']}; "
          f"report: {display_path(out_path / 'report.html')}")
    return counts


def _flow_run_url() -> str | None:
    """The flow run's page in the Prefect UI (None without a UI, e.g. an ephemeral API)."""
    return url_for("flow-run", obj_id=runtime.flow_run.id)


def _collect(futures, total: int) -> list[dict]:
    if not _PROGRESS.get():
        return [future.result() for future in futures]
    from rich.progress import Progress

    results = []
    with Progress(transient=True) as progress:
        bar = progress.add_task("scoring videos", total=total)
        for future in as_completed(futures):
            results.append(future.result())
            progress.advance(bar)
    return results


def run_scoring(folders: list[str], out: str, params_path: str | None = None, model_dir: str = "models",
                show_progress: bool = False) -> dict[str, int]:
    """Run the score flow once with the task runner configured in params.yaml."""
    from flows.crashes import ensure_crash_detection

    runner = task_runner_for(load_params(params_path).scoring)
    ensure_crash_detection(score_flow.name)
    token = _PROGRESS.set(show_progress)
    try:
        return score_flow.with_options(task_runner=runner)(folders, out, params_path, model_dir)
    finally:
        _PROGRESS.reset(token)


def check_serving(folders: list[str], out: str, params_path: str | None, model_dir: str) -> None:
    """What a served deployment needs, checked once before serving: every input folder, the models
    (and the fusion choice), a writable output. Raises with a clear message naming the problem."""
    params = load_params(params_path)
    check_folders(folders)
    model_version(Path(model_dir), params.video.fusion, runtime=params.scoring.runtime)
    check_writable(Path(out))


def serve_scoring(folders: list[str], out: str, params_path: str | None = None, model_dir: str = "models",
                  cron: str | None = None, interval_minutes: float | None = None, timezone: str | None = None,
                  name: str = "score-folders") -> None:
    """Check, then serve a scheduled deployment of the score flow (blocks; runs appear in the Prefect
    UI). Cron schedules are UTC unless ``timezone`` (an IANA name) is given. Paths are made absolute,
    so the deployment's runs do not depend on the directory it was served from."""
    from prefect.schedules import Cron, Interval

    from flows.crashes import ensure_crash_detection

    folders = [str(Path(f).absolute()) for f in folders]
    out, model_dir = str(Path(out).absolute()), str(Path(model_dir).absolute())
    params_path = str(Path(params_path).absolute()) if params_path else None
    check_serving(folders, out, params_path, model_dir)
    params = load_params(params_path)
    ensure_crash_detection(score_flow.name)
    schedule = (Cron(cron, timezone=timezone) if cron else
                Interval(dt.timedelta(minutes=interval_minutes)) if interval_minutes else None)
    score_flow.with_options(task_runner=task_runner_for(params.scoring)).serve(
        name=name, parameters={"folders": folders, "out": out, "params_path": params_path, "model_dir": model_dir},
        schedules=[schedule] if schedule else None)
