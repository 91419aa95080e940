"""The `score` flow: score every new or changed video of some folders, on a schedule if served.

A run stats every file, reads and hashes only the files whose fingerprint changed since the last
scan (``emotion_models.scoring.fingerprints``), and submits one task per file that this model
version has not scored or rejected yet; the rest are counted in the run's summary. This module
imports no model code: torch, the models and Whisper load in the workers, on their first video."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from emotion_models.params import ScoringConfig, load_params
from emotion_models.reports.scores import render_batch_report, summary_markdown
from emotion_models.scoring.fingerprints import model_version, scan_and_hash
from emotion_models.scoring.outputs import check_writable, plan_batch
from flows.common import publish_markdown


@task(name="score-video", task_run_name="score {path}")
def score_task(path: str, out: str, params_path: str | None, model_dir: str, digest: str | None = None) -> dict:
    """Score one file (or record why it cannot be); never raises for a bad file."""
    from emotion_models.scoring.score import score_file  # model code only where something is scored

    return score_file(Path(path), Path(out), load_params(params_path), Path(model_dir), digest)


def task_runner_for(config: ScoringConfig):
    """Threads on this machine, or Dask: a given scheduler address, else a LocalCluster."""
    if config.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": config.dask_workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=config.thread_workers)


@flow(name="score", log_prints=True)
def score_flow(folders: list[str], out: str, params_path: str | None = None, model_dir: str = "models",
               show_progress: bool = False) -> dict[str, int]:
    """Score the videos below ``folders`` into ``out`` (windows/, videos/, rejects/, report.html)."""
    params = load_params(params_path)
    out_path, models = Path(out).resolve(), Path(model_dir).resolve()
    version = model_version(models, out_path)  # missing models or an unwritable output fail the run
    check_writable(out_path)
    scan = scan_and_hash(folders, params.scoring.extensions, out_path)
    plan = plan_batch(scan, out_path, version)
    print(f"{len(scan.files)} video files in {', '.join(folders)}: {scan.hashed} new or changed (read and "
          f"hashed), {plan.done} already scored or rejected by models {version}, {len(plan.todo)} to score")
    results = []
    if plan.todo:
        futures = score_task.map([path for path, _ in plan.todo], out=unmapped(str(out_path)),
                                 params_path=unmapped(params_path), model_dir=unmapped(str(models)),
                                 digest=[digest for _, digest in plan.todo])
        results = sorted(_collect(futures, len(plan.todo), show_progress), key=lambda r: r["path"])
    counts = {status: sum(r["status"] == status for r in results) for status in ("scored", "skipped", "rejected")}
    counts["skipped"] += plan.done
    if counts["scored"] or counts["rejected"]:  # a batch with nothing new leaves the last report as it was
        render_batch_report(out_path, results, unchanged=plan.done)
        create_table_artifact(key="score-videos", description="Videos of the last scoring batch",
                              table=[{k: r.get(k, "") for k in ("path", "status", "dominant_emotion", "reason")}
                                     for r in results if r["status"] != "skipped"])
    publish_markdown("score-summary", summary_markdown(results, unchanged=plan.done), "Scoring batch summary")
    print(f"scored {counts['scored']}, skipped {counts['skipped']}, rejected {counts['rejected']}; "
          f"report: {out_path / 'report.html'}")
    return counts


def _collect(futures, total: int, show_progress: bool) -> list[dict]:
    if not show_progress:
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
    return score_flow.with_options(task_runner=runner)(folders, out, params_path, model_dir, show_progress)


def serve_scoring(folders: list[str], out: str, params_path: str | None = None, model_dir: str = "models",
                  cron: str | None = None, interval_minutes: float | None = None, name: str = "score-folders") -> None:
    """Serve a scheduled deployment of the score flow (blocks; runs appear in the Prefect UI)."""
    from flows.crashes import ensure_crash_detection

    params = load_params(params_path)
    ensure_crash_detection(score_flow.name)
    schedule = {"cron": cron} if cron else {"interval": interval_minutes * 60} if interval_minutes else {}
    score_flow.with_options(task_runner=task_runner_for(params.scoring)).serve(
        name=name, parameters={"folders": folders, "out": str(Path(out).resolve()), "params_path": params_path,
                               "model_dir": str(Path(model_dir).resolve())}, **schedule)
