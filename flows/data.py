"""Data flows: download the enabled datasets, then harmonise them into one manifest."""

from __future__ import annotations

from prefect import flow, task

from emotion_models.data.download import DownloadError
from emotion_models.data.sources import fetch_dataset
from emotion_models.params import load_params
from flows.common import publish_markdown, run_stage


def _transient(task, task_run, state) -> bool:
    """Retry network failures only; a gated or missing dataset will not appear by retrying."""
    try:
        state.result()
    except DownloadError:
        return True
    except Exception:
        return False
    return False


fetch_task = task(fetch_dataset, name="fetch-dataset", retries=3, retry_delay_seconds=[10, 60, 300],
                  retry_condition_fn=_transient)


@flow(name="download", log_prints=True)
def download_flow(params_path: str | None = None) -> dict[str, str]:
    """Fetch every enabled dataset (local copy or verified download); fail listing what is missing."""
    from tasks.download import download_datasets, sources_markdown

    params = load_params(params_path)
    sources, problems = download_datasets(params, fetch=fetch_task)
    publish_markdown("datasets", sources_markdown(sources, problems), "Resolved dataset sources")
    if problems:
        raise RuntimeError("unavailable datasets:\n" + "\n".join(problems.values()))
    return {s.name: s.root for s in sources}


@flow(name="harmonise", log_prints=True)
def harmonise_flow(params_path: str | None = None) -> int:
    """Label, harmonise and split every clip into data/manifest.parquet."""
    from tasks.harmonise import harmonise

    manifest, rejects, summary = harmonise(load_params(params_path))
    publish_markdown("data-summary", summary, "Clips per dataset, class and split")
    print(f"manifest: {manifest.height} clips, {rejects.height} rejects")
    return manifest.height


if __name__ == "__main__":
    run_stage({"download": download_flow, "harmonise": harmonise_flow})
