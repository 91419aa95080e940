"""Waveform augmentation of training clips (emotion_models/features/audio_augment.py)."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_models.features.audio_augment import PARAMETERS, augment, clip_of, copy_id
from emotion_models.params import WaveformAugmentConfig
from tests.conftest import REPO

RATE = 16000


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    """2 s of a voiced sound: 150 Hz harmonics up to 6 kHz with a syllable-rate envelope."""
    t = np.arange(2 * RATE) / RATE
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 40))
    return (0.3 * tone / np.abs(tone).max() * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def band_share(signal: np.ndarray, low: float, high: float) -> float:
    """Share of the signal's energy between ``low`` and ``high`` Hz."""
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(signal.size, 1 / RATE)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_each_transform_is_deterministic_per_clip_and_seed(name, voice, tmp_path):
    config = WaveformAugmentConfig()
    first = augment(voice, RATE, name, config, "clip-1", tmp_path)
    assert np.array_equal(first, augment(voice, RATE, name, config, "clip-1", tmp_path))
    assert not np.array_equal(first[: voice.size], voice[: first.size])
    other_seed = augment(voice, RATE, name, config.model_copy(update={"seed": 1}), "clip-1", tmp_path)
    other_clip = augment(voice, RATE, name, config, "clip-2", tmp_path)
    if name != "telephone":  # a fixed filter: the same for every clip
        assert not (np.array_equal(first, other_seed) and np.array_equal(first, other_clip))
    state = np.random.get_state()[1].copy()
    augment(voice, RATE, name, config, "clip-1", tmp_path)
    assert np.array_equal(state, np.random.get_state()[1])  # the global generator is left as it was


def test_noise_lands_in_the_snr_range(voice, tmp_path):
    config = WaveformAugmentConfig(noise_snr_db=(10.0, 20.0))
    noisy = augment(voice, RATE, "noise", config, "c", tmp_path)
    snr = 10 * np.log10(np.mean(voice**2) / np.mean((noisy - voice) ** 2))
    assert 9.0 < snr < 21.0


def test_telephone_keeps_the_voice_band_only(voice, tmp_path):
    line = augment(voice, RATE, "telephone", WaveformAugmentConfig(), "c", tmp_path)
    assert band_share(line, 4500, 8000) < 0.1 * band_share(voice, 4500, 8000)
    assert band_share(line, 0, 200) < 0.5 * band_share(voice, 0, 200)


def test_gain_changes_level_within_range(voice, tmp_path):
    louder = augment(voice, RATE, "gain", WaveformAugmentConfig(gain_db=(-6.0, -3.0)), "c", tmp_path)
    change = 20 * np.log10(np.sqrt(np.mean(louder**2) / np.mean(voice**2)))
    assert -6.1 < change < -2.9


def test_speed_changes_duration_and_pitch_keeps_it(voice, tmp_path):
    faster = augment(voice, RATE, "speed", WaveformAugmentConfig(speed_rate=(1.2, 1.25)), "c", tmp_path)
    assert 0.78 * voice.size < faster.size < 0.85 * voice.size
    higher = augment(voice, RATE, "pitch", WaveformAugmentConfig(pitch_semitones=(3.0, 3.0)), "c", tmp_path)
    assert higher.size == voice.size
    spectrum = lambda s: np.abs(np.fft.rfft(s[RATE // 2: RATE]))  # noqa: E731
    peak = lambda s: np.fft.rfftfreq(RATE // 2, 1 / RATE)[np.argmax(spectrum(s))]  # noqa: E731
    assert peak(higher) == pytest.approx(peak(voice) * 2 ** (3 / 12), rel=0.05)


def test_reverb_spreads_energy_in_time(voice, tmp_path):
    burst = np.zeros(RATE, np.float32)
    burst[1000:1400] = voice[:400]
    wet = augment(burst, RATE, "reverb", WaveformAugmentConfig(reverb_rt60=(0.5, 0.5)), "c", tmp_path)
    assert np.abs(wet[3000:6000]).max() > 0.01 and np.abs(burst[3000:6000]).max() == 0


def test_copy_ids_round_trip():
    assert clip_of(copy_id("ravdess|Actor_01/a.wav", "noise")) == "ravdess|Actor_01/a.wav"


def test_training_draws_the_clean_clip_or_each_copy():
    from emotion_models.nets.audio import draw_augmented_copy

    copies = {"a": [{"embedding": np.full(2, 1.0)}, {"embedding": np.full(2, 2.0)}]}
    draw = draw_augmented_copy(copies)
    rng = np.random.default_rng(0)
    sample = {"clip_id": "a", "label": 3, "embedding": np.zeros(2), "stats": np.zeros(1)}
    drawn = [draw(sample, rng) for _ in range(300)]
    counts = np.bincount([int(d["embedding"][0]) for d in drawn], minlength=3)
    assert counts.min() > 70  # clean, copy 1 and copy 2 about equally often
    assert all(d["label"] == 3 and d["stats"] is sample["stats"] for d in drawn)
    assert draw({**sample, "clip_id": "b"}, rng)["embedding"] is sample["embedding"]  # no copies: the clip


def test_augmented_copies_are_extracted_once_per_transform(in_tmp_project, voice):
    import polars as pl
    import soundfile

    from emotion_models.nets.audio import AudioSpec
    from emotion_models.params import load_params
    from tasks.features import extract_augmented

    rows = []
    for number in range(2):
        path = in_tmp_project / f"clip{number}.wav"
        soundfile.write(path, voice, RATE)
        rows.append({"clip_id": f"c{number}", "path": str(path), "dataset": "corpus", "speaker_id": "s",
                     "label": 0, "modality": "audio"})
    manifest = pl.DataFrame(rows)
    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={"audio": params.audio.model_copy(update={
        "features": params.audio.features.model_copy(update={"workers": 1}),
        "waveform_augment": params.audio.waveform_augment.model_copy(update={"transforms": ["gain"]})})})
    assert extract_augmented(AudioSpec(), params, manifest) == {"gain": (2, 0)}
    assert extract_augmented(AudioSpec(), params, manifest) == {"gain": (0, 0)}  # incremental
    copies = AudioSpec().augmented_copies(params)
    width = 768 * len(params.audio.features.encoder_layers or [None])  # tiny.en: 768 per encoder cut
    assert set(copies) == {"c0", "c1"} and copies["c0"][0]["embedding"].shape == (width,)


def test_without_waveform_transforms_the_stage_still_makes_its_declared_out(in_tmp_project):
    """dvc.yaml declares data/features/audio_augmented: with no transform on, it is an empty folder."""
    import polars as pl

    from emotion_models.nets.audio import AudioSpec
    from emotion_models.params import load_params
    from tasks.features import extract_augmented

    params = load_params(REPO / "params.yaml")
    params = params.model_copy(update={"audio": params.audio.model_copy(update={
        "waveform_augment": params.audio.waveform_augment.model_copy(update={"transforms": []})})})
    manifest = pl.DataFrame([{"clip_id": "c0", "path": "clip0.wav", "dataset": "corpus", "speaker_id": "s",
                              "label": 0, "modality": "audio"}])
    assert extract_augmented(AudioSpec(), params, manifest) == {}
    assert (in_tmp_project / "data" / "features" / "audio_augmented").is_dir()
