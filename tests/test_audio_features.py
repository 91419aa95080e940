"""The audio model's inputs from real and generated clips (Whisper encoder embedding, MFCC image,
utterance statistics; every container); bad files become rejects, never crashes."""

import subprocess
import sys
from functools import partial

import numpy as np
import pytest

from emotion_models.features.audio import (
    SilentAudioError,
    clip_features,
    feature_key,
    featurise_audio,
    fix_length,
    image_shape,
    input_shapes,
    mfcc_image,
    signal_features,
    statistics_names,
    statistics_size,
    utterance_statistics,
)
from emotion_models.features.egemaps import egemaps_functionals, egemaps_names
from emotion_models.features.media import MediaError, decode_audio
from emotion_models.features.shards import FeatureStore, extract, parameters_key
from emotion_models.features.speech_encoder import encode
from emotion_models.params import AudioFeatureConfig
from tests.conftest import RAVDESS, REPO, SAVEE, TESS, require_shared
from tests.media_factory import tone, write_audio

ENCODER = AudioFeatureConfig()  # the default: Whisper encoder embedding
CONFIG = AudioFeatureConfig(representation="mfcc_cnn")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_encoder_representation_of_real_clips():
    require_shared()
    clips = [SAVEE / "DC_a01.flac", SAVEE / "JE_n01.flac", RAVDESS / "Actor_05" / "03-01-05-02-01-01-05.wav"]
    features = [clip_features(str(path), ENCODER) for path in clips]
    assert input_shapes(ENCODER) == {"embedding": (768,), "stats": (69,)}
    for found in features:
        assert found["embedding"].shape == (768,) and found["embedding"].dtype == np.float32
        assert np.isfinite(found["embedding"]).all() and (found["embedding"][384:] > 0).all()  # second half: std
        assert found["stats"].shape == (69,) and np.isfinite(found["stats"]).all()
    again = clip_features(str(clips[0]), ENCODER)
    assert np.array_equal(again["embedding"], features[0]["embedding"])  # deterministic
    for i, j in ((0, 1), (0, 2), (1, 2)):  # other speaker, emotion or corpus: another point
        assert np.abs(features[i]["embedding"] - features[j]["embedding"]).max() > 0.1


def test_silence_around_speech_does_not_change_the_encoder_representation():
    require_shared()
    speech = decode_audio(SAVEE / "JE_sa05.flac", 16000)
    padded = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(24000, np.float32)])
    assert _cosine(signal_features(padded, ENCODER)["embedding"], signal_features(speech, ENCODER)["embedding"]) > 0.999
    untrimmed = ENCODER.model_copy(update={"trim_db": None})
    assert _cosine(signal_features(padded, untrimmed)["embedding"], signal_features(speech, ENCODER)["embedding"]) < 0.99


def test_encoder_takes_the_clips_own_frames_and_long_audio_in_30_s_pieces():
    assert encode(np.zeros(16000, np.float32), "tiny.en", "int8").shape == (51, 384)  # 101 mel frames, no padding
    assert encode(tone(31.0, 16000), "tiny.en", "int8").shape == (1551, 384)  # 3101 frames: 3000 + 101


def test_image_is_three_channels_of_126_frames_by_13_coefficients():
    assert image_shape(CONFIG) == (3, 126, 13)
    image = mfcc_image(tone(4.0, 16000), CONFIG)
    assert image.shape == (3, 126, 13) and image.dtype == np.float32
    # channel 1 is the delta of channel 0: a steady tone has near-zero deltas in the middle
    assert np.abs(image[1, 20:100]).mean() < np.abs(image[0, 20:100]).mean() / 10


def test_fix_length_centre_crops_and_centre_pads():
    signal = np.arange(10, dtype=np.float32)
    assert fix_length(signal, 4).tolist() == [3, 4, 5, 6]
    padded = fix_length(signal, 14)
    assert padded.tolist() == [0, 0] + list(range(10)) + [0, 0]


def test_real_ravdess_clip():
    require_shared()
    features = clip_features(str(RAVDESS / "Actor_05" / "03-01-05-02-01-01-05.wav"), CONFIG)
    assert features["mfcc"].shape == (3, 126, 13) and np.isfinite(features["mfcc"]).all()
    assert features["stats"].shape == (statistics_size(CONFIG),) == (69,) and np.isfinite(features["stats"]).all()
    # actor 05 is a man: his speaking pitch lies well inside 65-300 Hz
    assert 65 < np.exp(features["stats"][statistics_names(CONFIG).index("log_f0_mean")]) < 300


