"""Batch scoring of real CREMA-D clips mixed with the bad files users' folders contain."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml
from prefect.task_runners import ThreadPoolTaskRunner

from emotion_models.features.media import decode_audio
from emotion_models.params import ScoringConfig
from flows.scoring import run_scoring, task_runner_for
from tests.conftest import CK_PLUS, CREMA_D_VIDEO
from tests.media_factory import tone, write_video


def face_frames(n: int, size: tuple[int, int], face_side: int) -> list[np.ndarray]:
    face = cv2.cvtColor(cv2.imread(str(CK_PLUS / "happy" / "S010_006_00000013.png")), cv2.COLOR_BGR2RGB)
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    frame[100:100 + face_side, 200:200 + face_side] = cv2.resize(face, (face_side, face_side))
    return [frame] * n


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory, pipeline_project) -> Path:
    folder = tmp_path_factory.mktemp("inbox")
    clips = sorted(CREMA_D_VIDEO.glob("*.flv"))
    for clip in clips[1:]:
        shutil.copy(clip, folder / clip.name)
    nested = folder / "sub folder" / "crème brûlée"
    nested.mkdir(parents=True)
    shutil.copy(clips[0], nested / "Angry clip ü 1.flv")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("this is a text file, not a video")
    (folder / "truncated.flv").write_bytes(clips[1].read_bytes()[:20000])
    speech = decode_audio(clips[2], 16000)
    write_video(folder / "audio only.mp4", [], audio=speech)
    write_video(folder / "no face no audio.mp4", [np.full((120, 160, 3), 128, np.uint8)] * 50)
    write_video(folder / "short.mp4", face_frames(25, (640, 480), 200), audio=tone(1.0, 16000))
    write_video(folder / "huge.mp4", face_frames(50, (2560, 1440), 700), audio=speech[:32000])
    (folder / "readme.txt").write_text("not a video extension: ignored")
    return folder


@pytest.fixture(scope="module")
def scored(video_folder, pipeline_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores")
    params = str(pipeline_project / "params.yaml")
    first = run_scoring([str(video_folder)], str(out), params, str(pipeline_project / "models"))
    return out, first


def test_every_good_clip_has_windows_and_a_summary(scored, video_folder):
    out, counts = scored
    videos = pl.scan_parquet(out / "videos" / "**" / "*.parquet").collect()
    windows = pl.scan_parquet(out / "windows" / "**" / "*.parquet").collect()
    good = {"Angry clip ü 1.flv", *(p.name for p in sorted(CREMA_D_VIDEO.glob("*.flv"))[1:]),
            "audio only.mp4", "huge.mp4"}
    assert {Path(p).name for p in videos["path"]} == good
    assert counts["scored"] == len(good) == videos.height
    assert set(videos["dominant_emotion"]) <= {"Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"}
    for column in ("path", "content_hash", "model_version", "dominant_emotion", "mean_confidence"):
        assert videos[column].null_count() == 0
    assert set(windows["path"]) == set(videos["path"])
    probabilities = windows.select(pl.sum_horizontal([c for c in windows.columns if c.startswith("video_")]))
    assert np.allclose(probabilities.to_series().to_numpy(), 1.0, atol=1e-4)
    audio_only = videos.filter(pl.col("path").str.ends_with("audio only.mp4")).to_dicts()[0]
    assert audio_only["windows_no_face"] == audio_only["windows"] >= 1
    crema = windows.filter(pl.col("path").str.ends_with(".flv"))
    assert crema["transcript"].str.contains("(?i)forget").all() and crema["has_face"].all()
    huge = windows.filter(pl.col("path").str.ends_with("huge.mp4"))
    assert huge["has_face"].all() and huge["face_happy"].null_count() == 0
    assert (out / "report.html").read_text().count("<svg") == len(good)


def test_every_bad_file_is_a_reject_with_a_reason(scored):
    out, counts = scored
    rejects = pl.scan_parquet(out / "rejects" / "**" / "*.parquet").collect()
    reasons = {Path(p).name: r for p, r in zip(rejects["path"], rejects["reason"])}
    assert set(reasons) == {"empty.mp4", "notes.mp4", "truncated.flv", "no face no audio.mp4", "short.mp4"}
    assert counts["rejected"] == 5
    assert "empty file (0 bytes)" in reasons["empty.mp4"]
    assert "not a readable media file" in reasons["notes.mp4"]
    assert "no audio track and no face" in reasons["no face no audio.mp4"]
    assert "shorter than 1.5 s" in reasons["short.mp4"]
    assert all(Path(p).is_absolute() for p in rejects["path"])


def test_second_run_scores_nothing_new(scored, video_folder, pipeline_project):
    out, first = scored
    before = sorted(p.name for p in out.rglob("*.parquet"))
    again = run_scoring([str(video_folder)], str(out), str(pipeline_project / "params.yaml"),
                        str(pipeline_project / "models"))
    assert again == {"scored": 0, "skipped": first["scored"] + first["rejected"], "rejected": 0}
    assert sorted(p.name for p in out.rglob("*.parquet")) == before
    assert not list(out.rglob("*.tmp"))


def test_dask_local_cluster_with_two_workers(video_folder, pipeline_project, tmp_path):
    raw = yaml.safe_load((pipeline_project / "params.yaml").read_text())
    raw["scoring"].update(task_runner="dask", dask_workers=2)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for clip in sorted(CREMA_D_VIDEO.glob("*.flv"))[:2]:
        shutil.copy(clip, inbox / clip.name)
    counts = run_scoring([str(inbox)], str(tmp_path / "out"), str(params), str(pipeline_project / "models"))
    assert counts == {"scored": 2, "skipped": 0, "rejected": 0}
    assert pl.scan_parquet(tmp_path / "out" / "videos" / "**" / "*.parquet").collect().height == 2


def test_thread_runner_scores_as_many_videos_at_once_as_params_say():
    runner = task_runner_for(ScoringConfig(thread_workers=5))
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 5
    with pytest.raises(ValueError, match="thread_workers"):
        ScoringConfig(thread_workers=0)
