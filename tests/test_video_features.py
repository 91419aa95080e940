"""Windowing edges, streams that are missing, transcription of the real clips, text features."""

import numpy as np
import pytest

from emotion_models.features.audio import signal_features, statistics_names, statistics_size
from emotion_models.features.media import MediaError, decode_audio
from emotion_models.features.text import FEATURE_NAMES, NEUTRAL_VECTOR, text_featuriser
from emotion_models.features.transcription import transcriber_for
from emotion_models.features.video import TooShortError, extract_windows, plan_windows
from emotion_models.params import TextFeatureConfig, TranscriptionConfig, load_params
from tests.conftest import CREMA_D_VIDEO, REPO, require_shared
from tests.media_factory import tone, write_video
from tests.test_scoring import face_frames

PARAMS = load_params(REPO / "params.yaml")
CONFIG = PARAMS.video.features


@pytest.mark.parametrize("duration, expected", [
    (4.0, [(0.0, 4.0)]),
    (5.4, [(0.0, 4.0)]),  # the 1.4 s tail is dropped
    (6.0, [(0.0, 4.0), (4.0, 6.0)]),  # a 2 s tail is kept (and padded)
    (1.6, [(0.0, 1.6)]),
])
def test_window_plans(duration, expected):
    assert plan_windows(duration, CONFIG) == expected


def test_video_under_one_and_a_half_seconds_is_rejected():
    with pytest.raises(TooShortError, match=r"clip.mp4: 1.40 s is shorter than 1.5 s"):
        plan_windows(1.4, CONFIG, "clip.mp4")


def test_windows_of_a_generated_video(tmp_path):
    require_shared()
    path = write_video(tmp_path / "talk.mp4", face_frames(int(5.4 * 25), (640, 480), 200), audio=tone(5.4, 16000))
    video = extract_windows(str(path), PARAMS)
    assert [(r["start"], r["end"]) for r in video.rows] == [(0.0, 4.0)]
    side = PARAMS.face.features.size  # windows carry crops the face model was trained on
    assert video.arrays["frames"].shape == (1, 16, side, side, 3) and video.arrays["frame_mask"].all()
    width = 768 * len(PARAMS.audio.features.encoder_layers or [None])  # tiny.en: 768 per encoder cut
    assert video.arrays["audio_embedding"].shape == (1, width) and video.arrays["audio_mask"].all()
    assert video.arrays["audio_stats"].shape == (1, statistics_size(PARAMS.audio.features))
    # the window's audio has the representation a training clip of the same sound gets
    expected = signal_features(decode_audio(path, 16000)[:4 * 16000], PARAMS.audio.features)
    assert np.allclose(video.arrays["audio_embedding"][0], expected["embedding"], atol=1e-5)
    assert np.allclose(video.arrays["audio_stats"][0], expected["stats"], atol=1e-5)  # eGeMAPS too when on
    pitch = statistics_names(PARAMS.audio.features).index("log_f0_mean")
    assert np.exp(video.arrays["audio_stats"][0, pitch]) == pytest.approx(220, rel=0.03)  # the tone's pitch
    assert video.arrays["text"].shape == (1, 9)


def test_window_audio_features_follow_the_audio_models_sample_rate(tmp_path):
    require_shared()
    features = PARAMS.audio.features.model_copy(update={"sample_rate": 22050, "representation": "mfcc_cnn"})
    params = PARAMS.model_copy(update={"audio": PARAMS.audio.model_copy(update={"features": features})})
    path = write_video(tmp_path / "talk.mp4", face_frames(100, (640, 480), 200), audio=tone(4.0, 16000))
    video = extract_windows(str(path), params)
    pitch = statistics_names(features).index("log_f0_mean")
    assert np.exp(video.arrays["audio_stats"][0, pitch]) == pytest.approx(220, rel=0.03)  # not 220 * 22050 / 16000
    assert video.arrays["audio_mfcc"].shape == (1, 3, 173, 13)  # 4 s of 22.05 kHz in hops of 512


def test_work_beside_whisper_sees_faces_and_audio_before_the_transcript(tmp_path):
    require_shared()
    path = write_video(tmp_path / "talk.mp4", face_frames(100, (640, 480), 200), audio=tone(4.0, 16000))
    seen = {}

    def beside_whisper(arrays):
        seen.update(faces=int(arrays["frame_mask"].sum()), audio=bool(arrays["audio_stats"].any()),
                    text=bool(arrays["text"].any()))
        return "single-modality views"

    video = extract_windows(str(path), PARAMS, while_transcribing=beside_whisper)
    assert seen == {"faces": 16, "audio": True, "text": False}
    assert video.early == "single-modality views"
    assert np.array_equal(video.arrays["text"][0], NEUTRAL_VECTOR)  # filled after Whisper (heard no words)