def _prosody(signal: np.ndarray) -> dict[str, float]:
    return dict(zip(statistics_names(CONFIG), utterance_statistics(signal, CONFIG)))


def test_utterance_statistics_follow_pitch_and_loudness():
    t = np.arange(32000) / 16000
    low, high = (0.3 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (110, 220))
    assert np.exp(_prosody(low)["log_f0_mean"]) == pytest.approx(110, rel=0.03)
    assert np.exp(_prosody(high)["log_f0_mean"]) == pytest.approx(220, rel=0.03)
    glide = (0.3 * np.sin(2 * np.pi * (110 * t + 55 * t**2))).astype(np.float32)  # 110 -> 330 Hz
    assert _prosody(glide)["log_f0_range"] > 0.5 > _prosody(high)["log_f0_range"]
    swell = high * np.linspace(0.05, 1.0, t.size, dtype=np.float32)
    assert _prosody(swell)["level_db_std"] > 5 * _prosody(high)["level_db_std"]
    assert _prosody(high)["voiced_share"] > 0.9


EGEMAPS = AudioFeatureConfig(egemaps=True)


def test_egemaps_functionals_follow_the_statistics_and_hear_pitch_and_loudness():
    assert statistics_size(EGEMAPS) == statistics_size(ENCODER) + 88 == 157
    assert input_shapes(EGEMAPS)["stats"] == (157,)  # the audio model's input, in training and scoring
    names = statistics_names(EGEMAPS)
    assert names[:69] == statistics_names(ENCODER) and names[69] == "egemaps_F0semitoneFrom27.5Hz_sma3nz_amean"
    t = np.arange(32000) / 16000
    low, high = (0.3 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (110, 220))
    low_stats, high_stats = utterance_statistics(low, EGEMAPS), utterance_statistics(high, EGEMAPS)
    assert low_stats.shape == (157,) and low_stats.dtype == np.float32 and np.isfinite(low_stats).all()
    assert np.array_equal(high_stats[:69], utterance_statistics(high, ENCODER))  # the hand-made part is unchanged
    semitones = names.index("egemaps_F0semitoneFrom27.5Hz_sma3nz_amean")
    assert high_stats[semitones] - low_stats[semitones] == pytest.approx(12, abs=0.5)  # an octave up
    loudness = names.index("egemaps_loudness_sma3_amean")
    assert utterance_statistics(0.1 * high, EGEMAPS)[loudness] < 0.5 * high_stats[loudness]
    assert np.isfinite(utterance_statistics(np.zeros(8000, np.float32), EGEMAPS)).all()  # no voice: zeros, not NaN


