"""Whisper's encoder as a speech representation: the default input of the audio model.

A clip's log-mel frames (100 per second) go through the Whisper encoder (CTranslate2, int8 on
CPU), which gives one vector per two frames; their mean and standard deviation over time are the
clip's embedding (2 x 384 = 768 values for tiny.en). Only the clip's own frames are encoded:
CTranslate2 accepts any frame count, and a 4 s clip costs ~40 ms instead of the ~0.9 s of a pass
padded to Whisper's 30 s (measured on the shared corpora: padding does not change accuracy).
Longer audio is encoded in pieces of 30 s, the most Whisper's position embeddings cover.
"""

from __future__ import annotations

import functools

import numpy as np

from emotion_models.features.transcription import SAMPLE_RATE, loaded_whisper_model, whisper_model

CHUNK_FRAMES = 3000  # 30 s of mel frames: Whisper's 1500 encoder positions


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
