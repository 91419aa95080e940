"""Helpers shared by the flows: parameters, artifacts and the command-line entry of DVC stages."""

from __future__ import annotations

import sys
from collections.abc import Callable

from prefect.artifacts import create_markdown_artifact


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=artifact_key(key), markdown=markdown, description=description)


def run_stage(stages: dict[str, Callable[[], object]]) -> None:
    """Run the flow named by ``sys.argv[1]``: how dvc.yaml calls a stage (``python -m flows.X NAME``)."""
    if len(sys.argv) != 2 or sys.argv[1] not in stages:
        sys.exit(f"usage: python -m {sys.argv[0]} {{{','.join(stages)}}}")
    stages[sys.argv[1]]()
