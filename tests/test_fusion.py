"""Late fusion, the transcript's class evidence, the weights and the late/learned choice, without models."""

import json
import math

import numpy as np
import polars as pl
import pytest

from emotion_models.contract import WINDOW_SCHEMA
from emotion_models.features.text import text_featuriser
from emotion_models.features.transcription import is_speech, transcriber_for
from emotion_models.labels import SLUGS
from emotion_models.params import FusionConfig, TextFeatureConfig, TranscriptionConfig, ViewWeights
from emotion_models.scoring.fusion import (
    FALLBACK_WEIGHT,
    MIN_WEIGHT,
    TEXT_EMOTION_CLASSES,
    choose_fusion,
    late_fusion,
    read_choice,
    resolve_weights,
    text_evidence,
    transcript_evidence,
    window_views,
)
from emotion_models.scoring.score import summarise

NAN = [np.nan] * 5


def rows(*values) -> np.ndarray:
    return np.array(values, dtype=float)


def test_one_view_is_passed_through_and_a_missing_view_drops_out():
    audio = rows([0.1, 0.2, 0.3, 0.3, 0.1], [0.6, 0.1, 0.1, 0.1, 0.1])
    face = rows(NAN, [0.1, 0.1, 0.6, 0.1, 0.1])
    fused = late_fusion({"audio": audio, "face": face, "text": rows(NAN, NAN)}, {"audio": 0.3, "face": 0.6, "text": 0.2})
    assert np.allclose(fused[0], audio[0])  # only audio present: its distribution unchanged
    expected = audio[1] ** (1 / 3) * face[1] ** (2 / 3)  # weights 0.3 and 0.6 renormalised
    assert np.allclose(fused[1], expected / expected.sum())
    assert fused[1].argmax() == 2  # the more reliable face view wins


def test_no_view_no_estimate_and_zero_weights_count_equally():
    a, b = rows([0.7, 0.1, 0.1, 0.05, 0.05]), rows([0.1, 0.1, 0.1, 0.1, 0.6])
    fused = late_fusion({"audio": a, "face": b, "text": rows(NAN)}, {"audio": 0.0, "face": 0.0, "text": 0.0})
    geometric = np.sqrt(a[0] * b[0])
    assert np.allclose(fused[0], geometric / geometric.sum())
    empty = late_fusion({"audio": rows(NAN), "face": rows(NAN), "text": rows(NAN)}, {"audio": 1, "face": 1, "text": 1})
    assert np.isnan(empty).all()


def test_a_uniform_view_leaves_the_winner_and_a_zero_probability_does_not_break_the_log():
    a = rows([0.0, 0.0, 1.0, 0.0, 0.0])
    fused = late_fusion({"audio": a, "face": rows([0.2] * 5), "text": rows(NAN)}, {"audio": 1, "face": 1, "text": 1})
    assert np.isfinite(fused).all() and fused[0].argmax() == 2 and math.isclose(fused[0].sum(), 1.0)


def test_text_evidence_is_smoothed_class_votes():
    assert text_evidence(np.zeros(5), 2.0) is None  # no emotion word, no evidence
    one = text_evidence(np.array([0, 0, 0, 1.0, 0]), 2.0)
    assert one.argmax() == 3 and one[3] == pytest.approx(1.4 / 3) and one[0] == pytest.approx(0.4 / 3)
    assert text_evidence(np.array([0, 0, 0, 3.0, 0]), 2.0)[3] == pytest.approx(0.68)


def test_each_emotion_word_is_one_vote_split_among_the_classes_of_its_emotions():
    featuriser = text_featuriser(TextFeatureConfig())
    words = ["Don't forget a jacket.", "What a wonderful happy day, I love celebrating",
             "I am crying, grieving, afraid and terrified"]
    evidence = transcript_evidence(featuriser, words, 2.0)
    assert np.isnan(evidence[0]).all()  # CREMA-D's sentence has no emotion word: the text view drops out
    assert evidence[1].argmax() == 2 and evidence[2].argmax() == 0
    votes = featuriser.class_votes("furious", TEXT_EMOTION_CLASSES, 5)  # NRC: anger and disgust
    assert votes.tolist() == [0, 0, 0, 0.5, 0.5]


def test_weights_come_from_each_checkpoints_validation_skill_unless_params_say():
    metas = {"audio": {"val_macro_f1": 0.6, "val_accuracy": 0.62}, "face": {"val_macro_f1": 0.2}}
    weights = resolve_weights(FusionConfig(), metas)
    assert weights == {"audio": pytest.approx(0.5), "face": MIN_WEIGHT, "text": 0.2}
    given = resolve_weights(FusionConfig(weights=ViewWeights(audio=1.0, face=2.0, text=0.0)), metas)
    assert given == {"audio": 1.0, "face": 2.0, "text": 0.0}
    old = resolve_weights(FusionConfig(), {"audio": {}, "face": {"val_macro_f1": float("nan")}})
    assert old["audio"] == old["face"] == FALLBACK_WEIGHT  # older checkpoints / no validation clips: equal


