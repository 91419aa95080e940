"""The audio features' own signal analyses compute what librosa 0.11 computes, on real speech."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from emotion_models.features import dsp
from emotion_models.features.audio import PROSODY_FRAME, PROSODY_HOP, utterance_statistics
from emotion_models.features.media import decode_audio
from emotion_models.params import AudioFeatureConfig
from tests.conftest import RAVDESS, SAVEE, TESS, require_shared

RATE = 16000


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    """Clips of three corpora (different speakers, levels, silences), float32 and float64."""
    require_shared()
    paths = [RAVDESS / "Actor_03" / "03-01-05-02-01-01-03.wav", TESS / "YAF_sad" / "YAF_bath_sad.flac",
             SAVEE / "JE_su07.flac"]
    signals = [decode_audio(str(p), RATE) for p in paths]
    return signals + [s.astype(np.float64) for s in signals]


def same(ours: np.ndarray, theirs: np.ndarray, tolerance: float = 1e-12) -> None:
    """Equal shapes and dtypes, values within ``tolerance`` of the largest (the default: double rounding)."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours.shape, theirs.shape, ours.dtype)
    assert np.abs(ours - theirs).max() <= tolerance * np.abs(theirs).max()


def test_spectra_and_frame_statistics_equal_librosas(speech):
    for signal in speech:
        magnitude = dsp.stft_magnitude(signal, PROSODY_FRAME, PROSODY_HOP)
        same(magnitude, np.abs(librosa.stft(signal, n_fft=PROSODY_FRAME, hop_length=PROSODY_HOP)))
        same(dsp.spectral_centroid(magnitude, RATE), librosa.feature.spectral_centroid(S=magnitude, sr=RATE)[0])
        same(dsp.spectral_rolloff(magnitude, RATE), librosa.feature.spectral_rolloff(S=magnitude, sr=RATE)[0])
        same(dsp.spectral_flatness(magnitude), librosa.feature.spectral_flatness(S=magnitude)[0])
        same(dsp.rms(signal, PROSODY_FRAME, PROSODY_HOP),
             librosa.feature.rms(y=signal, frame_length=PROSODY_FRAME, hop_length=PROSODY_HOP)[0])
        same(dsp.zero_crossing_rate(signal, PROSODY_FRAME, PROSODY_HOP),
             librosa.feature.zero_crossing_rate(signal, frame_length=PROSODY_FRAME, hop_length=PROSODY_HOP)[0])


def test_pitch_equals_librosas_yin(speech):
    for signal in speech:
        ours = dsp.yin(signal, 60, 500, RATE, PROSODY_FRAME, PROSODY_HOP)
        theirs = librosa.yin(signal, fmin=60, fmax=500, sr=RATE, frame_length=PROSODY_FRAME, hop_length=PROSODY_HOP)
        same(ours, theirs, 1e-3)  # the same trough in every frame; its refinement to FFT rounding
        assert np.abs(ours - theirs).max() < 1.0  # Hz
        assert 80 < np.median(ours) < 400  # a speaking voice


def test_mfccs_and_deltas_equal_librosas(speech):
    for signal in speech:
        ours = dsp.mfcc(signal, RATE, 13, 512, 160)
        theirs = librosa.feature.mfcc(y=signal, sr=RATE, n_mfcc=13, n_fft=512, hop_length=160)
        same(ours, theirs, 1e-6)
        for order in (1, 2):  # Savitzky-Golay in float32: equal to rounding
            same(dsp.delta(theirs, order), librosa.feature.delta(theirs, order=order), 1e-5)
    with pytest.raises(ValueError, match="at least 9 frames"):
        dsp.delta(np.zeros((13, 5), np.float32))


def test_silence_trimming_keeps_librosas_range(speech):
    for signal in speech:
        for top_db, length, hop in ((30, 400, 160), (20, 512, 160), (60, 2048, 512)):
            _, theirs = librosa.effects.trim(signal, top_db=top_db, frame_length=length, hop_length=hop)
            assert dsp.trim(signal, top_db, length, hop) == tuple(theirs)
    assert dsp.trim(np.zeros(RATE, np.float32), 30, 400, 160) == tuple(
        librosa.effects.trim(np.zeros(RATE, np.float32), top_db=30, frame_length=400, hop_length=160)[1])


def test_utterance_statistics_are_what_librosa_gave(speech):
    """The audio model's cepstral statistics, as librosa's MFCCs and deltas give them, to rounding."""
    config = AudioFeatureConfig()
    for signal in speech[:3]:
        padded = np.pad(signal, (0, max(0, 9 * config.hop_length - signal.shape[0])))
        mfcc = librosa.feature.mfcc(y=padded, sr=RATE, n_mfcc=config.n_mfcc, n_fft=config.n_fft,
                                    hop_length=config.hop_length)
        delta = librosa.feature.delta(mfcc)
        stats = utterance_statistics(signal, config)
        cepstral = np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)])
        np.testing.assert_allclose(stats[:cepstral.size], cepstral, rtol=1e-4, atol=1e-4)
