"""Process-wide settings of the native libraries under scoring and transcription.

- Freed memory stays in the process for the next call (:func:`keep_freed_memory`). CTranslate2
  (Whisper) and the other native libraries allocate large per-call buffers with ``malloc`` and free
  them at the end of the call. glibc serves every block over 32 MB (and, by its dynamic threshold,
  smaller ones) with a fresh ``mmap`` and unmaps it on ``free``, so each call faults in and zeroes
  its buffers again: Whisper tiny.en's encoder spent a third of its time in the kernel doing so
  (six 1500 x 1500 attention maps, 54 MB, per layer). With blocks served from the heap and up to
  256 MB of freed memory kept there, one 30 s window's encoder pass takes 0.32-0.34 s instead of
  0.50 s (one thread); peaks grow by what the heap keeps (README, Benchmarks).
- One BLAS thread (:func:`one_blas_thread`). NumPy's OpenBLAS starts a thread per core, and after
  each matrix product its idle threads spin in ``sched_yield`` before they sleep: scoring's matrix
  products (the audio features' mel filters and DCT among them) kept one such thread spinning for
  14% of a scoring run's CPU samples on 2 cores, time taken from decoding, Whisper and the face
  networks.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 256 << 20  # free memory at the top of the heap beyond this goes back to the system
USER_MALLOC_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
USER_BLAS_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc serve large blocks from the heap and keep up to 256 MB of freed memory
    there (once per process). Left alone where the C library is not glibc, or where the user set
    glibc's own MALLOC_* tuning variables. True when the settings are in force."""
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in USER_MALLOC_SETTINGS):
        return False
    libc = ctypes.CDLL("libc.so.6")  # glibc's soname on every Linux platform
    return bool(libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


@functools.cache
def one_blas_thread() -> bool:
    """NumPy's BLAS on the calling thread only (once per process), unless the user chose its threads
    (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS). True when the limit is in force."""
    if any(name in os.environ for name in USER_BLAS_SETTINGS):
        return False
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    return True


def tune_for_scoring() -> None:
    """Both settings, for a process that scores videos."""
    keep_freed_memory()
    one_blas_thread()
