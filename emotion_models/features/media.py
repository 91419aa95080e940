"""Decoding media with PyAV (FFmpeg's libraries): audio of any container, and video frames by streaming."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class MediaError(ValueError):
    """A file cannot be decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class FrameDecoding:
    """How video frames are decoded for face detection (:func:`iter_frames`); scoring's settings
    (scoring.max_pixels, scoring.skip_nonref_frames_above), which feature extraction follows."""

    max_pixels: int | None = None
    skip_nonref_above: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    """What a probe of a container found."""

    duration: float  # seconds, 0 when unknown
    has_audio: bool
    has_video: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0


def _open(path: Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path}: not a readable media file ({exc})") from exc
    except PermissionError as exc:
        raise MediaError(f"{path}: permission denied") from exc


def probe(path: str | Path) -> MediaInfo:
    """Streams and duration of a media file, like ffprobe."""
    with _open(Path(path)) as container:
        audio = container.streams.audio
        video = container.streams.video
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        if not duration:
            for stream in (*video, *audio):
                if stream.duration and stream.time_base:
                    duration = max(duration, float(stream.duration * stream.time_base))
        info = MediaInfo(duration=duration, has_audio=bool(audio), has_video=bool(video))
        if video:
            stream = video[0]
            rate = stream.average_rate or stream.guessed_rate
            info = MediaInfo(duration, bool(audio), True, stream.codec_context.width,
                             stream.codec_context.height, float(rate) if rate else 0.0)
        return info


def decode_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """The first audio stream of any container as mono float32 at ``sample_rate``.

    Raises MediaError when there is no audio stream or the stream cannot be decoded.
    """
    path = Path(path)
    chunks: list[np.ndarray] = []
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(f"{path}: audio cannot be decoded ({exc})") from exc
    if not chunks:
        raise MediaError(f"{path}: audio stream holds no samples")
    return np.concatenate(chunks).astype(np.float32, copy=False)


def iter_frames(path: str | Path, fps: float, max_pixels: int | None = None,
                skip_nonref_above: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_seconds, RGB uint8 frame)`` sampled at ``fps``, decoding as a stream.

    Frames larger than ``max_pixels`` are downscaled (aspect kept) before they are returned. Videos
    whose frames have more than ``skip_nonref_above`` pixels decode only reference frames
    (FFmpeg's ``skip_frame=NONREF``: B-frames are not decoded; a sample then comes from the next
    decoded frame, up to ~2 frames later). A decoding error after some frames ends the stream
    early instead of losing what was read.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        context = stream.codec_context
        if skip_nonref_above is not None and context.width * context.height > skip_nonref_above:
            context.skip_frame = "NONREF"
        next_time = 0.0
        try:
            for frame in container.decode(stream):
                if frame.time is None or frame.time + 1e-6 < next_time:
                    continue
                width, height = frame.width, frame.height
                if max_pixels and width * height > max_pixels:
                    scale = (max_pixels / (width * height)) ** 0.5
                    width, height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
                image = frame.to_ndarray(format="rgb24", width=width, height=height)
                while next_time <= frame.time + 1e-6:
                    yield next_time, image
                    next_time += 1.0 / fps
        except av.error.FFmpegError:
            if next_time == 0.0:
                raise MediaError(f"{path}: video stream cannot be decoded") from None
