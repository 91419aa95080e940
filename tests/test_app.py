"""The web app's pages (Streamlit AppTest) and the library code behind them."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
from pathlib import Path

import av
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from app import ENV_MODELS, ENV_PARAMS, ENV_SCORES
from emotion_models.contract import VIDEO_SCHEMA
from emotion_models.predict.interactive import browser_video, window_frames
from emotion_models.reports.overview import model_overview, prefect_links
from emotion_models.scoring.results import (
    TableReader,
    filter_videos,
    load_windows,
    timeline,
    videos_table,
    views_of,
    window_summary,
)
from tests.app_data import model_reports, rejected, scored_video
from tests.conftest import CK_PLUS, CREMA_D_VIDEO, REPO, require_shared

PAGES = REPO / "app" / "views"


def load_videos(folders: list[Path]) -> pl.DataFrame:
    return videos_table([TableReader(f, "videos", VIDEO_SCHEMA).read().with_columns(pl.lit(str(f)).alias("folder"))
                         for f in folders])


def page(name: str, monkeypatch, scores: list[Path] = (), models: Path | None = None) -> AppTest:
    """One page of the app as `emotion app` would serve it, run once."""
    monkeypatch.setenv(ENV_PARAMS, str(REPO / "params.yaml"))
    monkeypatch.setenv(ENV_SCORES, os.pathsep.join(str(s) for s in scores))
    if models is not None:
        monkeypatch.setenv(ENV_MODELS, str(models))
    return AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120).run()


@pytest.fixture
def two_folders(tmp_path) -> tuple[Path, Path]:
    """A folder scored by the current code (no fused_* columns) and one in the new contract, with a
    video where no person was found and a rejected file."""
    old, new = tmp_path / "old", tmp_path / "new"
    scored_video(old, "angry.flv", "a" * 64, ["angry", "angry", "neutral"], fused=False)
    scored_video(new, "happy.mp4", "b" * 64, ["happy", None], fused=True, scored_at="2026-11-27T09:00:00+0000")
    scored_video(new, "test-pattern.mp4", "c" * 64, [None], fused=True, scored_at="2026-11-27T10:00:00+0000")
    rejected(new, "notes.mp4", "/videos/notes.mp4: not a readable media file")
    return old, new


def table(app: AppTest, index: int = 0) -> list[dict]:
    return app.dataframe[index].value.to_dict("records")


def test_scores_page_lists_every_folder_with_emotions_and_rejects(two_folders, monkeypatch):
    app = page("scores", monkeypatch, list(two_folders))
    assert not app.exception
    rows = table(app)
    assert {(r["video"], r["dominant emotion"]) for r in rows} == {
        ("angry.flv", "Angry"), ("happy.mp4", "Happy"), ("test-pattern.mp4", "no person")}
    assert rows[0]["video"] == "test-pattern.mp4"  # newest first
    assert {r["folder"] for r in rows} == {str(f) for f in two_folders}
    rejects = table(app, -1)
    assert rejects == [{"path": "/videos/notes.mp4", "reason": "/videos/notes.mp4: not a readable media file",
                        "folder": str(two_folders[1])}]
    # the newest video is opened: it has no person, so there is no emotion and no confidence
    assert app.subheader[0].value == "test-pattern.mp4"
    assert app.metric[0].value == "no person"
    assert any("no person in any window" in c.value for c in app.caption)


def test_scores_page_filters_by_emotion_folder_and_date(two_folders, monkeypatch):
    app = page("scores", monkeypatch, list(two_folders))
    emotion, folder = app.multiselect
    emotion.select("Angry").select("Happy").run()
    assert sorted(r["video"] for r in table(app)) == ["angry.flv", "happy.mp4"]
    app.multiselect[1].select(str(two_folders[1])).run()
    assert [r["video"] for r in table(app)] == ["happy.mp4"]
    assert app.subheader[0].value == "happy.mp4"
    windows = table(app, 1)
    assert windows[0]["fused estimate"] == "Happy" and windows[0]["transcript"] == "don't forget a jacket"
    assert windows[1]["fused estimate"] in (None, "") or math.isnan(windows[1]["fused estimate"])  # no person
    app.multiselect[0].unselect("Happy").run()
    assert "0 of 3 videos" in " ".join(c.value for c in app.caption)
    app.multiselect[0].set_value([]).run()
    app.multiselect[1].set_value([]).run()
    app.date_input[0].set_value((dt.date(2026, 11, 25), dt.date(2026, 11, 25))).run()
    assert [r["video"] for r in table(app)] == ["angry.flv"]
    # a folder scored before fused_* existed shows the combined model's estimate
    assert app.subheader[0].value == "angry.flv"
    assert table(app, 1)[0]["combined model"] == "Angry" and "fused estimate" not in table(app, 1)[0]


def test_scores_page_names_a_folder_without_scores(tmp_path, monkeypatch):
    app = page("scores", monkeypatch, [tmp_path / "never-scored"])
    assert not app.exception
    assert any(str(tmp_path / "never-scored") in w.value and "emotion score" in w.value for w in app.warning)
    assert any("No scored videos" in i.value for i in app.info)


def test_models_page_shows_metrics_curves_ablations_and_trials(tmp_path, monkeypatch):
    for model, accuracy in (("audio", 0.65), ("face", 0.74)):
        model_reports(tmp_path, model, accuracy, trials=3 if model == "audio" else 0)
    (tmp_path / "models" / "audio" / "model.pt").write_bytes(b"weights")
    md5 = hashlib.md5(b"weights").hexdigest()
    (tmp_path / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  audio_train:\n    cmd: x\n    outs:\n"
                                       f"    - path: models/audio/model.pt\n      hash: md5\n      md5: {md5}\n")
    monkeypatch.chdir(tmp_path)
    app = page("models", monkeypatch)
    assert not app.exception
    assert any("No model has cross-validation results yet" in i.value for i in app.info)
    summary = {r["model"]: r for r in table(app)}
    assert summary["audio"]["test accuracy"] == pytest.approx(0.65)
    assert summary["audio"]["checkpoint"] == "as in dvc.lock"
    assert summary["face"]["checkpoint"] == "missing" and math.isnan(summary["video"]["test accuracy"])
    assert [m.value for m in app.metric[:2]] == ["65.0%", "0.600"]
    assert any("video model has not been evaluated" in i.value for i in app.info)
    markdown = " ".join(m.value for m in app.markdown)
    assert "Training curves" in markdown and "Tuning trials** (3" in markdown
    per_class = [df.value for df in app.dataframe if "precision" in df.value.columns]
    assert len(per_class) == 2 and list(per_class[0]["class"]) == ["Sad/Fear", "Neutral", "Happy", "Angry",
                                                                    "Surprise/Disgust"]


def test_models_page_leads_with_cross_validation_then_calibration_then_the_test_split(tmp_path, monkeypatch):
    model_reports(tmp_path, "audio", 0.65, cross_validation=True)
    model_reports(tmp_path, "face", 0.74)
    monkeypatch.chdir(tmp_path)
    app = page("models", monkeypatch)
    assert not app.exception
    assert [h.value for h in app.subheader] == ["Cross-validation and leave one corpus out",
                                                "Speaker-independent test split"]
    folds = table(app)  # the first table: every model's cross-validation
    assert [(r["model"], r["tested"], r["accuracy"]) for r in folds] == [
        ("audio", "ravdess (unseen speakers)", "73.1% ± 4.2%"), ("audio", "ravdess (all speakers)", "55.2%"),
        ("audio", "casia (all speakers)", "30.1%")]
    assert folds[0]["macro-F1"] == "0.700 ± 0.050" and folds[2]["ECE"] == "0.300 → 0.200"
    languages = table(app, 1)
    assert {(r["pooled over"], r["language"]): r["accuracy"] for r in languages} == {
        ("speaker folds", "English"): 0.731, ("leave one corpus out", "English"): 0.552,
        ("leave one corpus out", "Mandarin"): 0.301}
    summary = {r["model"]: r for r in table(app, 2)}
    assert summary["audio"]["test accuracy"] == pytest.approx(0.65)
    assert summary["audio"]["temperature"] == pytest.approx(1.5)
    assert summary["audio"]["test ECE before → after"] == "0.120 → 0.040"
    assert summary["face"]["test ECE before → after"] == ""
    markdown = [m.value for m in app.markdown]
    calibration = next(m for m in markdown if m.startswith("**Calibration**"))
    assert "T = 1.50 (fitted on 40 validation clips)" in calibration and "0.120 → 0.040" in calibration
    assert markdown.index(calibration) < markdown.index("**Speaker-independent test split**")
    assert any("Evaluated before calibration" in c.value for c in app.caption)  # the face model's


def test_models_page_reads_the_video_model_ablations(tmp_path):
    model_reports(tmp_path, "video", 0.5)
    overview = model_overview("video", tmp_path, locked={})
    assert overview.ablations().select("variant", "accuracy").rows() == [("audio only", 0.3), ("face only", 0.4)]
    assert overview.confusion().filter(pl.col("actual") == pl.col("predicted"))["count"].to_list() == [2] * 5
    assert overview.matches_lock is None and overview.history.height == 3


def test_prefect_links_point_at_the_ui_of_the_api():
    assert prefect_links(None) == {}
    assert prefect_links("http://127.0.0.1:4200/api")["flow runs"] == "http://127.0.0.1:4200/runs"


def test_predict_page_asks_for_a_file_and_explains_missing_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = page("predict", monkeypatch, models=tmp_path / "models")
    assert not app.exception and "Upload a file" in app.info[0].value
    app.text_input[0].input(str(tmp_path / "nowhere.mp4")).run()
    assert "nowhere.mp4: file not found" in app.error[0].value
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    app.text_input[0].input(str(notes)).run()
    error = app.error[0].value  # a video is scored by the exported graphs, as `emotion score` scores it
    assert "No trained models" in error and "face.onnx" in error and "dvc repro" in error


def test_old_and_new_contract_folders_read_as_one_table(two_folders):
    videos = load_videos(list(two_folders))
    assert videos.height == 3 and videos["windows_no_person"].to_list().count(None) == 1
    assert filter_videos(videos, emotions=["no person"])["path"].to_list() == ["/videos/test-pattern.mp4"]
    assert filter_videos(videos, text="happy")["emotion"].to_list() == ["Happy"]
    old = load_windows(two_folders[0], "a" * 64, "abc123def456")
    assert views_of(old) == ["video", "audio", "face"]
    new = load_windows(two_folders[1], "b" * 64, "abc123def456")
    assert views_of(new)[0] == "fused"
    assert timeline(new).filter(pl.col("view") == "fused estimate")["window"].unique().to_list() == [0]
    assert window_summary(old)["combined model"].to_list() == ["Angry", "Angry", "Neutral"]


def test_a_folder_with_a_null_typed_column_still_reads(tmp_path):
    """Files of one folder may disagree on a column's type (an all-null column is written as Null)."""
    out = tmp_path / "out"
    scored_video(out, "a.mp4", "a" * 64, ["happy"], fused=True)
    summary = scored_video(out, "b.mp4", "b" * 64, [None], fused=True)
    frame = pl.DataFrame([{k: v for k, v in summary.items()}]).with_columns(
        pl.lit(None).alias("dominant_emotion"), pl.lit(None).alias("mean_confidence"))
    assert frame.schema["dominant_emotion"] == pl.Null
    frame.write_parquet(next((out / "videos").glob("b*.parquet")))
    videos = load_videos([out])
    assert sorted(videos["emotion"].to_list()) == ["Happy", "no person"]


