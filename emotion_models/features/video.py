"""Per-window inputs of the combined video model, from any common container.

A video is split into windows of ``window_seconds`` (4 s); a trailing piece shorter than
``min_seconds`` (1.5 s) is dropped, a longer one is kept and padded; a video shorter than
``min_seconds`` is rejected. Each window gets:
- ``frames`` (16, 64, 64, 3) uint8 and ``landmarks`` (16, 1404): faces of frames sampled at
  4 FPS by the face model's preprocessing; ``frame_mask`` marks frames where a face was found
  (a frame without a face is masked, never invented);
- ``audio_embedding`` (768,) (or ``audio_mfcc`` (3, 126, 13) for the mfcc_cnn representation) and
  ``audio_stats`` (69,) or (157,) with eGeMAPS: the audio model's inputs for the window's own audio, made by the same
  function as for a training clip (``features.audio.signal_features``: trim, Whisper encoder on
  the window's frames, utterance statistics); ``audio_mask`` is False when the file has no
  (decodable) audio track;
- ``text`` (9,): emotion and sentiment features of the words Whisper heard in the window.
Frames are decoded as a stream; only the 16 crops of each window are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotion_models.features.audio import WINDOW_PREFIX, input_shapes, signal_features
from emotion_models.features.face import LANDMARK_VALUES, NoFaceError, preprocessor_for
from emotion_models.features.media import FrameDecoding, MediaError, MediaInfo, decode_audio, iter_frames, probe
from emotion_models.features.shards import Extracted
from emotion_models.features.text import N_TEXT_FEATURES, text_featuriser
from emotion_models.features.transcription import SAMPLE_RATE, Transcriber, Word, transcriber_for, words_in
from emotion_models.params import Params, VideoFeatureConfig

TRUNCATED_SHARE = 0.8  # a file that decodes to less than this share of its declared duration is rejected


class TooShortError(MediaError):
    """The video is shorter than the shortest window worth scoring."""


def frames_per_window(config: VideoFeatureConfig) -> int:
    return int(round(config.window_seconds * config.fps))


def plan_windows(duration: float, config: VideoFeatureConfig, source: str = "video") -> list[tuple[float, float]]:
    """(start, end) seconds of each window of a video of ``duration`` seconds."""
    if duration < config.min_seconds:
        raise TooShortError(f"{source}: {duration:.2f} s is shorter than {config.min_seconds} s")
    windows = []
    for index in range(math.ceil(duration / config.window_seconds - 1e-9)):
        start = index * config.window_seconds
        end = min(duration, start + config.window_seconds)
        if end - start >= config.min_seconds or not windows:
            windows.append((round(start, 3), round(end, 3)))
    return windows


@dataclass
class VideoWindows:
    """Window rows (keys, times, transcript, what was missing) and their stacked arrays."""

    info: MediaInfo
    rows: list[dict]
    arrays: dict[str, np.ndarray]
    early: Any = None  # what ``while_transcribing`` returned


def video_array_shapes(params: Params) -> dict[str, tuple[int, ...]]:
    n, size = frames_per_window(params.video.features), params.face.features.size
    audio = {WINDOW_PREFIX + name: shape for name, shape in input_shapes(params.audio.features).items()}
    return {"frames": (n, size, size, 3), "frame_mask": (n,), "landmarks": (n, LANDMARK_VALUES),
            **audio, "audio_mask": (), "text": (N_TEXT_FEATURES,)}


def extract_windows(path: str, params: Params, cpu_threads: int = 0,
                    while_transcribing: Callable[[dict[str, np.ndarray]], Any] | None = None,
                    parallel_videos: int = 1, decoding: FrameDecoding = FrameDecoding()) -> VideoWindows:
    """Probe, window and featurise one video; raises MediaError (or TooShortError) with the reason.

    Whisper runs in a thread beside frame decoding. ``while_transcribing``, when given, is called
    with the arrays once faces and audio features are in (all but ``text``), so work that does not
    need the transcript overlaps with Whisper; its result is kept in ``VideoWindows.early``.
    ``parallel_videos``: how many videos this process featurises at once: the Whisper transcriber
    gets as many workers, each with ``cpu_threads`` (0: transcription.split_cores). ``decoding``: how
    frames are decoded (scoring's frame size limits)."""
    info = probe(path)
    if not info.has_audio and not info.has_video:
        raise MediaError(f"{path}: no audio or video stream")
    config = params.video.features
    windows = plan_windows(info.duration, config, path)
    shapes = video_array_shapes(params)
    arrays = {name: np.zeros((len(windows), *shape), np.uint8 if name == "frames" else np.float32)
              for name, shape in shapes.items()}
    arrays["frame_mask"] = arrays["frame_mask"].astype(bool)
    arrays["audio_mask"] = arrays["audio_mask"].astype(bool)

    signal = _decode_signal(path, info)
    arrays["audio_mask"][:] = signal is not None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio") as pool:
        # audio features, then Whisper, overlap with frame decoding (one thread: in that order);
        # audio past the last window would cost Whisper a whole 30 s pass
        audio = pool.submit(_fill_audio, signal, params, windows, arrays, cpu_threads, parallel_videos)
        speech = None if signal is None else signal[:int(windows[-1][1] * SAMPLE_RATE)]
        words = pool.submit(_transcribe, speech, params, cpu_threads, parallel_videos)
        last_frame = _fill_faces(path, params, windows, arrays, decoding) if info.has_video else 0.0
        audio.result()
        early = while_transcribing(arrays) if while_transcribing else None
        words = words.result()
    featurise_text = text_featuriser(params.video.text)
    rows = []
    for index, (start, end) in enumerate(windows):
        text = " ".join(w.text for w in words_in(words, start, end))
        arrays["text"][index] = featurise_text(text)
        rows.append({"window": index, "start": start, "end": end, "transcript": text,
                     "has_audio": signal is not None, "has_video": info.has_video})
    decoded, covered = max(0.0 if signal is None else signal.size / SAMPLE_RATE, last_frame), windows[-1][1]
    if decoded < TRUNCATED_SHARE * covered and covered - decoded > 0.5:
        raise MediaError(f"{path}: truncated or corrupt: only {decoded:.2f} s of {info.duration:.2f} s decode")
    if not arrays["audio_mask"].any() and not arrays["frame_mask"].any():
        raise MediaError(f"{path}: nothing to score: no audio track and no face in any frame")
    for index, row in enumerate(rows):
        row["faces"] = int(arrays["frame_mask"][index].sum())
    return VideoWindows(info, rows, arrays, early)


def _decode_signal(path: str, info: MediaInfo) -> np.ndarray | None:
    """The mono audio track at Whisper's 16 kHz, or None when there is none that decodes."""
    if not info.has_audio:
        return None
    try:
        return decode_audio(path, SAMPLE_RATE)
    except MediaError:
        return None


def _fill_audio(signal: np.ndarray | None, params: Params, windows: list[tuple[float, float]], arrays: dict,
                cpu_threads: int = 0, workers: int = 1) -> None:
    """The audio model's inputs for every window's own audio (none without audio), at the sample
    rate the audio model was trained on, by the Whisper model the transcriber uses when the
    encoder is the transcription model with the same compute type (one model per process)."""
    if signal is None:
        return
    rate = params.audio.features.sample_rate
    if rate != SAMPLE_RATE:  # as librosa.resample: soxr's high quality, ceil(n * ratio) samples
        import soxr

        length = int(np.ceil(signal.size * rate / SAMPLE_RATE))
        signal = soxr.resample(signal, SAMPLE_RATE, rate, quality="HQ")[:length]
        signal = np.pad(signal, (0, length - signal.size))
    for index, (start, end) in enumerate(windows):
        piece = signal[int(start * rate):int(end * rate)]
        for name, values in signal_features(piece, params.audio.features, cpu_threads, workers).items():
            arrays[WINDOW_PREFIX + name][index] = values


def video_transcriber(params: Params, cpu_threads: int = 0, workers: int = 1) -> Transcriber:
    """The Whisper transcriber ``extract_windows`` uses when ``workers`` videos are featurised at once:
    one CTranslate2 worker per video, each with ``cpu_threads`` (0: transcription.split_cores)."""
    return transcriber_for(params.video.transcription, cpu_threads, workers)


def _transcribe(signal: np.ndarray | None, params: Params, cpu_threads: int, workers: int = 1) -> list[Word]:
    if signal is None or not params.video.transcription.enabled:
        return []
    return video_transcriber(params, cpu_threads, workers).transcribe(signal)


def _fill_faces(path: str, params: Params, windows: list[tuple[float, float]], arrays: dict,
                decoding: FrameDecoding) -> float:
    """Put the face of every sampled frame into its window slot; returns the end of the last frame read."""
    config = params.video.features
    last = 0.0
    per_window = frames_per_window(config)
    preprocessor = preprocessor_for(params.face.features)
    preprocessor.start_video()
    try:
        for time, image in iter_frames(path, config.fps, decoding.max_pixels, decoding.skip_nonref_above):
            last = time + 1.0 / config.fps
            index = int(time // config.window_seconds)
            if index >= len(windows):
                break
            slot = int(round((time - windows[index][0]) * config.fps))
            if slot >= per_window or time >= windows[index][1]:
                continue
            try:
                face = preprocessor.process(image, path, track=True)
            except NoFaceError:
                continue
            arrays["frames"][index, slot] = face.crop
            arrays["landmarks"][index, slot] = face.landmarks
            arrays["frame_mask"][index, slot] = True
    except MediaError:
        if not arrays["audio_mask"].any():
            raise
    return last


def featurise_video(row: dict, params: Params, decoding: FrameDecoding, cpu_threads: int = 1) -> Extracted:
    """All windows of one video, or the reason it was rejected (never raises)."""
    try:
        video = extract_windows(row["path"], params, cpu_threads, decoding=decoding)
    except MediaError as exc:
        return Extracted(row, reason=str(exc))
    except Exception as exc:  # a worker must report, not crash the batch
        return Extracted(row, reason=f"{row['path']}: {type(exc).__name__}: {exc}")
    return Extracted(row, video.arrays, rows=[{**row, **window} for window in video.rows])
