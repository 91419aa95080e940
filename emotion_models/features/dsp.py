"""The few librosa 0.11 analyses the audio features use, on NumPy alone.

Each function computes what the librosa function of the same name computes with the arguments
this product passes (centred frames, constant padding, a periodic Hann window, Slaney mel filters,
orthonormal DCT-II, YIN with parabolic refinement, Savitzky-Golay deltas), in the same dtypes, so
features match librosa's to float rounding (tests/test_dsp.py compares them on real clips; NumPy's
FFT works in double precision where librosa's scipy.fft keeps single).

Why not librosa itself: importing it, with scipy.signal, scikit-learn (librosa.effects imports
librosa.decompose) and its numba kernels (loaded from the JIT cache, or compiled on a fresh
install, where processes starting together can corrupt the cache), cost each scoring process 2.7 s
of its start-up, and scipy.fft alone 0.16 s; these functions import nothing but NumPy. librosa
remains a test dependency.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _read_only(array: np.ndarray) -> np.ndarray:
    """A cached array that no caller can change."""
    array.setflags(write=False)
    return array


def frame(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(length, frames) view of ``signal``: frames of ``length`` samples, ``hop`` apart (librosa.util.frame)."""
    return sliding_window_view(signal, length)[::hop].T


def _centred(signal: np.ndarray, length: int, mode: str = "constant") -> np.ndarray:
    return np.pad(signal, (length // 2, length // 2), mode=mode)


@functools.lru_cache(maxsize=8)
def hann(length: int) -> np.ndarray:
    """The periodic Hann window (scipy.signal.get_window("hann", length, fftbins=True))."""
    return _read_only(0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, length + 1)[:-1]))


