"""Whisper's repetition loops on real speech: looped words are dropped, ordinary speech is kept."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_models.features import transcription
from emotion_models.features.media import decode_audio
from emotion_models.features.transcription import SAMPLE_RATE, Transcriber, words_in
from emotion_models.params import TranscriptionConfig
from tests.conftest import CREMA_D_VIDEO, SHARED, require_shared


@pytest.fixture(scope="module")
def whisper() -> Transcriber:
    require_shared()
    return Transcriber(TranscriptionConfig())


def test_one_sentence_said_over_and_over_is_not_multiplied(whisper):
    """CREMA-D's "Don't forget a jacket" 14 times in 30 s: tiny.en alone loops far past the 56 spoken
    words (about 149 here, up to 84 in one 4 s window)."""
    clips = [decode_audio(clip, SAMPLE_RATE) for clip in sorted(CREMA_D_VIDEO.glob("*.flv"))]
    signal = np.concatenate([clips[i % len(clips)] for i in range(14)])[:30 * SAMPLE_RATE]
    words = whisper.transcribe(signal)
    spoken = 4 * signal.size / SAMPLE_RATE / (sum(c.size for c in clips) / len(clips) / SAMPLE_RATE)
    assert 0.6 * spoken <= len(words) <= 1.3 * spoken
    assert max(len(words_in(words, start, start + 4)) for start in range(0, 30, 4)) <= 14
    assert sum(w.text.lower().strip(".,") == "jacket" for w in words) >= 8


def test_speech_that_does_not_repeat_is_left_alone(whisper, monkeypatch):
    """Different SAVEE sentences of two speakers: the guard drops nothing."""
    clips = sorted((SHARED / "savee-audio-16k").glob("*_n1[0-5].flac"))
    signal = np.concatenate([decode_audio(clip, SAMPLE_RATE) for clip in clips])[:30 * SAMPLE_RATE]
    guarded = whisper.transcribe(signal)
    monkeypatch.setattr(transcription, "LOOP_COMPRESSION_RATIO", float("inf"))
    assert [w.text for w in guarded] == [w.text for w in whisper.transcribe(signal)]
    assert len(guarded) >= 40
