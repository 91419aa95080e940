"""eGeMAPS v02 functionals (openSMILE, audEERING): the standard cross-corpus paralinguistic set.

88 values per clip: pitch, jitter, shimmer, loudness, harmonics-to-noise ratio, formants, spectral
slope and balance, MFCC 1-4 and the rate and length of voiced and unvoiced segments, summarised over
the clip (Eyben et al. 2016, "The Geneva Minimalistic Acoustic Parameter Set"). With
``audio.features.egemaps`` on they are appended to the utterance statistics, so training clips and
video windows get them from the same function (``features.audio.utterance_statistics``).

The ``opensmile`` package's ``Smile`` imports pandas and audinterface, which a scoring process must
not pay for at start-up; its native binding (``opensmile/core/lib.py``: ctypes and NumPy only) and
its shipped configuration files are driven here the way ``Smile.process_signal`` drives them (the
tests compare the two).

openSMILE is licensed by audEERING for research, education and personal use; use in a product needs
their commercial licence. So it is an extra (``pip install -e ".[egemaps]"``) and off by default.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

FEATURE_SET = "egemaps/v02/eGeMAPSv02.conf"
SOURCE, SINK = "extsource", "extsink"  # openSMILE's external source and sink components in its configs


@functools.lru_cache(maxsize=1)
def _binding() -> tuple[type, Path]:
    """openSMILE's ctypes binding class (loaded from its file, without the package's pandas-importing
    __init__) and its configuration folder."""
    package = importlib.util.find_spec("opensmile")
    if package is None or package.origin is None:
        raise RuntimeError("audio.features.egemaps needs the opensmile package: pip install -e \".[egemaps]\" "
                           "(audEERING research licence: no use in a product without theirs)")
    core = Path(package.origin).parent / "core"
    spec = importlib.util.spec_from_file_location("opensmile_native_binding", core / "lib.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OpenSMILE, core / "config"


def _smile(sample_rate: int):
    """An initialised openSMILE instance computing eGeMAPSv02 functionals of 16-bit samples."""
    binding, config = _binding()
    options = {"source": config / "shared/standard_external_wave_input.conf.inc", "sampleRate": sample_rate,
               "nBits": 16, "sink": config / "shared/standard_external_data_output_single.conf.inc",
               "sinkLevel": "func", "bufferModeRbConf": config / "shared/BufferModeRb.conf.inc",
               "frameModeFunctionalsConf": config / "shared/FrameModeFunctionals.conf.inc"}
    smile = binding()
    smile.initialize(config_file=str(config / FEATURE_SET), options=options)
    return smile


@functools.lru_cache(maxsize=1)
def egemaps_names() -> tuple[str, ...]:
    """openSMILE's name of each functional, in vector order."""
    smile = _smile(16000)
    try:
        return tuple(smile.external_sink_get_element_name(SINK, i)
                     for i in range(smile.external_sink_get_num_elements(SINK)))
    finally:
        smile.free()


def egemaps_functionals(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """(88,) float32 eGeMAPS functionals of a mono signal in [-1, 1] (NaN, e.g. of a clip without
    voiced frames, as 0). Each call runs its own openSMILE instance, so threads may call at once."""
    samples = np.clip(np.asarray(signal, dtype=np.float32) * 32768, -32768, 32767).astype(np.int16)
    rows: list[np.ndarray] = []
    smile = _smile(sample_rate)
    try:
        smile.external_sink_set_callback_ex(SINK, lambda data, meta: rows.append(np.array(data, np.float32)))
        smile.external_audio_source_write_data(SOURCE, samples.tobytes())
        smile.external_audio_source_set_eoi(SOURCE)
        smile.run()
    finally:
        smile.free()
    if not rows:
        return np.zeros(len(egemaps_names()), np.float32)
    return np.nan_to_num(rows[0].reshape(-1))
