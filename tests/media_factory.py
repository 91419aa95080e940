"""Media files the tests make themselves (bad files, other containers), written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def tone(seconds: float, sample_rate: int = 44100, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _encode_audio(container, stream, signal: np.ndarray, sample_rate: int, frame_size: int) -> None:
    """Encode a mono float signal into ``stream`` frame by frame (the last frame zero-padded)."""
    floats = stream.format.name.startswith("flt")
    for start in range(0, len(signal), frame_size):
        chunk = np.pad(signal[start:start + frame_size], (0, max(0, frame_size - len(signal[start:]))))
        data = chunk.astype(np.float32) if floats else (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format=stream.format.name, layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_audio(path: Path, signal: np.ndarray, sample_rate: int, codec: str) -> Path:
    """Encode a mono float signal with ``codec`` (pcm_s16le, flac, mp3, aac, libopus) into ``path``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        stream.format = {"mp3": "fltp", "aac": "fltp", "libopus": "flt"}.get(codec, "s16")
        _encode_audio(container, stream, signal, sample_rate, stream.codec_context.frame_size or 1024)
    return path


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, audio: np.ndarray | None = None,
                sample_rate: int = 16000) -> Path:
    """An mp4 (H.264 + AAC) from RGB frames and optional mono audio."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps) if frames else None
        if video is not None:
            video.width, video.height = frames[0].shape[1], frames[0].shape[0]
            video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=sample_rate, layout="mono") if audio is not None else None
        if sound is not None:
            sound.format = "fltp"
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        if video is not None:
            for packet in video.encode(None):
                container.mux(packet)
        if sound is not None:
            _encode_audio(container, sound, audio, sample_rate, sound.codec_context.frame_size or 1024)
    return path
