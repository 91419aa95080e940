"""Whisper's encoder as a speech representation: the default input of the audio model.

A clip's log-mel frames (100 per second) go through the Whisper encoder (CTranslate2, int8 on
CPU), which gives one vector per two frames; their mean and standard deviation over time are the
clip's embedding (2 x 384 = 768 values for tiny.en). Only the clip's own frames are encoded:
CTranslate2 accepts any frame count, and a 4 s clip costs ~40 ms instead of the ~0.9 s of a pass
padded to Whisper's 30 s (measured on the shared corpora: padding does not change accuracy).
Longer audio is encoded in pieces of 30 s, the most Whisper's position embeddings cover.

``encoder_layers`` [k, ...] takes the embedding of the outputs after the encoder's first k layers
(then its final layer norm) for each k, concatenated. CTranslate2 returns only the last layer, so a
copy of the model's ``model.bin`` without the variables of layers k and up is written once to the
user's cache and loaded instead (CTranslate2 counts the encoder's layers from the file). The copy
only encodes: its decoder keeps the least CTranslate2 loads (its first layer, a one-row token
embedding), so each copy costs about 15 MiB in memory instead of 70 (tiny.en, int8) and cannot
transcribe. Nothing is downloaded: the source is the local model folder. Measured
with tiny.en on the audio corpora (CASIA in training, speaker-normalised, reverb copies), the model's
head in tasks/cross_validate.py's folds, leave-one-corpus-out mean of 4 corpora over 3 seeds: last
layer 43.5, [2] 53.9, [1, 2] 53.1; RAVDESS 6 folds / SAVEE LOSO / CASIA 4 folds (one seed): last
layer 75.0/75.8/64.5, [2] 77.1/76.7/69.6, [1, 2] 80.8/78.3/71.8, [1, 2, 3, 4] 84.6/78.3/74.8 (its
LOCO 52.6).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emotion_models.atomic import current_umask
from emotion_models.errors import EmotionError
from emotion_models.features.transcription import SAMPLE_RATE, loaded_whisper_model, resolve_model, whisper_model

CHUNK_FRAMES = 3000  # 30 s of mel frames: Whisper's 1500 encoder positions
MODEL_BINARY_VERSION = 6  # the model.bin layout read here (ctranslate2/specs/model_spec.py: _serialize)
ENCODER_LAYER = re.compile(r"encoder/layer_(\d+)/")
DECODER_LAYER = re.compile(r"decoder/layer_(\d+)/")
DECODER_EMBEDDING = "decoder/embeddings/weight"


class EncoderLayersError(EmotionError, ValueError):
    """``encoder_layers`` cannot be applied to the model."""


def _read_string(handle: BinaryIO) -> str:
    (size,) = struct.unpack("<H", handle.read(2))
    return handle.read(size)[:-1].decode("utf-8")  # stored with its terminating NUL


def _write_string(handle: BinaryIO, text: str) -> None:
    data = text.encode("utf-8")
    handle.write(struct.pack("<H", len(data) + 1) + data + b"\0")


@dataclass(frozen=True)
class Variable:
    """One variable of a CTranslate2 model.bin: its name, shape, type code and data as stored (empty when
    read without data)."""

    name: str
    shape: tuple[int, ...]
    dtype: int
    data: bytes

    def first_rows(self, rows: int) -> Variable:
        """This 2-D variable cut to its first ``rows`` rows."""
        if len(self.shape) != 2:
            raise EncoderLayersError(f"{self.name}: expected a 2-D variable, found shape {self.shape}")
        total, width = self.shape
        kept = min(rows, total)
        return Variable(self.name, (kept, width), self.dtype, self.data[:len(self.data) * kept // total])

    def write(self, handle: BinaryIO) -> None:
        _write_string(handle, self.name)
        handle.write(struct.pack(f"<B{len(self.shape)}IBI", len(self.shape), *self.shape, self.dtype, len(self.data)))
        handle.write(self.data)


def read_model_binary(path: Path, data: bool = True) -> tuple[str, int, list[Variable], list[tuple[str, str]]]:
    """A CTranslate2 model.bin: spec name, revision, variables (their data skipped unless ``data``) and
    aliases (alias, variable)."""
    with open(path, "rb") as handle:
        (version,) = struct.unpack("<I", handle.read(4))
        if version != MODEL_BINARY_VERSION:
            raise EncoderLayersError(f"{path}: CTranslate2 binary version {version}, only {MODEL_BINARY_VERSION} "
                                     "can be truncated")
        name = _read_string(handle)
        revision, count = struct.unpack("<II", handle.read(8))
        variables = []
        for _ in range(count):
            variable = _read_string(handle)
            (rank,) = struct.unpack("<B", handle.read(1))
            *shape, dtype, size = struct.unpack(f"<{rank}IBI", handle.read(4 * rank + 5))
            if data:
                stored = handle.read(size)
            else:
                handle.seek(size, os.SEEK_CUR)
                stored = b""
            variables.append(Variable(variable, tuple(shape), dtype, stored))
        (count,) = struct.unpack("<I", handle.read(4))
        aliases = [(_read_string(handle), _read_string(handle)) for _ in range(count)]
        if handle.read(1):
            raise EncoderLayersError(f"{path}: unexpected bytes after the aliases")
    return name, revision, variables, aliases


def encoder_layer_count(variables: list[Variable]) -> int:
    """Number of encoder layers among a model's variables."""
    return len({match.group(1) for variable in variables if (match := ENCODER_LAYER.match(variable.name))})


