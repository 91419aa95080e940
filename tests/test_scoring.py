"""Batch scoring of real CREMA-D clips mixed with the odd and bad files users' folders contain."""

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml
from prefect import task

from emotion_models.contract import PATH_SCHEMA, REJECT_SCHEMA, VIDEO_SCHEMA, WINDOW_SCHEMA, WINDOW_VIEWS
from emotion_models.features.media import decode_audio
from emotion_models.labels import SLUGS
from emotion_models.params import ScoringConfig
from emotion_models.scoring.fingerprints import scan_videos
from flows.common import task_runner_for
from flows.scoring import batch_key, run_scoring
from tests.conftest import CK_PLUS, CREMA_D_VIDEO
from tests.media_factory import tone, write_video


def face_frames(n: int, size: tuple[int, int], face_side: int) -> list[np.ndarray]:
    face = cv2.cvtColor(cv2.imread(str(CK_PLUS / "happy" / "S010_006_00000013.png")), cv2.COLOR_BGR2RGB)
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    frame[100:100 + face_side, 200:200 + face_side] = cv2.resize(face, (face_side, face_side))
    return [frame] * n


def tone_over_test_pattern(path: Path, seconds: float = 6.0) -> Path:
    """ffmpeg's colour-bar test pattern with a 440 Hz tone: no face, no speech, so no person."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


NON_UTF8 = os.fsdecode(b"copy \xff\xfe of angry.flv")  # a name Linux allows and UTF-8 does not


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
    write_video(folder / "video only.mp4", face_frames(100, (640, 480), 200))
    tone_over_test_pattern(folder / "tone over test pattern.mp4")
    write_video(folder / "no face no audio.mp4", [np.full((120, 160, 3), 128, np.uint8)] * 50)
    write_video(folder / "short.mp4", face_frames(25, (640, 480), 200), audio=tone(1.0, 16000))
    write_video(folder / "huge.mp4", face_frames(50, (2560, 1440), 700), audio=speech[:32000])
    shutil.copy(clips[0], folder / NON_UTF8)  # the same content as the nested clip, under an odd name
    shutil.copy(clips[1], folder / "duplicate.flv")
    (folder / "dangling.mp4").symlink_to("/nonexistent/video.mp4")
    (folder / "link to a clip.flv").symlink_to(folder / clips[3].name)
    (folder / "x.mp4").mkdir()  # a folder with a video's name is searched, not scored
    (folder / "readme.txt").write_text("not a video extension: ignored")
    return folder


CONTENTS = 10  # the 6 CREMA-D clips, audio only, video only, huge and the test pattern
ODD = "copy \\xff\\xfe of angry.flv"  # NON_UTF8 as the outputs show it: the bytes that are not UTF-8 escaped
GOOD = {"Angry clip ü 1.flv", *(p.name for p in sorted(CREMA_D_VIDEO.glob("*.flv"))[1:]), "audio only.mp4",
        "video only.mp4", "huge.mp4", "tone over test pattern.mp4", ODD, "duplicate.flv", "link to a clip.flv"}
FILES = 19
UMASK = 0o007


@pytest.fixture(scope="module")
def scored(video_folder, pipeline_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores")
    params = str(pipeline_project / "params.yaml")
    previous = os.umask(UMASK)
    try:
        first = run_scoring([str(video_folder)], str(out), params, str(pipeline_project / "models"))
    finally:
        os.umask(previous)
    return out, first


@pytest.mark.slow
def test_every_good_clip_has_windows_and_a_summary(scored, video_folder):
    out, counts = scored
    videos = pl.scan_parquet(out / "videos" / "**" / "*.parquet").collect()
    windows = pl.scan_parquet(out / "windows" / "**" / "*.parquet").collect()
    assert {Path(p).name for p in videos["path"]} <= GOOD  # one row per content, under one of its paths
    assert videos.height == videos["content_hash"].n_unique() == CONTENTS
    assert counts["scored"] + counts["skipped"] == len(GOOD) and counts["rejected"] == 6
    people = videos.filter(~pl.col("path").str.ends_with("test pattern.mp4"))
    assert set(people["dominant_emotion"]) <= {"Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust"}
    for column in ("path", "content_hash", "model_version", "dominant_emotion", "mean_confidence", "share_happy",
                   "mean_probability_happy"):
        assert people[column].null_count() == 0
    assert set(videos["fusion"]) == {"late"}  # the shared clips cannot validate the learned fusion
    assert set(windows["path"]) == set(videos["path"])
    person = windows.filter(pl.col("fused_happy").is_not_null())
    for view in ("fused", "video"):
        sums = person.select(pl.sum_horizontal([f"{view}_{s}" for s in SLUGS])).to_series().to_numpy()
        assert np.allclose(sums, 1.0, atol=1e-4)
    means = people.select(pl.sum_horizontal([f"mean_probability_{s}" for s in SLUGS])).to_series().to_numpy()
    shares = people.select(pl.sum_horizontal([f"share_{s}" for s in SLUGS])).to_series().to_numpy()
    assert np.allclose(means, 1.0, atol=1e-4) and np.allclose(shares, 1.0, atol=1e-6)
    audio_only = videos.filter(pl.col("path").str.ends_with("audio only.mp4")).to_dicts()[0]
    assert audio_only["windows_no_face"] == audio_only["windows"] >= 1 and audio_only["windows_no_person"] == 0
    video_only = windows.filter(pl.col("path").str.ends_with("video only.mp4"))
    assert video_only["audio_happy"].null_count() == video_only.height and video_only["face_happy"].null_count() == 0
    assert np.allclose(video_only["fused_happy"].to_numpy(), video_only["face_happy"].to_numpy())  # the one view
    crema = windows.filter(pl.col("path").str.ends_with(".flv"))
    assert crema["transcript"].str.contains("(?i)forget").all() and crema["has_face"].all()
    assert crema["audio_happy"].null_count() == 0 and crema["face_happy"].null_count() == 0
    huge = windows.filter(pl.col("path").str.ends_with("huge.mp4"))
    assert huge["has_face"].all() and huge["face_happy"].null_count() == 0
    assert (out / "report.html").read_text().count("<svg") == CONTENTS


@pytest.mark.slow
def test_no_person_no_emotion(scored):
    out, _ = scored
    videos = pl.scan_parquet(out / "videos" / "*.parquet").collect()
    pattern = videos.filter(pl.col("path").str.ends_with("tone over test pattern.mp4")).to_dicts()[0]
    assert pattern["dominant_emotion"] is None and pattern["mean_confidence"] is None
    assert pattern["windows_no_person"] == pattern["windows"] == 2 and pattern["share_happy"] is None
    windows = pl.scan_parquet(out / "windows" / "*.parquet").filter(
        pl.col("path").str.ends_with("tone over test pattern.mp4")).collect()
    assert not windows["has_face"].any() and not windows["has_speech"].any() and windows["has_audio"].all()
    probabilities = [f"{view}_{slug}" for view in WINDOW_VIEWS for slug in SLUGS]
    assert windows.select(probabilities).null_count().row(0) == (windows.height,) * len(probabilities)
    html = (out / "report.html").read_text()
    assert "No person in any window (no face, no speech): no emotion." in html


@pytest.mark.slow
def test_a_mixed_batch_reads_as_one_table_with_polars_and_duckdb(scored):
    import duckdb

    out, _ = scored
    for folder, schema in (("windows", WINDOW_SCHEMA), ("videos", VIDEO_SCHEMA), ("rejects", REJECT_SCHEMA),
                           ("paths", PATH_SCHEMA)):
        files = sorted((out / folder).glob("*.parquet"))
        assert files and all(pl.read_parquet_schema(f) == dict(schema) for f in files), folder  # never Null
        assert pl.scan_parquet(out / folder / "*.parquet").collect().schema == schema
    glob = str(out / "windows" / "*.parquet")
    total, fused, no_person, videos = duckdb.sql(
        f"select count(*), count(fused_happy), count(*) filter (where not has_face and not has_speech), "
        f"count(distinct path) from read_parquet('{glob}')").fetchall()[0]
    assert videos == CONTENTS and total == fused + no_person and no_person >= 2
    assert duckdb.sql(f"select count(*) from read_parquet('{glob}') where audio_happy is null").fetchall()[0][0] >= 1
    summary = duckdb.sql(f"select dominant_emotion, windows_no_person from read_parquet('{out / 'videos' / '*.parquet'}')"
                         " where dominant_emotion is null").fetchall()
    assert summary == [(None, 2)]


@pytest.mark.slow
def test_every_input_path_is_accounted_for(scored, video_folder):
    out, counts = scored
    paths = pl.read_parquet(out / "paths" / "*.parquet")
    listed = {Path(p).name: h for p, h in zip(paths["path"], paths["content_hash"])}
    assert ODD in listed and listed[ODD] == listed["Angry clip ü 1.flv"]
    assert listed["duplicate.flv"] == listed[sorted(CREMA_D_VIDEO.glob("*.flv"))[1].name]
    assert listed["link to a clip.flv"] == listed[sorted(CREMA_D_VIDEO.glob("*.flv"))[3].name]
    assert listed["dangling.mp4"] is None and "x.mp4" not in listed
    assert len(listed) == FILES == paths.height and paths["first_seen"].null_count() == 0
    scored = set(pl.read_parquet(out / "videos" / "*.parquet")["content_hash"])
    assert {listed[name] for name in GOOD} == scored  # every path of a scored content points to its row
    rejects = pl.read_parquet(out / "rejects" / "*.parquet")
    reasons = dict(zip([Path(p).name for p in rejects["path"]], rejects["reason"]))
    assert reasons["dangling.mp4"] == f"{video_folder / 'dangling.mp4'}: dangling symbolic link to /nonexistent/video.mp4"
    html = (out / "report.html").read_text()
    assert ODD in html and "same content" in html


@pytest.mark.slow
def test_outputs_honour_the_umask(scored):
    out, _ = scored
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~UMASK}
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_dir()} == {0o777 & ~UMASK}


@pytest.mark.slow
def test_artifacts_are_keyed_by_output_folder_and_an_empty_batch_says_so(scored, video_folder, pipeline_project,
                                                                        tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    out, _ = scored
    other = tmp_path / "other-out"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(sorted(CREMA_D_VIDEO.glob("*.flv"))[0], inbox)
    params, models = str(pipeline_project / "params.yaml"), str(pipeline_project / "models")
    run_scoring([str(inbox)], str(other), params, models)
    assert run_scoring([str(inbox)], str(other), params, models) == {"scored": 0, "skipped": 1, "rejected": 0}

    def artifacts(key: str) -> list:
        with get_client(sync_client=True) as client:
            return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                         sort="CREATED_DESC")

    assert batch_key(out) != batch_key(other) and "other-out" in batch_key(other)
    mine, theirs = artifacts(f"score-summary-{batch_key(out)}"), artifacts(f"score-summary-{batch_key(other)}")
    assert mine and all(str(video_folder) in a.data and str(inbox) not in a.data for a in mine)
    assert len(theirs) == 2 and "scored **1**" in theirs[1].data
    assert "Nothing new" in theirs[0].data and "last results" in theirs[0].data and "report.html" in theirs[0].data
    table = artifacts(f"score-videos-{batch_key(other)}")
    assert len(table) == 1  # the empty batch published no table: the newest one shows the last results
    assert "no person" in artifacts(f"score-videos-{batch_key(out)}")[-1].data


@pytest.mark.slow
def test_every_bad_file_is_a_reject_with_a_reason(scored):
    out, counts = scored
    rejects = pl.scan_parquet(out / "rejects" / "**" / "*.parquet").collect()
    reasons = {Path(p).name: r for p, r in zip(rejects["path"], rejects["reason"])}
    assert set(reasons) == {"empty.mp4", "notes.mp4", "truncated.flv", "no face no audio.mp4", "short.mp4",
                            "dangling.mp4"}
    assert counts["rejected"] == 6
    assert "empty file (0 bytes)" in reasons["empty.mp4"]
    assert "not a readable media file" in reasons["notes.mp4"]
    assert "no audio track and no face" in reasons["no face no audio.mp4"]
    assert "shorter than 1.5 s" in reasons["short.mp4"]
    assert all(Path(p).is_absolute() for p in rejects["path"])


@pytest.mark.slow
def test_second_run_scores_nothing_new(scored, video_folder, pipeline_project):
    out, first = scored
    before = sorted(p.name for p in out.rglob("*.parquet"))
    again = run_scoring([str(video_folder)], str(out), str(pipeline_project / "params.yaml"),
                        str(pipeline_project / "models"))
    assert again == {"scored": 0, "skipped": FILES, "rejected": 0}
    assert sorted(p.name for p in out.rglob("*.parquet")) == before
    assert not list(out.rglob("*.tmp"))


@pytest.mark.slow
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


@pytest.mark.slow
def test_discovery_is_recursive_and_filters_extensions(video_folder):
    found = [Path(f.path) for f in scan_videos([video_folder], [".mp4", ".flv"])]
    names = [p.name for p in found]
    assert "Angry clip ü 1.flv" in names and "readme.txt" not in names and "x.mp4" not in names
    assert video_folder / "dangling.mp4" in found and video_folder / "link to a clip.flv" in found  # not their targets
    assert len(found) == FILES
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        scan_videos([video_folder / "missing"], [".mp4"])


def test_thread_runner_scores_as_many_videos_at_once_as_params_say(prefect_api):
    running, most, lock = [0], [0], threading.Lock()

    @task
    def video(seconds: float) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(seconds)
        with lock:
            running[0] -= 1

    with task_runner_for(ScoringConfig(thread_workers=3)) as runner:
        for future in [runner.submit(video, {"seconds": 0.5}) for _ in range(7)]:
            future.wait()
    assert most[0] == 3  # as many at once as thread_workers, never more
    with pytest.raises(ValueError, match="thread_workers"):
        ScoringConfig(thread_workers=0)
