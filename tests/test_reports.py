"""The evaluation reports' per-language figures and the face report's video-frame check."""

from __future__ import annotations

import pytest

from emotion_models.data.datasets import ADAPTERS, corpus_language
from emotion_models.reports.evaluation import classification_metrics, language_sections, per_language, render_report


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