def write_truncated_model(source: Path, destination: Path, layers: int) -> None:
    """Write ``source``'s model.bin to ``destination`` without the variables of encoder layers
    ``layers`` and up (0-based: the first ``layers`` layers are kept), and with the decoder cut to the
    least CTranslate2 loads: its first layer and the first row of its token embedding (the copy only
    encodes)."""
    name, revision, variables, aliases = read_model_binary(source)

    def kept(variable: str) -> bool:
        encoder, decoder = ENCODER_LAYER.match(variable), DECODER_LAYER.match(variable)
        return not (encoder and int(encoder.group(1)) >= layers or decoder and int(decoder.group(1)) >= 1)

    variables = [variable.first_rows(1) if variable.name == DECODER_EMBEDDING else variable
                 for variable in variables if kept(variable.name)]
    aliases = [(alias, target) for alias, target in aliases if kept(alias) and kept(target)]
    with open(destination, "wb") as handle:
        handle.write(struct.pack("<I", MODEL_BINARY_VERSION))
        _write_string(handle, name)
        handle.write(struct.pack("<II", revision, len(variables)))
        for variable in variables:
            variable.write(handle)
        handle.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases:
            _write_string(handle, alias)
            _write_string(handle, target)


def cache_dir() -> Path:
    """Where truncated encoders are kept: ``$XDG_CACHE_HOME`` (default ~/.cache)/emotion-pipeline."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emotion-pipeline" / "whisper-encoders"


@functools.lru_cache(maxsize=8)
def layers_model(model: str, layers: int) -> str:
    """The model whose encoder outputs are those after ``model``'s first ``layers`` encoder layers (then
    its final layer norm): ``model`` itself when that is all of them, else a folder in ``cache_dir``
    named by the sha256 of ``model``'s model.bin and ``layers``, written once (in a temporary
    sibling, then renamed)."""
    folder = Path(resolve_model(model))
    if not (folder / "model.bin").is_file():
        raise EncoderLayersError(f"encoder_layers needs a local CTranslate2 model folder; {model!r} is not one")
    available = encoder_layer_count(read_model_binary(folder / "model.bin", data=False)[2])
    if not 1 <= layers <= available:
        raise EncoderLayersError(f"encoder_layers {layers}: {folder} has encoder layers 1..{available}")
    if layers == available:
        return model
    digest = hashlib.sha256()
    with open(folder / "model.bin", "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    target = cache_dir() / f"{digest.hexdigest()[:16]}-encoder{layers}-only"
    if (target / "model.bin").is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        partial.chmod(0o777 & ~current_umask())
        write_truncated_model(folder / "model.bin", partial / "model.bin", layers)
        for companion in folder.iterdir():  # config, tokenizer, vocabulary, preprocessor
            if companion.is_file() and companion.name != "model.bin":
                shutil.copy(companion, partial / companion.name)
        try:
            partial.rename(target)
        except OSError:
            if not (target / "model.bin").is_file():  # not another process's copy: a real failure
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return str(target)


def encoder_models(model: str, layers: list[int] | None) -> list[str]:
    """The models whose embeddings, concatenated, are the clip's representation: ``model`` (``layers``
    None), else one per entry of ``layers`` (``layers_model``)."""
    return [model] if layers is None else [layers_model(model, count) for count in layers]


def encode(signal: np.ndarray, model: str, compute_type: str, threads: int = 0, workers: int = 1,
           whisper=None) -> np.ndarray:
    """(frames, width) encoder outputs of a 16 kHz mono signal, ceil(mel frames / 2) of them, by
    ``whisper`` or the process's model with ``threads`` (0: split_cores) per worker and ``workers``
    (features.transcription.whisper_model)."""
    import ctranslate2

    whisper = whisper or whisper_model(model, compute_type, threads, workers)
    mel = whisper.feature_extractor(np.asarray(signal, dtype=np.float32))
    outputs = []
    for start in range(0, mel.shape[1], CHUNK_FRAMES):
        piece = np.ascontiguousarray(mel[np.newaxis, :, start:start + CHUNK_FRAMES], dtype=np.float32)
        encoded = whisper.model.encode(ctranslate2.StorageView.from_array(piece), to_cpu=True)
        outputs.append(np.asarray(encoded, dtype=np.float32)[0])
    return np.concatenate(outputs)


def encoder_embedding(signal: np.ndarray, model: str, compute_type: str, threads: int = 0,
                      workers: int = 1) -> np.ndarray:
    """(2 * width,) float32: mean then standard deviation over time of the encoder outputs."""
    outputs = encode(signal, model, compute_type, threads, workers)
    return np.concatenate([outputs.mean(0), outputs.std(0)]).astype(np.float32)


@functools.lru_cache(maxsize=4)
def embedding_size(model: str, compute_type: str) -> int:
    """Length of ``encoder_embedding`` for ``model`` (found by encoding a tenth of a second, with a
    copy of the model already loaded when there is one)."""
    outputs = encode(np.zeros(SAMPLE_RATE // 10, np.float32), model, compute_type,
                     whisper=loaded_whisper_model(model, compute_type))
    return 2 * outputs.shape[1]
