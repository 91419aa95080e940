"""Helpers shared by the flows: artifacts, the task runner and the command line of DVC stages."""

from collections.abc import Callable, Sequence
from typing import Annotated, Literal

import typer
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from emotion_models.native_logs import silence_native_logs
from emotion_models.params import ScoringConfig


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=artifact_key(key), markdown=markdown, description=description)


def task_runner_for(config: ScoringConfig) -> TaskRunner:
    """Threads on this machine, or Dask: a given scheduler address, else a LocalCluster."""
    if config.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": config.dask_workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=config.thread_workers)


VerboseOption = Annotated[bool, typer.Option("--verbose", help="keep native libraries' log lines")]


def stage_app(stages: dict[str, Callable[..., object]], models: Sequence[str] = ()) -> typer.Typer:
    """The command line dvc.yaml calls a stage with: ``python -m flows.X STAGE``, or
    ``python -m flows.X STAGE MODEL`` when ``models`` are given; ``--verbose`` keeps native logs."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    Stage = Literal[tuple(stages)]  # noqa: N806 (a type)

    if models:
        @app.command()
        def run(stage: Annotated[Stage, typer.Argument(help="the stage to run")],
                model: Annotated[Literal[tuple(models)], typer.Argument(help="the model")],
                verbose: VerboseOption = False) -> None:
            """Run one stage's flow for one model."""
            if not verbose:
                silence_native_logs()
            stages[stage](model)
    else:
        @app.command()
        def run(stage: Annotated[Stage, typer.Argument(help="the stage to run")],
                verbose: VerboseOption = False) -> None:
            """Run one stage's flow."""
            if not verbose:
                silence_native_logs()
            stages[stage]()
    return app


def run_stage(stages: dict[str, Callable[..., object]], models: Sequence[str] = ()) -> None:
    """Run the stage named on the command line (:func:`stage_app`)."""
    stage_app(stages, models)()
