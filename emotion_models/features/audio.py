"""The audio model's inputs: a speech representation of the clip and its utterance statistics.

A clip is decoded to mono 16 kHz and its leading and trailing silence trimmed. Then, by
``representation``:
- ``whisper_encoder`` (default): the mean and std over time of the Whisper encoder's outputs for
  the clip's own frames (``speech_encoder``), 768 values for tiny.en; silence is trimmed on 25 ms
  frames, keeping ``trim_margin`` around the speech;
- ``mfcc_cnn`` (the original system): the trimmed clip is centre-cropped (longer clips) or
  zero-padded equally on both sides (shorter clips) to a fixed window, and turned into a 3-channel
  image of shape (3, frames, n_mfcc) = (3, 126, 13) for 4 s: channel 0 the MFCCs, 1 their delta
  (first time derivative), 2 the delta-delta (second derivative).

Beside either, each clip gets a vector of utterance statistics (``utterance_statistics``):
the mean and standard deviation over the whole trimmed clip of every MFCC and delta, and the
prosody that 13 MFCCs leave out: pitch level, range and movement, voicing, loudness dynamics and
spectral shape. Measured on the shared RAVDESS actors (3 speaker folds, an SVM on these values
alone): MFCC statistics 54%, with prosody 59%, so the audio model's head sees them next to the CNN.
With ``egemaps`` on, openSMILE's 88 eGeMAPS functionals of the same trimmed clip follow
(``features.egemaps``).
"""

from __future__ import annotations

import numpy as np

from emotion_models.features import dsp
from emotion_models.features.egemaps import egemaps_functionals, egemaps_names
from emotion_models.features.media import MediaError, decode_audio
from emotion_models.features.shards import Extracted, parameters_key
from emotion_models.features.speech_encoder import embedding_size, encoder_embedding, encoder_models
from emotion_models.params import AudioFeatureConfig


class SilentAudioError(MediaError):
    """The clip is silent or too short to carry emotion."""


def window_samples(config: AudioFeatureConfig) -> int:
    return int(round(config.window_seconds * config.sample_rate))


def n_frames(config: AudioFeatureConfig) -> int:
    return 1 + window_samples(config) // config.hop_length


def image_shape(config: AudioFeatureConfig) -> tuple[int, int, int]:
    return 3, n_frames(config), config.n_mfcc


WINDOW_PREFIX = "audio_"  # a video window's audio arrays: audio_embedding (or audio_mfcc) and audio_stats


def representation_name(config: AudioFeatureConfig) -> str:
    """The array name of the clip's representation: "embedding" (whisper_encoder) or "mfcc"."""
    return "mfcc" if config.representation == "mfcc_cnn" else "embedding"


def input_shapes(config: AudioFeatureConfig) -> dict[str, tuple[int, ...]]:
    """Shape of one clip's arrays: the representation and the utterance statistics ("stats")."""
    if config.representation == "mfcc_cnn":
        main: tuple[int, ...] = image_shape(config)
    else:
        main = (sum(embedding_size(model, config.encoder_compute_type)
                    for model in encoder_models(config.encoder_model, config.encoder_layers)),)
    return {representation_name(config): main, "stats": (statistics_size(config),)}


PROSODY_NAMES = (
    "log_f0_mean", "log_f0_std", "log_f0_p10", "log_f0_p90", "log_f0_range", "log_f0_abs_slope", "log_f0_slope_std",
    "voiced_share", "level_db_std", "level_db_range", "level_db_abs_slope", "log_centroid_mean", "log_centroid_std",
    "flatness_mean", "log_rolloff_mean", "zero_crossing_mean", "zero_crossing_std",
)  # absolute level and clip duration are left out: they depend on the recording, not the speaker
PROSODY_FRAME, PROSODY_HOP = 1024, 256
VOICED_DB = 25.0  # a voiced frame is at most this far below the loudest one ...
VOICED_ZCR = 0.2  # ... and crosses zero less often than this (noise and fricatives cross more)
FALLBACK_F0 = 150.0  # pitch statistics of a clip with almost no voiced frames


def statistics_names(config: AudioFeatureConfig) -> tuple[str, ...]:
    """Name of each utterance statistic, in vector order: mean and std of each MFCC and delta, prosody,
    then (``egemaps``) the eGeMAPS functionals."""
    cepstral = [f"{kind}{i}_{stat}" for kind in ("mfcc", "delta") for stat in ("mean", "std")
                for i in range(config.n_mfcc)]
    egemaps = [f"egemaps_{name}" for name in egemaps_names()] if config.egemaps else []
    return (*cepstral, *PROSODY_NAMES, *egemaps)


def statistics_size(config: AudioFeatureConfig) -> int:
    """Length of the utterance statistics vector."""
    return len(statistics_names(config))


def feature_fields(config: AudioFeatureConfig) -> dict:
    """The parameters that change the features; ``egemaps`` off and ``encoder_layers`` None are left out,
    so they keep the key of the stores extracted before those options existed."""
    unchanged = ({"workers", "shard_rows"} | (set() if config.egemaps else {"egemaps"})
                 | (set() if config.encoder_layers else {"encoder_layers"}))
    return config.model_dump(exclude=unchanged)


def feature_key(config: AudioFeatureConfig) -> str:
    """A short hash of ``feature_fields`` (cache key for extraction)."""
    return parameters_key(feature_fields(config))


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
    mfcc = dsp.mfcc(window, config.sample_rate, config.n_mfcc, config.n_fft, config.hop_length)
    delta = dsp.delta(mfcc, order=1)
    delta2 = dsp.delta(mfcc, order=2)
    return np.stack([mfcc, delta, delta2]).transpose(0, 2, 1).astype(np.float32)