def stft_magnitude(signal: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(1 + n_fft // 2, frames) |STFT| of the centred, zero-padded signal (np.abs(librosa.stft(...)))."""
    frames = frame(_centred(signal, n_fft), n_fft, hop)
    spectrum = np.fft.rfft(hann(n_fft)[:, None] * frames, axis=0)
    # column-major as librosa's: sums over frequency then round as librosa's do
    return np.abs(np.asfortranarray(spectrum, np.result_type(signal.dtype, np.complex64)))


def fft_frequencies(rate: float, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n=n_fft, d=1.0 / rate)


_MEL_SP, _MEL_LOG_HZ = 200.0 / 3, 1000.0  # Slaney's mel scale: linear below 1 kHz, logarithmic above
_MEL_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asanyarray(hz, dtype=float)
    mels = hz / _MEL_SP
    high = hz >= _MEL_LOG_HZ
    mels[high] = _MEL_LOG_HZ / _MEL_SP + np.log(hz[high] / _MEL_LOG_HZ) / _MEL_LOG_STEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asanyarray(mels, dtype=float)
    hz = _MEL_SP * mels
    high = mels >= _MEL_LOG_HZ / _MEL_SP
    hz[high] = _MEL_LOG_HZ * np.exp(_MEL_LOG_STEP * (mels[high] - _MEL_LOG_HZ / _MEL_SP))
    return hz


@functools.lru_cache(maxsize=8)
def mel_filters(rate: float, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32 Slaney-normalised triangular filters from 0 Hz to Nyquist
    (librosa.filters.mel)."""
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array([0.0]))[0], hz_to_mel(np.array([rate / 2]))[0], n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_frequencies(rate, n_fft))
    weights = np.zeros((n_mels, 1 + n_fft // 2), np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2:n_mels + 2] - edges[:n_mels]))[:, None]
    return _read_only(weights)


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """Decibels re 1.0, floored ``top_db`` below the peak (librosa.power_to_db)."""
    db = 10.0 * np.log10(np.maximum(amin, power))
    return np.maximum(db, db.max() - top_db) if top_db is not None else db


def mfcc(signal: np.ndarray, rate: float, n_mfcc: int, n_fft: int, hop: int) -> np.ndarray:
    """(n_mfcc, frames) MFCCs of 128 mel bands in dB (librosa.feature.mfcc)."""
    mel_power = np.einsum("ft,mf->mt", stft_magnitude(signal, n_fft, hop) ** 2, mel_filters(rate, n_fft),
                          optimize=True)
    return (_dct_matrix(mel_power.shape[0], n_mfcc) @ power_to_db(mel_power)).astype(mel_power.dtype)


@functools.lru_cache(maxsize=4)
def _dct_matrix(size: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of the orthonormal DCT-II of ``size`` points (scipy.fft.dct's norm="ortho")."""
    k, n = np.arange(rows)[:, None], np.arange(size)[None, :]
    matrix = np.sqrt(2.0 / size) * np.cos(np.pi * k * (2 * n + 1) / (2 * size))
    matrix[0] /= np.sqrt(2.0)
    return _read_only(matrix)


@functools.lru_cache(maxsize=4)
def _derivative_weights(order: int, width: int) -> np.ndarray:
    """Weights that give the ``order``-th derivative at the centre of a degree-``order`` polynomial
    least-squares fit to ``width`` points (Savitzky-Golay)."""
    offsets = np.arange(width) - width // 2
    return _read_only(np.linalg.pinv(np.vander(offsets, order + 1, increasing=True))[order] * math.factorial(order))


def delta(features: np.ndarray, order: int = 1, width: int = 9) -> np.ndarray:
    """The ``order``-th derivative of each row over time (librosa.feature.delta: Savitzky-Golay of
    degree ``order`` over ``width`` frames, "interp" edges). With the polynomial's degree equal to
    the derivative's order, the edge frames take the first and last full window's value."""
    if features.shape[-1] < width:
        raise ValueError(f"delta needs at least {width} frames, got {features.shape[-1]}")
    inner = sliding_window_view(features, width, axis=-1) @ _derivative_weights(order, width).astype(features.dtype)
    half = width // 2
    return np.concatenate([np.repeat(inner[..., :1], half, -1), inner, np.repeat(inner[..., -1:], half, -1)], -1)


def rms(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(frames,) root mean square of centred, zero-padded frames (librosa.feature.rms)."""
    frames = frame(_centred(signal, length), length, hop)
    return np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=0))


def zero_crossing_rate(signal: np.ndarray, length: int, hop: int, threshold: float = 1e-10) -> np.ndarray:
    """(frames,) share of sign changes within each centred, edge-padded frame; values within
    ``threshold`` of zero count as positive (librosa.feature.zero_crossing_rate)."""
    frames = frame(_centred(signal, length, "edge"), length, hop)
    negative = np.signbit(np.where(np.abs(frames) <= threshold, 0, frames))
    crossings = np.zeros(frames.shape, bool)
    crossings[1:] = negative[1:] != negative[:-1]
    return crossings.mean(axis=0)


def spectral_centroid(magnitude: np.ndarray, rate: float) -> np.ndarray:
    """(frames,) magnitude-weighted mean frequency (librosa.feature.spectral_centroid)."""
    totals = magnitude.astype(float).sum(axis=0, keepdims=True)
    totals[totals < np.finfo(magnitude.dtype).tiny] = 1.0
    n_fft = 2 * (magnitude.shape[0] - 1)
    return np.sum(fft_frequencies(rate, n_fft)[:, None] * (magnitude / totals).astype(magnitude.dtype), axis=0)


def spectral_rolloff(magnitude: np.ndarray, rate: float, share: float = 0.85) -> np.ndarray:
    """(frames,) lowest frequency below which ``share`` of the magnitude lies (librosa.feature.spectral_rolloff)."""
    total = np.cumsum(magnitude, axis=0)
    above = np.where(total < share * total[-1:], np.nan, 1)
    return np.nanmin(above * fft_frequencies(rate, 2 * (magnitude.shape[0] - 1))[:, None], axis=0)


def spectral_flatness(magnitude: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    """(frames,) geometric over arithmetic mean of the power spectrum (librosa.feature.spectral_flatness)."""
    power = np.maximum(amin, magnitude ** 2.0)
    return np.exp(np.mean(np.log(power), axis=0)) / np.mean(power, axis=0)


def yin(signal: np.ndarray, fmin: float, fmax: float, rate: float, length: int, hop: int,
        trough_threshold: float = 0.1) -> np.ndarray:
    """(frames,) fundamental frequency in Hz by YIN on centred, zero-padded frames: the first trough
    of the cumulative mean normalised difference below ``trough_threshold`` (else its global
    minimum), refined by parabolic interpolation (librosa.yin)."""
    frames = frame(_centred(signal, length), length, hop)
    min_period, max_period = int(np.floor(rate / fmax)), min(int(np.ceil(rate / fmin)), length - 1)
    # difference function d(k) = 2 (ACF(0) - ACF(k)) - sum_{m<k} y(m)^2, from the FFT autocorrelation
    padded = 1 << (2 * length - 2).bit_length()  # a power of two >= 2 * length - 1
    spectrum = np.fft.rfft(frames, n=padded, axis=0)
    acf = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n=padded, axis=0)[:max_period + 1]
    acf = acf.astype(frames.dtype)
    difference = np.cumsum(np.square(frames), axis=0)
    lags = slice(1, max_period + 1)
    difference[0] = 0
    difference[lags] = 2 * (acf[0:1] - acf[lags]) - difference[:max_period]
    cumulative_mean = np.cumsum(difference[lags], axis=0) / np.arange(1, max_period + 1)[:, None]
    denominator = cumulative_mean[min_period - 1:max_period]
    curve = difference[min_period:max_period + 1] / (denominator + np.finfo(denominator.dtype).tiny)

    shifts = np.zeros_like(curve)  # parabolic interpolation of each inner point
    a = curve[2:] + curve[:-2] - 2 * curve[1:-1]
    b = (curve[2:] - curve[:-2]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts[1:-1] = np.where(np.abs(b) >= np.abs(a), 0, -b / a)
    trough = np.zeros(curve.shape, bool)
    trough[1:-1] = (curve[1:-1] < curve[:-2]) & (curve[1:-1] <= curve[2:])
    trough[0] = curve[0] < curve[1]
    trough[-1] = curve[-1] < curve[-2]
    below = trough & (curve < trough_threshold)
    period = np.where(below.any(axis=0), np.argmax(below, axis=0), np.argmin(curve, axis=0))
    return rate / (min_period + period + np.take_along_axis(shifts, period[None], axis=0)[0])


def trim(signal: np.ndarray, top_db: float, length: int, hop: int) -> tuple[int, int]:
    """(start, end) sample range from the first to the last frame within ``top_db`` of the loudest
    frame's RMS; (0, 0) for a signal without any (librosa.effects.trim)."""
    power = np.square(rms(signal, length, hop))
    floor = 1e-5 ** 2  # librosa.amplitude_to_db's amin, squared
    db = power_to_db(power, floor, None) - power_to_db(power.max(), floor, None)
    loud = np.flatnonzero(db > -top_db)
    if not loud.size:
        return 0, 0
    return int(loud[0] * hop), min(signal.shape[-1], int((loud[-1] + 1) * hop))
