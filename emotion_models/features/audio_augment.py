"""Waveform augmentation of training clips before the encoder: other rooms, microphones and lines.

Each transform (``audio.waveform_augment.transforms``) makes one augmented copy of every clip,
whose features (Whisper embedding and utterance statistics) are extracted from the augmented
waveform and stored beside the clean ones (``data/features/audio_augmented/<transform>/``, one
incremental store per transform). Training draws a clip's clean row or one of its copies.
The transforms are audiomentations' (always applied, parameters drawn per clip):

- ``noise``: coloured noise (white to brown) at ``noise_snr_db`` signal-to-noise ratio;
- ``reverb``: convolution with a room impulse response synthesised here (exponentially decaying
  noise after the direct path, RT60 drawn from ``reverb_rt60``; nothing is downloaded);
- ``telephone``: the ``telephone_band`` pass band (high-pass then low-pass);
- ``gain``: ``gain_db`` of level change;
- ``mp3``: MP3 at ``mp3_bitrate`` kbit/s and back (fast-mp3-augment, offline);
- ``speed``: tempo changed by ``speed_rate`` (pitch kept); ``pitch``: ``pitch_semitones`` (tempo kept).

A copy is the same for the same clip, transform and ``seed``: the random state is derived from them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile

from emotion_models.features.audio import check_signal, feature_key, signal_features
from emotion_models.features.media import MediaError, decode_audio
from emotion_models.features.shards import Extracted, parameters_key
from emotion_models.params import AudioFeatureConfig, WaveformAugmentConfig

COPY_SEPARATOR = "|"  # an augmented copy's id: "<clip_id>|<transform>"
IMPULSE_RESPONSES = 8  # synthetic rooms the reverb transform draws from


def copy_id(clip_id: str, transform: str) -> str:
    return f"{clip_id}{COPY_SEPARATOR}{transform}"


def clip_of(copy: str) -> str:
    """The clean clip's id of an augmented copy's id."""
    return copy.rsplit(COPY_SEPARATOR, 1)[0]


def transform_key(features: AudioFeatureConfig, config: WaveformAugmentConfig, transform: str) -> str:
    """Cache key of one transform's store: the features' key, the transform's parameters and the seed."""
    return parameters_key({"features": feature_key(features), "transform": transform, "seed": config.seed,
                           "parameters": config.model_dump(include=set(PARAMETERS[transform]))})


PARAMETERS = {"noise": ("noise_snr_db",), "reverb": ("reverb_rt60",), "telephone": ("telephone_band",),
              "gain": ("gain_db",), "mp3": ("mp3_bitrate",), "speed": ("speed_rate",),
              "pitch": ("pitch_semitones",)}


def impulse_responses(folder: Path, config: WaveformAugmentConfig, sample_rate: int) -> list[Path]:
    """``IMPULSE_RESPONSES`` synthetic room responses as WAV files in ``folder`` (written once):
    a direct path then Gaussian noise decaying by 60 dB over an RT60 spread over ``reverb_rt60``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    files = []
    for number, rt60 in enumerate(np.linspace(*config.reverb_rt60, IMPULSE_RESPONSES)):
        path = folder / f"room-{config.seed}-{number}-{rt60:.2f}s.wav"
        length = int(rt60 * sample_rate)
        tail = rng.standard_normal(length) * np.exp(-6.9 * np.arange(length) / length)  # -60 dB at rt60
        response = np.concatenate([[1.0], np.zeros(int(0.003 * sample_rate)), 0.5 * tail / np.abs(tail).max()])
        if not path.is_file():  # written aside and renamed: extraction workers may write the same room at once
            partial = path.with_name(f".{path.stem}-{os.getpid()}.wav")
            soundfile.write(partial, (response / np.abs(response).sum() ** 0.5).astype(np.float32), sample_rate)
            os.replace(partial, path)
        files.append(path)
    return files


def build_transform(name: str, config: WaveformAugmentConfig, sample_rate: int, ir_folder: Path):
    """The audiomentations transform ``name`` (always applied)."""
    import audiomentations as am

    if name == "noise":
        return am.AddColorNoise(min_snr_db=config.noise_snr_db[0], max_snr_db=config.noise_snr_db[1], p=1.0)
    if name == "reverb":
        return am.ApplyImpulseResponse(impulse_responses(ir_folder, config, sample_rate), p=1.0)
    if name == "telephone":
        low, high = config.telephone_band
        return am.Compose([am.HighPassFilter(min_cutoff_freq=low, max_cutoff_freq=low, p=1.0),
                           am.LowPassFilter(min_cutoff_freq=high, max_cutoff_freq=high, p=1.0)])
    if name == "gain":
        return am.Gain(min_gain_db=config.gain_db[0], max_gain_db=config.gain_db[1], p=1.0)
    if name == "mp3":
        return am.Mp3Compression(min_bitrate=config.mp3_bitrate[0], max_bitrate=config.mp3_bitrate[1], p=1.0)
    if name == "speed":
        return am.TimeStretch(min_rate=config.speed_rate[0], max_rate=config.speed_rate[1],
                              leave_length_unchanged=False, p=1.0)
    if name == "pitch":
        return am.PitchShift(min_semitones=config.pitch_semitones[0], max_semitones=config.pitch_semitones[1], p=1.0)
    raise ValueError(f"unknown waveform transform '{name}' (known: {', '.join(PARAMETERS)})")


def augment(signal: np.ndarray, sample_rate: int, name: str, config: WaveformAugmentConfig, key: str,
            ir_folder: Path) -> np.ndarray:
    """``signal`` through transform ``name``, the same for the same ``key`` (the clip's id) and seed.
    audiomentations draws from NumPy's and Python's global generators: they are seeded from the key
    and restored afterwards."""
    import random

    seed = int.from_bytes(hashlib.sha256(f"{config.seed}:{name}:{key}".encode()).digest()[:4], "little")
    transform = build_transform(name, config, sample_rate, ir_folder)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        np.random.seed(seed)
        random.seed(seed)
        out = transform(samples=np.asarray(signal, dtype=np.float32), sample_rate=sample_rate)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def featurise_augmented(row: dict, config: AudioFeatureConfig, augment_config: WaveformAugmentConfig,
                        transform: str, ir_folder: str, threads: int = 0) -> Extracted:
    """Features of the augmented copy of a manifest row (its ``clip_id`` is the copy's id), or the reason
    it was rejected (never raises)."""
    source = clip_of(row["clip_id"])
    try:
        signal = decode_audio(row["path"], config.sample_rate)
        check_signal(signal, config, row["path"])
        signal = augment(signal, config.sample_rate, transform, augment_config, source, Path(ir_folder))
        return Extracted(row, signal_features(signal, config, threads))
    except MediaError as exc:
        return Extracted(row, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a worker must report, not crash the batch
        return Extracted(row, reason=f"{row['path']} ({transform}): {type(exc).__name__}: {exc}")
