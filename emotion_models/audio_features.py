"""MFCC images for the audio model.

A clip is decoded to mono 16 kHz, its leading and trailing silence trimmed, then centre-cropped
(longer clips) or zero-padded equally on both sides (shorter clips) to a fixed window, and turned into a 3-channel image of shape
(3, frames, n_mfcc) = (3, 126, 13) for 4 s: channel 0 the MFCCs, 1 their delta (first time
derivative), 2 the delta-delta (second derivative).
"""

from __future__ import annotations

import librosa
import numpy as np

from emotion_models.media import MediaError, decode_audio
from emotion_models.params import AudioFeatureConfig
from emotion_models.shards import Extracted, parameters_key


class SilentAudioError(MediaError):
    """The clip is silent or too short to carry emotion."""


def window_samples(config: AudioFeatureConfig) -> int:
    return int(round(config.window_seconds * config.sample_rate))


def n_frames(config: AudioFeatureConfig) -> int:
    return 1 + window_samples(config) // config.hop_length


def image_shape(config: AudioFeatureConfig) -> tuple[int, int, int]:
    return 3, n_frames(config), config.n_mfcc


def feature_key(config: AudioFeatureConfig) -> str:
    """A short hash of the parameters that change the features (cache key for extraction)."""
    return parameters_key(config.model_dump(exclude={"workers", "shard_rows"}))


def fix_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop a longer signal, or zero-pad a shorter one equally on both sides."""
    if signal.shape[0] >= length:
        start = (signal.shape[0] - length) // 2
        return signal[start:start + length]
    missing = length - signal.shape[0]
    return np.pad(signal, (missing // 2, missing - missing // 2))


def check_signal(signal: np.ndarray, config: AudioFeatureConfig, source: str) -> None:
    """Raise SilentAudioError for clips that are too short or silent."""
    seconds = signal.shape[0] / config.sample_rate
    if seconds < config.min_seconds:
        raise SilentAudioError(f"{source}: too short ({seconds:.2f} s < {config.min_seconds} s)")
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
    if rms < config.silence_rms:
        raise SilentAudioError(f"{source}: silent (RMS {rms:.2e} < {config.silence_rms:.0e})")


def mfcc_image(signal: np.ndarray, config: AudioFeatureConfig) -> np.ndarray:
    """(3, frames, n_mfcc) float32: MFCC, delta and delta-delta of a fixed-length window."""
    window = fix_length(signal, window_samples(config))
    mfcc = librosa.feature.mfcc(y=window, sr=config.sample_rate, n_mfcc=config.n_mfcc,
                                n_fft=config.n_fft, hop_length=config.hop_length)
    delta = librosa.feature.delta(mfcc, order=1)
    delta2 = librosa.feature.delta(mfcc, order=2)
    return np.stack([mfcc, delta, delta2]).transpose(0, 2, 1).astype(np.float32)


def trim_silence(signal: np.ndarray, config: AudioFeatureConfig) -> np.ndarray:
    """Cut leading and trailing silence (``trim_db`` below the peak), so the window holds speech."""
    if config.trim_db is None:
        return signal
    trimmed, _ = librosa.effects.trim(signal, top_db=config.trim_db, frame_length=config.n_fft,
                                      hop_length=config.hop_length)
    return trimmed if trimmed.size else signal


def clip_features(path: str, config: AudioFeatureConfig) -> np.ndarray:
    """Decode, check, trim and featurise one clip (any container PyAV reads)."""
    signal = decode_audio(path, config.sample_rate)
    check_signal(signal, config, path)
    return mfcc_image(trim_silence(signal, config), config)


def featurise_audio(row: dict, config: AudioFeatureConfig) -> Extracted:
    """MFCC image of one manifest row, or the reason it was rejected (never raises)."""
    try:
        return Extracted(row, {"mfcc": clip_features(row["path"], config)})
    except MediaError as exc:
        return Extracted(row, reason=str(exc))
    except Exception as exc:  # a worker must report, not crash the batch
        return Extracted(row, reason=f"{row['path']}: {type(exc).__name__}: {exc}")
