"""The evaluation reports' per-language figures and the face report's video-frame check and backbone comparison."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from emotion_models import paths
from emotion_models.data.datasets import ADAPTERS, corpus_language
from emotion_models.nets.registry import get_spec
from emotion_models.params import load_params
from emotion_models.reports.evaluation import classification_metrics, language_sections, per_language, render_report
from tasks.evaluate import (
    MeasurementsUnreadable,
    backbone_comparison_section,
    frame_check_metrics,
    video_frame_check,
    video_frame_section,
)
from tests.conftest import CREMA_D_VIDEO, REPO, require_shared


def _fold(name: str, n: int, accuracy: float) -> dict:
    return {"fold": name, "n": n, "accuracy": accuracy, "macro_f1": accuracy, "test_speakers": ["x"],
            "val_speakers": [], "train_corpora": []}


CROSS_VALIDATION = {"protocols": {
    "casia_speaker_folds": {"folds": [_fold("fold 1", 10, 0.5), _fold("fold 2", 10, 0.7)]},
    "ravdess_speaker_folds": {"folds": [_fold("fold 1", 20, 0.75), _fold("fold 2", 20, 0.5)]},
    "savee_speaker_folds": {"folds": [_fold("fold 1", 40, 0.5)]},
    "leave_corpus_out": {"folds": [_fold("ravdess", 100, 0.4), _fold("tess", 50, 0.7), _fold("casia", 25, 0.2)]},
}}


def test_every_speech_corpus_has_one_language():
    speech = {a.corpus for a in ADAPTERS.values() if a.modality in ("audio", "video")} - {"folders"}
    assert {c: corpus_language(c) for c in speech if corpus_language(c) == "unknown"} == {}
    assert corpus_language("casia") == "Mandarin" and corpus_language("emodb") == "German"
    assert corpus_language("emovo") == "Italian" and corpus_language("folders") == "unknown"


def test_accuracy_per_language_pools_the_folds_of_speaker_folds_and_leave_one_corpus_out_apart():
    found = per_language(CROSS_VALIDATION, corpus_language)
    assert list(found) == ["speaker_folds", "leave_corpus_out"]
    # English speaker folds: RAVDESS 15 + 10 right of 40, SAVEE 20 of 40
    assert found["speaker_folds"]["English"] == {"n": 80, "accuracy": pytest.approx(45 / 80),
                                                 "corpora": ["ravdess", "savee"]}
    assert found["speaker_folds"]["Mandarin"] == {"n": 20, "accuracy": pytest.approx(0.6), "corpora": ["casia"]}
    assert found["leave_corpus_out"]["English"]["accuracy"] == pytest.approx((40 + 35) / 150)
    assert found["leave_corpus_out"]["Mandarin"] == {"n": 25, "accuracy": pytest.approx(0.2), "corpora": ["casia"]}


def test_the_report_shows_the_language_tables_without_a_pooled_macro_f1(tmp_path):
    sections = language_sections(per_language(CROSS_VALIDATION, corpus_language))
    assert [s["name"].split(": ")[1] for s in sections] == ["speaker cross-validation, test clips of every fold pooled",
                                                            "leave one corpus out, test clips of every corpus pooled"]
    assert list(sections[1]["rows"]) == ["English (ravdess, tess)", "Mandarin (casia)"]
    metrics = classification_metrics([0, 1, 2], [0, 1, 1])
    html = render_report(tmp_path, "Audio", {**metrics, "per_dataset": {}}, sections=sections).read_text()
    assert "Accuracy per language: leave one corpus out" in html
    assert "<td>Mandarin (casia)</td><td>25</td><td>0.200</td><td>–</td>" in html


def test_the_face_report_shows_the_compact_cnn_and_efficientnet_lite0_side_by_side_on_the_same_test_sets(tmp_path):
    section = backbone_comparison_section(REPO / paths.FACE_BACKBONE_MEASUREMENTS,
                                          {"fer2013": 3589, "raf_db": 1841, "ck_plus": 90})
    backbones = {name.split(" (")[0] for name in section["rows"]}
    corpora = {name.rsplit(": ", 1)[1] for name in section["rows"]}
    assert backbones == {"compact_cnn_16", "efficientnet_lite0"}
    assert corpora == {"fer2013 test", "raf_db test", "ck_plus test"}
    html = render_report(tmp_path, "Face", {**classification_metrics([0, 1], [0, 1]), "per_dataset": {}},
                         sections=[section]).read_text()
    assert "Backbones side by side on the same splits" in html
    assert "): fer2013 test</td><td>3589</td><td>0.573</td><td>–</td>" in html  # the compact CNN's 57.3%


def test_a_missing_backbone_file_leaves_the_section_out_and_a_broken_one_names_the_file(tmp_path):
    assert backbone_comparison_section(tmp_path / "absent.json", {}) is None
    broken = tmp_path / "face_backbones.json"
    broken.write_text('{"records": [{"backbone": "x"}]}')
    with pytest.raises(MeasurementsUnreadable, match="face_backbones.json"):
        backbone_comparison_section(broken, {})


def test_the_video_frame_check_scores_frames_and_clips_by_their_mean_probability():
    happy, angry = np.eye(5)[2] * 0.9 + 0.02, np.eye(5)[3] * 0.3 + 0.14
    # a Happy clip: one sure Happy frame, two unsure Angry ones (right per clip, 1 of 3 frames); an Angry clip
    # read as Angry; a clip where no frame had a face
    found = frame_check_metrics([(2, np.stack([happy, angry, angry])), (3, np.stack([angry])), (1, np.zeros((0, 5)))])
    assert found["per_frame"]["n"] == 4 and found["per_frame"]["accuracy"] == pytest.approx(2 / 4)
    assert found["per_clip"]["n"] == 2 and found["per_clip"]["accuracy"] == pytest.approx(1.0)
    assert found["clips_without_face"] == 1


def test_the_face_report_says_when_there_are_no_video_clips(tmp_path):
    manifest = pl.DataFrame({"dataset": ["ck_plus"], "composed": [False], "path": ["a.png"], "speaker_id": ["S010"],
                             "label": [2]})
    check = video_frame_check(load_params(REPO / "params.yaml"), manifest, model=None, meta={})
    assert check["clips"] == 0 and "no video-frame check" in check["label"]
    html = render_report(tmp_path, "Face", {**classification_metrics([0], [0]), "per_dataset": {}},
                         sections=[video_frame_section(check)]).read_text()
    assert "Video-frame check: no crema_d_video clips in the manifest" in html


def test_the_face_model_reads_the_frames_of_the_crema_d_clips_labelled_as_a_smoke_check(tmp_path):
    require_shared()
    params = load_params(REPO / "params.yaml")
    clip = sorted(CREMA_D_VIDEO.glob("1001_*_HAP_*.flv"))[0]
    broken = tmp_path / "1001_DFA_SAD_XX.flv"
    broken.write_text("not a video")
    manifest = pl.DataFrame({"dataset": ["crema_d_video"] * 2 + ["ck_plus"], "composed": [False] * 3,
                             "path": [str(clip), str(broken), "x.png"], "speaker_id": ["1001", "1001", "S010"],
                             "label": [2, 0, 2]})
    spec = get_spec("face")
    model = spec.build(spec.model_config(params), pretrained=False)
    check = video_frame_check(params, manifest, model, {"temperature": 1.0})
    assert check["label"] == "one actor (CREMA-D 1001), 2 clips: a smoke check, not a measure"
    assert [r["path"] for r in check["rejects"]] == [str(broken)]
    assert 6 <= check["frames"] <= 12  # a 2.5 s clip at video.features.fps = 4
    assert 0 < check["frames_with_face"] <= check["frames"] and check["per_frame"]["n"] == check["frames_with_face"]
    assert check["per_clip"]["n"] == 1
    section = video_frame_section(check)
    assert section["name"] == f"Video-frame check: {check['label']}"
    assert list(section["rows"])[0].startswith(f"per frame ({check['frames_with_face']} of {check['frames']} frames")