def utterance_statistics(signal: np.ndarray, config: AudioFeatureConfig) -> np.ndarray:
    """(statistics_size,) float32 summary of a whole clip, ordered as ``statistics_names``.

    Pitch is YIN's estimate (``pitch_fmin``..``pitch_fmax`` Hz) on voiced frames; probabilistic
    YIN changed accuracy little and costs 50 times more, which video scoring pays per window.
    """
    rate = config.sample_rate
    egemaps = [egemaps_functionals(signal, rate)] if config.egemaps else []
    signal = np.pad(signal, (0, max(0, 9 * config.hop_length - signal.shape[0])))  # delta needs 9 frames
    mfcc = dsp.mfcc(signal, rate, config.n_mfcc, config.n_fft, config.hop_length)
    delta = dsp.delta(mfcc, order=1)
    cepstral = [mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]

    f0 = dsp.yin(signal, config.pitch_fmin, config.pitch_fmax, rate, PROSODY_FRAME, PROSODY_HOP)
    level = 20 * np.log10(dsp.rms(signal, PROSODY_FRAME, PROSODY_HOP) + 1e-5)
    crossings = dsp.zero_crossing_rate(signal, PROSODY_FRAME, PROSODY_HOP)
    frames = min(f0.size, level.size, crossings.size)
    f0, level, crossings = f0[:frames], level[:frames], crossings[:frames]
    voiced = (level > level.max() - VOICED_DB) & (crossings < VOICED_ZCR)
    log_f0 = np.log(f0[voiced] if voiced.sum() > 3 else np.full(4, FALLBACK_F0))
    slope = np.diff(log_f0)
    spectrum = dsp.stft_magnitude(signal, PROSODY_FRAME, PROSODY_HOP)
    log_centroid = np.log(dsp.spectral_centroid(spectrum, rate) + 1.0)
    log_rolloff = np.log(dsp.spectral_rolloff(spectrum, rate) + 1.0)
    p10, p90 = np.percentile(log_f0, [10, 90])
    level_p10, level_p90 = np.percentile(level, [10, 90])
    prosody = [log_f0.mean(), log_f0.std(), p10, p90, p90 - p10, np.abs(slope).mean(), slope.std(),
               voiced.mean(), level.std(), level_p90 - level_p10, np.abs(np.diff(level)).mean(),
               log_centroid.mean(), log_centroid.std(), dsp.spectral_flatness(spectrum).mean(),
               log_rolloff.mean(), crossings.mean(), crossings.std()]
    return np.nan_to_num(np.concatenate([*cepstral, prosody, *egemaps]).astype(np.float32))


ENCODER_FRAME, ENCODER_HOP = 400, 160  # Whisper's 25 ms mel frames, 10 ms apart
MIN_SPEECH_SECONDS = 0.1  # a shorter trimmed piece keeps the untrimmed signal


def trim_silence(signal: np.ndarray, config: AudioFeatureConfig) -> np.ndarray:
    """Cut leading and trailing silence (``trim_db`` below the peak), so the clip holds speech.

    mfcc_cnn trims on its MFCC frames; whisper_encoder on Whisper's 25 ms frames and keeps
    ``trim_margin`` seconds on each side (the onset and release of the voice)."""
    if config.trim_db is None:
        return signal
    if config.representation == "mfcc_cnn":
        start, end = dsp.trim(signal, config.trim_db, config.n_fft, config.hop_length)
        return signal[start:end] if end > start else signal
    start, end = dsp.trim(signal, config.trim_db, ENCODER_FRAME, ENCODER_HOP)
    margin = int(round(config.trim_margin * config.sample_rate))
    start, end = max(0, start - margin), min(signal.size, end + margin)
    return signal[start:end] if end - start >= MIN_SPEECH_SECONDS * config.sample_rate else signal


def signal_features(signal: np.ndarray, config: AudioFeatureConfig, threads: int = 0,
                    workers: int = 1) -> dict[str, np.ndarray]:
    """The audio model's inputs for a mono signal at ``sample_rate``: its representation
    (``embedding`` or ``mfcc``, see ``input_shapes``) and utterance ``stats``, both of the trimmed
    signal. Training clips and video windows go through this same function. ``threads`` and
    ``workers``: the Whisper encoder's CPU threads per worker (0: the cores split between the
    workers, at most 4) and workers (features.transcription.whisper_model)."""
    speech = trim_silence(signal, config)
    if config.representation == "mfcc_cnn":
        representation = mfcc_image(speech, config)
    else:
        representation = np.concatenate([
            encoder_embedding(speech, model, config.encoder_compute_type, threads, workers)
            for model in encoder_models(config.encoder_model, config.encoder_layers)])
    return {representation_name(config): representation, "stats": utterance_statistics(speech, config)}


def clip_features(path: str, config: AudioFeatureConfig, threads: int = 0) -> dict[str, np.ndarray]:
    """Decode, check, trim and featurise one clip (any container PyAV reads): see ``signal_features``."""
    signal = decode_audio(path, config.sample_rate)
    check_signal(signal, config, path)
    return signal_features(signal, config, threads)


def featurise_audio(row: dict, config: AudioFeatureConfig, threads: int = 0) -> Extracted:
    """The audio model's inputs for one manifest row, or the reason it was rejected (never raises)."""
    try:
        return Extracted(row, clip_features(row["path"], config, threads))
    except MediaError as exc:
        return Extracted(row, reason=str(exc))
    except Exception as exc:  # a worker must report, not crash the batch
        return Extracted(row, reason=f"{row['path']}: {type(exc).__name__}: {exc}")