def test_egemaps_are_opensmiles_own_and_load_without_pandas():
    require_shared()
    import opensmile

    signal = decode_audio(str(SAVEE / "DC_a01.flac"), 16000)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    assert egemaps_names() == tuple(smile.feature_names)
    np.testing.assert_allclose(egemaps_functionals(signal, 16000), smile.process_signal(signal, 16000).to_numpy()[0],
                               rtol=1e-6)
    code = ("import sys, numpy as np; from emotion_models.features.egemaps import egemaps_functionals; "
            "print(egemaps_functionals(np.zeros(16000, np.float32), 16000).shape, "
            "[m for m in ('pandas', 'audinterface', 'torch') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["(88,)", "[]"], result.stderr[-2000:]  # a scoring process's start-up


def test_egemaps_of_a_real_clip_file_and_its_signal_agree():
    require_shared()
    path = str(RAVDESS / "Actor_05" / "03-01-05-02-01-01-05.wav")
    from_file = clip_features(path, EGEMAPS)  # the training path (featurise_audio)
    from_signal = signal_features(decode_audio(path, 16000), EGEMAPS)  # a scoring window's path
    assert from_file["stats"].shape == (157,) and np.array_equal(from_file["stats"], from_signal["stats"])
    assert feature_key(EGEMAPS) != feature_key(ENCODER)  # the switch re-extracts the store ...
    before_the_switch = ENCODER.model_dump(exclude={"workers", "shard_rows", "egemaps", "encoder_layers"})
    assert feature_key(ENCODER) == parameters_key(before_the_switch)  # ... and off keeps the stores already made


@pytest.mark.parametrize("codec, suffix, rate", [("flac", "flac", 48000), ("mp3", "mp3", 44100),
                                                 ("pcm_s16le", "wav", 8000)])
def test_other_containers_and_sample_rates(tmp_path, codec, suffix, rate):
    path = write_audio(tmp_path / f"clip.{suffix}", tone(3.0, rate), rate, codec)
    assert clip_features(str(path), CONFIG)["mfcc"].shape == (3, 126, 13)


@pytest.mark.parametrize("codec, suffix, rate", [("flac", "flac", 16000), ("mp3", "mp3", 44100),
                                                 ("libopus", "ogg", 48000), ("aac", "m4a", 44100)])
def test_every_container_gives_the_representation_of_the_same_speech(tmp_path, codec, suffix, rate):
    require_shared()
    original = TESS / "YAF_happy" / "YAF_bath_happy.flac"
    reference = clip_features(str(original), ENCODER)["embedding"]
    speech = decode_audio(original, rate)
    path = write_audio(tmp_path / f"YAF_bath_happy.{suffix}", speech, rate, codec)
    assert _cosine(clip_features(str(path), ENCODER)["embedding"], reference) > 0.98


def test_silent_short_and_unreadable_files_are_explained(tmp_path):
    silent = write_audio(tmp_path / "silent.wav", np.zeros(32000, np.float32), 16000, "pcm_s16le")
    short = write_audio(tmp_path / "short.wav", tone(0.1, 16000), 16000, "pcm_s16le")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(SilentAudioError, match="silent.wav: silent"):
        clip_features(str(silent), CONFIG)
    with pytest.raises(SilentAudioError, match=r"short.wav: too short \(0\.1\d s < 0.3 s\)"):
        clip_features(str(short), CONFIG)
    with pytest.raises(MediaError, match="notes.wav: not a readable media file"):
        clip_features(str(text), CONFIG)
    with pytest.raises(MediaError, match=r"empty.wav: empty file \(0 bytes\)"):
        clip_features(str(empty), CONFIG)


def test_extraction_rejects_bad_files_and_skips_done_work(tmp_path):
    good = write_audio(tmp_path / "good.wav", tone(2.0, 16000), 16000, "pcm_s16le")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    rows = [{"clip_id": "x:good", "path": str(good), "label": 1}, {"clip_id": "x:bad", "path": str(bad), "label": 2}]
    store = FeatureStore(tmp_path / "store", feature_key(CONFIG), "parquet")
    featurise = partial(featurise_audio, config=CONFIG)
    assert extract(rows, featurise, store, workers=1, shard_rows=8) == (1, 1)
    assert store.rejects()["path"].to_list() == [str(bad)]
    assert "bad.wav" in store.rejects()["reason"][0]
    assert extract(rows, featurise, store, workers=1, shard_rows=8) == (0, 0)  # nothing left to do
    (table, arrays), = list(store.iter_shards(["mfcc"], {"mfcc": (3, 126, 13)}))
    assert table["clip_id"].to_list() == ["x:good"] and arrays["mfcc"].shape == (1, 3, 126, 13)
    other = AudioFeatureConfig(n_mfcc=20)
    assert FeatureStore(tmp_path / "store", feature_key(other), "parquet").completed() == set()


def test_parallel_extraction_matches_serial(tmp_path):
    require_shared()
    clips = sorted((RAVDESS / "Actor_02").glob("*.wav"))[:6]
    rows = [{"clip_id": p.name, "path": str(p), "label": 0} for p in clips]
    featurise = partial(featurise_audio, config=CONFIG)
    serial = FeatureStore(tmp_path / "serial", "k", "parquet")
    parallel = FeatureStore(tmp_path / "parallel", "k", "parquet")
    extract(rows, featurise, serial, workers=1, shard_rows=4)
    extract(rows, featurise, parallel, workers=2, shard_rows=4)
    def load(store):
        return {cid: a for t, arr in store.iter_shards(["mfcc"]) for cid, a in zip(t["clip_id"], arr["mfcc"])}
    a, b = load(serial), load(parallel)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    (_, arrays), *_ = list(parallel.iter_shards(["stats"], {"stats": (69,)}))
    assert np.isfinite(arrays["stats"]).all()
