"""A real Prefect server on 127.0.0.1 in a temporary home: serve the scoring deployment, run it once,
and check through the Prefect API that the flow run completed and left its artifacts; kill a
served run half-way and check that it is marked Crashed and that the next run finishes its work."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.scoring import batch_key
from tests.conftest import CREMA_D_VIDEO

pytestmark = pytest.mark.slow  # runs on the CI-sized `dvc repro` (pipeline_project)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(check, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}; log:\n{log.read_text()[-3000:]}")


def served_deployment(log: Path):
    """The score-folders deployment, once `emotion serve` has registered it (the current API settings)."""
    def read():
        with get_client(sync_client=True) as client:
            try:
                return client.read_deployment_by_name("score/score-folders")
            except Exception:
                return None

    return wait_for(read, 120, "the score-folders deployment", log)


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_API_HOST": "127.0.0.1"}
    log = tmp_path / "server.log"
    prefect = str(Path(sys.executable).parent / "prefect")
    server = start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path, log)

    def healthy():
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 120, "the Prefect server", log)
        yield url, env
    finally:
        stop(server)


def test_served_deployment_runs_and_publishes_artifacts(prefect_server, pipeline_project, tmp_path):
    url, env = prefect_server
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(sorted(CREMA_D_VIDEO.glob("*.flv"))[0], inbox)
    log = tmp_path / "serve.log"
    emotion = str(Path(sys.executable).parent / "emotion")
    elsewhere = tmp_path / "elsewhere"  # served from another directory: paths come from --project
    elsewhere.mkdir()
    serving = start([emotion, "serve", str(inbox), "--out", str(tmp_path / "out"), "--interval-minutes", "600",
                     "--project", str(pipeline_project)], env, elsewhere, log)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            deployment = served_deployment(log)
            assert deployment.schedules  # served with its interval schedule
            assert set(deployment.parameters) == {"folders", "out", "params_path", "model_dir"}  # nothing internal
            assert deployment.parameters["model_dir"] == str(pipeline_project / "models")
            flow_run = run_deployment("score/score-folders", timeout=600)
            assert flow_run.state.is_completed(), f"{flow_run.state}\n{log.read_text()[-3000:]}"
            with get_client(sync_client=True) as client:
                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
            key = batch_key(tmp_path / "out")
            assert {f"score-summary-{key}", f"score-videos-{key}"} <= {a.key for a in artifacts}
        assert len(list((tmp_path / "out" / "videos").glob("*.parquet"))) == 1
    finally:
        stop(serving)


def test_a_run_that_dies_with_its_server_process_is_crashed_and_the_next_run_finishes(
        prefect_server, pipeline_project, tmp_path):
    """`emotion serve` and its running flow are killed (SIGKILL, as when the machine dies): the
    heartbeat automation marks the run Crashed; a new `emotion serve` run scores the rest, each
    video exactly once."""
    url, env = prefect_server
    env = {**env, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    clips = sorted(CREMA_D_VIDEO.glob("*.flv"))
    for number in range(12):  # distinct content: each copy carries its own metadata tag
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(clips[number % len(clips)]), "-c", "copy",
                        "-metadata", f"comment=copy {number}", str(inbox / f"clip{number:02d}.flv")], check=True)
    emotion = str(Path(sys.executable).parent / "emotion")
    command = [emotion, "serve", str(inbox), "--out", str(out), "--interval-minutes", "600", "--params", "params.yaml"]

    def scored() -> list[Path]:
        return sorted((out / "videos").glob("*.parquet")) if (out / "videos").is_dir() else []

    with temporary_settings(updates={PREFECT_API_URL: url}):
        def state(run_id):
            with get_client(sync_client=True) as client:
                return client.read_flow_run(run_id).state

        first_log = tmp_path / "serve-1.log"
        serving = start(command, env, pipeline_project, first_log)
        try:
            served_deployment(first_log)
            killed = run_deployment("score/score-folders", timeout=0)
            wait_for(lambda: scored(), 300, "the first scored video", first_log)
            os.killpg(serving.pid, signal.SIGKILL)
            serving.wait(30)
        finally:
            stop(serving)
        left = len(scored())
        assert 1 <= left < 12, "the run must die half-way"
        assert state(killed.id).is_running()
        crashed = wait_for(lambda: (s := state(killed.id)).is_crashed() and s, 200, "the Crashed state", first_log)
        assert "heartbeat" in crashed.message

        second_log = tmp_path / "serve-2.log"
        serving = start(command, env, pipeline_project, second_log)
        try:
            served_deployment(second_log)
            finished = run_deployment("score/score-folders", timeout=600)
            assert finished.state.is_completed(), f"{finished.state}\n{second_log.read_text()[-3000:]}"
        finally:
            stop(serving)
    summaries = [pl.read_parquet(path) for path in scored()]
    assert len(summaries) == 12 and len({s["content_hash"][0] for s in summaries}) == 12
    windows = pl.scan_parquet(out / "windows" / "*.parquet").collect()
    assert dict(windows.group_by("content_hash").agg(pl.len()).iter_rows()) == {
        s["content_hash"][0]: s["windows"][0] for s in summaries}  # no window written twice
    assert f"{12 - left} to score" in second_log.read_text()
