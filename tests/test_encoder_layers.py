"""Whisper encoders truncated to their first k layers (audio.features.encoder_layers): the copy of the
packaged tiny.en written to the cache, its outputs, and the errors of a k the model does not have."""

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from emotion_models.features.audio import feature_key, input_shapes, signal_features
from emotion_models.features.speech_encoder import (
    EncoderLayersError,
    encode,
    encoder_layer_count,
    encoder_models,
    layers_model,
    read_model_binary,
    write_truncated_model,
)
from emotion_models.features.transcription import resolve_model, whisper_model
from emotion_models.nets.video import video_feature_key
from emotion_models.params import AudioFeatureConfig, load_params
from tests.media_factory import tone

TINY = "tiny.en"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache, and no truncated model remembered from another test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    layers_model.cache_clear()
    yield tmp_path / "cache" / "emotion-pipeline" / "whisper-encoders"
    layers_model.cache_clear()


def _speechlike() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (tone(1.5, 16000) + 0.05 * rng.standard_normal(24000)).astype(np.float32)


def _encode(folder: str) -> np.ndarray:
    return encode(_speechlike(), folder, "int8", threads=1)


def test_a_copy_with_every_layer_encodes_as_the_model_itself_without_its_decoder(tmp_path):
    source = resolve_model(TINY)
    (tmp_path / "model").mkdir()
    for companion in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / "model" / companion).write_bytes((Path(source) / companion).read_bytes())
    write_truncated_model(Path(source) / "model.bin", tmp_path / "model" / "model.bin", 4)
    assert np.array_equal(_encode(str(tmp_path / "model")), _encode(TINY))
    _, _, full, _ = read_model_binary(Path(source) / "model.bin")
    _, _, copy, _ = read_model_binary(tmp_path / "model" / "model.bin")
    assert [v for v in copy if v.name.startswith("encoder/")] == [v for v in full if v.name.startswith("encoder/")]
    assert {v.name.split("/")[1] for v in copy if v.name.startswith("decoder/layer_")} == {"layer_0", "layer_norm"}
    cut, whole = (next(v for v in variables if v.name == "decoder/embeddings/weight") for variables in (copy, full))
    assert cut.shape == (1, whole.shape[1]) and cut.dtype == whole.dtype  # one row of the token embedding
    assert len(cut.data) * whole.shape[0] == len(whole.data) and whole.data.startswith(cut.data)
    size = (tmp_path / "model" / "model.bin").stat().st_size
    assert size < (Path(source) / "model.bin").stat().st_size / 3  # tiny.en: 75 -> 18 MB


def test_k_layers_are_written_once_and_give_other_outputs(cache):
    folder = layers_model(TINY, 2)
    assert Path(folder).parent == cache and Path(folder).name.endswith("-encoder2-only")
    _, _, variables, _ = read_model_binary(Path(folder) / "model.bin")
    assert encoder_layer_count(variables) == 2
    names = {v.name.split("/")[1] for v in variables if v.name.startswith("encoder/")}
    assert {name for name in names if name.startswith("layer_")} == {"layer_0", "layer_1", "layer_norm"}
    written = (Path(folder) / "model.bin").stat().st_mtime_ns
    layers_model.cache_clear()
    assert layers_model(TINY, 2) == folder and (Path(folder) / "model.bin").stat().st_mtime_ns == written
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left
    full, cut = _encode(TINY), _encode(folder)
    assert cut.shape == full.shape and np.isfinite(cut).all()
    assert np.abs(cut - full).mean() > 0.1
    assert not np.array_equal(_encode(layers_model(TINY, 1)), cut)
    assert whisper_model(folder, "int8", 1).model.is_multilingual is False  # loads as the same Whisper model


def test_the_config_option_reaches_the_features_and_their_key(cache):
    default, second, both = (AudioFeatureConfig(), AudioFeatureConfig(encoder_layers=[2]),
                             AudioFeatureConfig(encoder_layers=[2, 4]))
    assert feature_key(AudioFeatureConfig(encoder_layers=None)) == feature_key(default)  # stores kept
    assert len({feature_key(default), feature_key(second), feature_key(both)}) == 3
    params = load_params()
    video_keys = {video_feature_key(params.model_copy(update={"audio": params.audio.model_copy(
        update={"features": config})})) for config in (AudioFeatureConfig(encoder_layers=None), default, second)}
    assert len(video_keys) == 2  # the video windows' key follows the audio key's rule
    assert encoder_models(TINY, [4]) == [TINY]  # every layer: the model itself, shared with transcription
    assert input_shapes(second)["embedding"] == input_shapes(default)["embedding"] == (768,)
    assert input_shapes(both)["embedding"] == (1536,)
    signal = _speechlike()
    last, cut, joined = (signal_features(signal, config)["embedding"] for config in (default, second, both))
    assert not np.allclose(cut, last)
    assert np.array_equal(joined, np.concatenate([cut, last]))  # in the order of the list


def test_a_layer_count_the_model_lacks_is_a_clear_error(cache):
    with pytest.raises(EncoderLayersError, match=r"encoder_layers 5: .* has encoder layers 1\.\.4"):
        layers_model(TINY, 5)
    for bad in ([0], [], [2, 2]):
        with pytest.raises(ValidationError, match="encoder_layers"):
            AudioFeatureConfig(encoder_layers=bad)
    with pytest.raises(EncoderLayersError, match="local CTranslate2 model folder"):
        layers_model("no-such-whisper", 2)
    assert not cache.exists()