def test_a_folder_is_read_again_only_for_its_new_files(tmp_path):
    out = tmp_path / "out"
    scored_video(out, "a.mp4", "a" * 64, ["happy"], fused=True)
    reader = TableReader(out, "videos", VIDEO_SCHEMA)
    first = reader.read()
    assert first["path"].to_list() == ["/videos/a.mp4"]
    assert reader.read() is first  # nothing changed: nothing read
    scored_video(out, "b.mp4", "b" * 64, ["angry"], fused=False)
    assert sorted(reader.read()["path"].to_list()) == ["/videos/a.mp4", "/videos/b.mp4"]
    next((out / "videos").glob("a*.parquet")).unlink()
    assert reader.read()["path"].to_list() == ["/videos/b.mp4"]
    assert TableReader(tmp_path / "missing", "videos", VIDEO_SCHEMA).read().height == 0


def test_a_flv_clip_becomes_a_webm_the_browser_plays_and_has_a_boxed_frame(tmp_path):
    require_shared()
    from emotion_models.params import load_params

    clip = sorted(CREMA_D_VIDEO.glob("*.flv"))[0]
    playable = browser_video(clip, tmp_path / "clip.webm")
    with av.open(str(playable)) as container:
        assert container.format.name.startswith("matroska") or "webm" in container.format.name
        assert container.streams.video[0].codec_context.name == "vp8" and container.streams.audio
        assert abs(float(container.duration / av.time_base) - 2.2) < 0.5
    assert browser_video(tmp_path / "clip.mp4", tmp_path / "x.webm") == tmp_path / "clip.mp4"
    windows = pl.DataFrame({"window": [0], "start": [0.0], "end": [2.2]})
    frames = window_frames(clip, windows, load_params(REPO / "params.yaml"))
    assert len(frames) == 1 and frames[0].box is not None and frames[0].image.shape[1] == 320
    assert 0.8 < frames[0].time < 1.4


@pytest.mark.slow
def test_predict_page_shows_the_face_box_grad_cam_and_probabilities(pipeline_project, monkeypatch):
    monkeypatch.chdir(pipeline_project)
    app = page("predict", monkeypatch, models=pipeline_project / "models")
    app.text_input[0].input(str(CK_PLUS / "happy" / "S010_006_00000013.png")).run()
    assert not app.exception and not app.error
    assert app.subheader[0].value.removeprefix("Prediction: ") in {"Sad/Fear", "Neutral", "Happy", "Angry",
                                                                    "Surprise/Disgust"}
    assert "face model" in app.caption[0].value
    bad = pipeline_project / "notes.mp4"
    bad.write_text("not a video")
    app.text_input[0].input(str(bad)).run()
    assert "not a readable media file" in app.error[0].value
