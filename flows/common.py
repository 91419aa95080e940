"""Helpers shared by the flows: parameters, artifacts and the command-line entry of DVC stages."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from prefect.artifacts import create_markdown_artifact

from flows.native_logs import stage_arguments


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=artifact_key(key), markdown=markdown, description=description)


def run_stage(stages: dict[str, Callable[..., object]], models: Sequence[str] = ()) -> None:
    """Run the flow named on the command line, how dvc.yaml calls a stage: ``python -m flows.X STAGE``,
    or ``python -m flows.X STAGE MODEL`` when ``models`` are given; ``--verbose`` keeps native logs."""
    args = stage_arguments(sys.argv[1:])
    usage = f"{{{','.join(stages)}}}" + (f" {{{','.join(models)}}}" if models else "")
    if len(args) != 1 + bool(models) or args[0] not in stages or (models and args[1] not in models):
        sys.exit(f"usage: python -m {sys.argv[0]} {usage} [--verbose]")
    stages[args[0]](*args[1:])