def test_no_person_no_views_and_audio_counts_only_where_speech_was_heard():
    probabilities = {"audio": rows([0.1, 0.2, 0.3, 0.3, 0.1])[[0, 0, 0]], "face": rows(NAN, NAN, [0.1, 0.1, 0.6, 0.1, 0.1]),
                     "video": rows([0.2] * 5)[[0, 0, 0]]}
    text = rows(NAN, NAN, NAN)
    views = window_views(probabilities, text, has_face=np.array([False, False, True]),
                         speech=np.array([False, True, False]), weights={"audio": 1, "face": 1, "text": 1}, method="late")
    assert all(np.isnan(views[v][0]).all() for v in ("audio", "face", "text", "video", "fused"))  # a tone, no face
    assert np.allclose(views["fused"][1], probabilities["audio"][1])  # speech, no face
    assert np.isnan(views["audio"][2]).all() and np.allclose(views["fused"][2], probabilities["face"][2])  # silent face
    learned = window_views(probabilities, text, np.array([False, False, True]), np.array([False, True, False]),
                           {"audio": 1, "face": 1, "text": 1}, "learned")
    assert np.isnan(learned["fused"][0]).all() and np.allclose(learned["fused"][1:], 0.2)


def test_the_learned_fusion_is_chosen_only_when_it_wins_on_enough_speakers():
    late, better = {"n": 40, "macro_f1": 0.40}, {"n": 40, "macro_f1": 0.45}
    assert choose_fusion(late, better, speakers=3, min_speakers=2)[0] == "learned"
    assert choose_fusion(late, {"n": 40, "macro_f1": 0.40}, 3, 2)[0] == "late"  # a tie keeps late fusion
    choice, reason = choose_fusion(late, better, speakers=1, min_speakers=2)
    assert choice == "late" and "1 speaker" in reason
    choice, reason = choose_fusion({"n": 0, "macro_f1": 0.0}, {"n": 0, "macro_f1": 0.0}, 0, 2)
    assert choice == "late" and "no real validation clips" in reason


def test_the_choice_file_is_read_or_its_absence_explained(tmp_path):
    assert read_choice(tmp_path)["choice"] == "late" and "never validated" in read_choice(tmp_path)["reason"]
    (tmp_path / "video").mkdir()
    (tmp_path / "video" / "fusion.json").write_text(json.dumps({"choice": "learned", "reason": "it won"}))
    assert read_choice(tmp_path)["choice"] == "learned"
    (tmp_path / "video" / "fusion.json").write_text(json.dumps({"choice": "best"}))
    with pytest.raises(ValueError, match="fusion.json"):
        read_choice(tmp_path)


def _windows(fused: list[list[float] | None], ends: list[float]) -> pl.DataFrame:
    starts = [0.0, *ends[:-1]]
    frame = {"start": starts, "end": ends, "has_face": [f is not None for f in fused],
             "has_audio": [True] * len(fused), "has_speech": [False] * len(fused)}
    for c, slug in enumerate(SLUGS):
        frame[f"fused_{slug}"] = [None if f is None else f[c] for f in fused]
    return pl.DataFrame(frame, schema={k: WINDOW_SCHEMA[k] for k in frame})


def test_a_summary_weighs_person_time_and_names_no_emotion_without_a_person():
    windows = _windows([[0.1, 0.2, 0.4, 0.2, 0.1], [0.5, 0.1, 0.2, 0.1, 0.1], None], [4.0, 6.0, 10.0])
    summary = summarise(windows, {"path": "v.mp4"}, 10.0, "late")
    assert summary["dominant_emotion"] == "Happy" and summary["windows_no_person"] == 1
    assert summary["share_happy"] == pytest.approx(4 / 6) and summary["share_sad_fear"] == pytest.approx(2 / 6)
    assert summary["mean_probability_happy"] == pytest.approx((4 * 0.4 + 2 * 0.2) / 6)
    assert summary["mean_confidence"] == pytest.approx((4 * 0.4 + 2 * 0.5) / 6)
    nobody = summarise(_windows([None, None], [4.0, 8.0]), {"path": "tone.mp4"}, 8.0, "late")
    assert nobody["dominant_emotion"] is None and nobody["mean_confidence"] is None and nobody["share_happy"] is None
    assert nobody["windows_no_person"] == 2


def test_whisper_hears_no_speech_in_a_tone():
    transcriber = transcriber_for(TranscriptionConfig())
    rate = 16000
    for seconds, amplitude in ((2, 0.1), (10, 0.5)):  # tiny.en made "Beep beep beep ..." and "A" of these
        t = np.arange(seconds * rate) / rate
        assert transcriber.transcribe((amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)) == []
    assert is_speech(no_speech_prob=0.05, avg_logprob=-1.2, compression_ratio=1.0)  # speech in noise, decoded badly
    assert not is_speech(no_speech_prob=0.75, avg_logprob=-0.04, compression_ratio=9.0)  # a beep loop
    assert is_speech(no_speech_prob=0.34, avg_logprob=-0.04, compression_ratio=21.0)  # one sentence said 14 times
