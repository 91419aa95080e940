"""Stage `download`: make every enabled dataset available and record where it is."""

from __future__ import annotations

import logging
from collections.abc import Callable

from emotion_models import atomic, paths
from emotion_models.data.download import DownloadError, UnsafeArchiveError
from emotion_models.data.sources import DatasetSource, DatasetUnavailable, fetch_dataset
from emotion_models.params import DataConfig, Params

log = logging.getLogger(__name__)
FETCH_ERRORS = (DatasetUnavailable, DownloadError, UnsafeArchiveError, FileNotFoundError)


def enabled_datasets(params: Params) -> list[str]:
    return [name for name, config in params.data.datasets.items() if config.enabled]


def sources_markdown(sources: list[DatasetSource], problems: dict[str, str]) -> str:
    """Where each enabled dataset came from, and what to do about the missing ones."""
    lines = ["# Datasets", "", "| dataset | origin | files | root |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {s.origin} | {s.n_files} | `{s.root}` |" for s in sources]
    lines += [f"| {name} | **unavailable** | 0 | {reason} |" for name, reason in problems.items()]
    corrupt = [path for s in sources for path in s.corrupt]
    if corrupt:
        lines += ["", "Files failing their published checksum (left out of the manifest):", ""]
        lines += [f"- `{path}`" for path in corrupt]
    return "\n".join(lines) + "\n"


def write_sources(sources: list[DatasetSource], problems: dict[str, str]) -> None:
    """data/raw/sources.json for the next stage and reports/data/sources.md for people."""
    atomic.write_json(paths.SOURCES, {
        "datasets": {s.name: s.to_dict() for s in sources},
        "unavailable": problems,
    })
    atomic.write_text(paths.report_dir("data") / "sources.md", sources_markdown(sources, problems))


def download_datasets(
    params: Params, fetch: Callable[[str, DataConfig], DatasetSource] = fetch_dataset
) -> tuple[list[DatasetSource], dict[str, str]]:
    """Fetch every enabled dataset; one failure does not stop the others.

    Writes ``data/raw/sources.json`` and returns the available sources and, per unavailable
    dataset, the reason and what to do about it.
    """
    sources, problems = [], {}
    for name in enabled_datasets(params):
        try:
            sources.append(fetch(name, params.data))
        except FETCH_ERRORS as exc:
            log.error("%s", exc)
            problems[name] = str(exc)
    write_sources(sources, problems)
    return sources, problems