def test_no_audio_stream_masks_audio_and_no_video_stream_masks_frames(tmp_path):
    require_shared()
    silent = write_video(tmp_path / "silent.mp4", face_frames(100, (640, 480), 200))
    video = extract_windows(str(silent), PARAMS)
    assert not video.arrays["audio_mask"].any() and video.arrays["frame_mask"].all()
    assert not video.rows[0]["has_audio"] and np.array_equal(video.arrays["text"][0], NEUTRAL_VECTOR)
    voice = write_video(tmp_path / "voice.mp4", [], audio=decode_audio(sorted(CREMA_D_VIDEO.glob("*.flv"))[0], 16000))
    video = extract_windows(str(voice), PARAMS)
    assert video.arrays["audio_mask"].all() and not video.arrays["frame_mask"].any()
    assert not video.rows[0]["has_video"] and "forget" in video.rows[0]["transcript"].lower()


def test_no_face_in_any_frame_is_masked_not_invented(tmp_path):
    path = write_video(tmp_path / "wall.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 100, audio=tone(4.0, 16000))
    video = extract_windows(str(path), PARAMS)
    assert not video.arrays["frame_mask"].any() and video.rows[0]["faces"] == 0
    assert not video.arrays["frames"].any()
    nothing = write_video(tmp_path / "nothing.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 100)
    with pytest.raises(MediaError, match="no audio track and no face"):
        extract_windows(str(nothing), PARAMS)


def test_offline_whisper_hears_the_real_crema_d_actor():
    require_shared()
    transcriber = transcriber_for(TranscriptionConfig())
    texts = [" ".join(w.text for w in transcriber.transcribe(decode_audio(clip, 16000))).lower()
             for clip in sorted(CREMA_D_VIDEO.glob("*.flv"))]
    assert all("don't forget" in text for text in texts)  # "Don't forget a jacket"
    assert sum("jacket" in text for text in texts) >= 2


def test_long_audio_is_heard_in_pieces_with_their_own_times():
    require_shared()
    clip = decode_audio(sorted(CREMA_D_VIDEO.glob("*.flv"))[0], 16000)[:2 * 16000]
    two = np.concatenate([clip, np.zeros(2 * 16000, np.float32), clip])  # the sentence at 0 s and at 4 s
    words = transcriber_for(TranscriptionConfig(chunk_seconds=4.0)).transcribe(two)
    first = [w for w in words if w.start < 4.0]
    second = [w for w in words if w.start >= 4.0]
    assert "forget" in " ".join(w.text for w in first).lower() and "forget" in " ".join(w.text for w in second).lower()
    assert all(4.0 <= w.start <= w.end <= 6.5 for w in second)


@pytest.mark.parametrize("sentence, emotion", [
    ("I am furious, this outrageous insult makes me so angry", "anger"),
    ("What a wonderful happy day, I love celebrating with my friends", "joy"),
    ("I feel so sad and lonely, grieving and crying all night", "sadness"),
    ("The murder left everyone terrified, afraid and panicking", "fear"),
])
@pytest.mark.parametrize("sentiment", ["vader", "textblob"])
def test_text_features_of_unambiguous_sentences(sentence, emotion, sentiment):
    features = text_featuriser(TextFeatureConfig(sentiment=sentiment))(sentence)
    assert features.shape == (9,) and abs(features[:7].sum() - 1) < 1e-5
    scores = dict(zip(FEATURE_NAMES, features))
    assert max(("anger", "disgust", "fear", "joy", "sadness", "surprise"), key=scores.get) == emotion
    positive = scores["positive"] > scores["negative"]
    assert positive == (emotion == "joy")
    assert abs(scores["positive"] + scores["negative"] - 1) < 1e-6


def test_sentiment_reads_negation():
    """The default sentiment (VADER) reads negation: "not good" is negative."""
    features = dict(zip(FEATURE_NAMES, text_featuriser(TextFeatureConfig())("This is not good at all")))
    assert features["negative"] > features["positive"]


def test_a_window_without_words_is_neutral():
    featurise = text_featuriser(TextFeatureConfig())
    assert np.array_equal(featurise(""), NEUTRAL_VECTOR) and np.array_equal(featurise("   "), NEUTRAL_VECTOR)
