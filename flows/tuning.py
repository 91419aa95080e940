"""The `tune` flow: a Hyperopt search whose trials are Prefect tasks on the configured task runner."""

from __future__ import annotations

from prefect import flow, task

from emotion_models.nets.registry import MODEL_NAMES
from emotion_models.params import load_params
from emotion_models.reports.markdown import tuning_markdown
from flows.common import publish_markdown, run_stage, task_runner_for
from tasks.tune import recorded_trials, run_trial, tune


@task(name="tune-trial", task_run_name="{model} trial {trial}")
def trial_task(model: str, params_path: str | None, trial: int, hyperparameters: dict) -> dict:
    return run_trial(model, load_params(params_path), trial, hyperparameters)


@flow(name="tune", flow_run_name="{model}-tune")
def tune_flow(model: str, params_path: str | None = None) -> dict:
    """Search the space in params.yaml (tune.space.<model>); resume from recorded trials."""
    params = load_params(params_path)

    def run_batch(batch: list[tuple[int, dict]]) -> list[dict]:
        futures = [trial_task.submit(model, params_path, trial, values) for trial, values in batch]
        return [future.result() for future in futures]

    best = tune(model, params, run_batch)
    publish_markdown(f"{model}-tuning", tuning_markdown(model, recorded_trials(model), best),
                     f"{model} hyperparameter search")
    return best


def run_tuning(model: str, params_path: str | None = None) -> dict:
    """Run the tune flow with the task runner configured in params.yaml (scoring.task_runner)."""
    runner = task_runner_for(load_params(params_path).scoring)
    return tune_flow.with_options(task_runner=runner)(model, params_path)


if __name__ == "__main__":
    run_stage({"tune": run_tuning}, MODEL_NAMES)
