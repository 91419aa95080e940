"""Scoring processes keep freed memory for the next call (glibc) instead of faulting it in again, and
leave no BLAS thread spinning on a core after a matrix product."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from emotion_models.native import USER_BLAS_SETTINGS, USER_MALLOC_SETTINGS
from tests.conftest import REPO

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")

# 64 MB blocks allocated, written and freed as CTranslate2's per-call buffers are; prints the page
# faults of the last four rounds and whether the settings were applied
ROUNDS = """
import ctypes, resource, sys
from emotion_models.native import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
size = 64 << 20
def round_trip():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(ctypes.c_void_p(block))
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    round_trip()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, applied)
"""


# five matrix products, each followed by 0.1 s of sleep; prints the CPU seconds the process spent
# while its calling thread slept, whether the limit was applied and the threads BLAS uses now
PRODUCTS = """
import resource, sys, time
import numpy as np
from threadpoolctl import threadpool_info
from emotion_models.native import one_blas_thread
applied = one_blas_thread() if sys.argv[1] == "one" else False
matrix = np.random.default_rng(0).random((400, 400))
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
idle = 0.0
for _ in range(5):
    matrix @ matrix
    before = cpu()
    time.sleep(0.1)
    idle += cpu() - before
threads = max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
print(idle, applied, threads)
"""


# the caller's own malloc and BLAS settings would switch the settings under test off
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in USER_MALLOC_SETTINGS + USER_BLAS_SETTINGS}


def run(code: str, mode: str, **env: str) -> tuple[float, bool, int]:
    """(the measured value, whether the setting was applied, BLAS threads (PRODUCTS only, else 0))."""
    result = subprocess.run([sys.executable, "-c", code, mode], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**CLEAN_ENV, **env})
    assert result.returncode == 0, result.stderr[-2000:]
    value, applied, *threads = result.stdout.split()
    return float(value), applied == "True", int(threads[0]) if threads else 0


@glibc
def test_freed_blocks_are_reused_without_page_faults():
    """What Whisper's encoder gained (0.50 -> 0.33 s per 30 s window): a freed block's memory is
    reused by the next call, which then writes it without page faults."""
    kept, applied, _ = run(ROUNDS, "keep")
    default, _, _ = run(ROUNDS, "default")
    assert applied
    assert default > 4 * 1000  # glibc maps and unmaps each 64 MB block: every page faults again
    assert kept < default / 20, (kept, default)


@glibc
def test_the_users_own_malloc_settings_win():
    faults, applied, _ = run(ROUNDS, "keep", MALLOC_MMAP_MAX_="65536")
    assert not applied
    assert faults > 4 * 1000


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs one thread on one core anyway")
def test_no_blas_thread_spins_after_a_product():
    """NumPy's OpenBLAS threads spin after each product (a whole core for 0.1 s here, measured 0.5 CPU-s
    in 0.5 s of sleep on free cores); scoring processes keep BLAS on the calling thread, so nothing burns
    CPU while they wait. Load-independent: BLAS reports one thread, and the process burns (nearly) no CPU
    while its only thread sleeps, an absolute bound however busy the machine is."""
    _, _, default_threads = run(PRODUCTS, "default")
    one, applied, threads = run(PRODUCTS, "one")
    assert default_threads > 1  # without the setting BLAS runs several threads: what could spin
    assert applied and threads == 1
    assert one < 0.1, one  # CPU-s burnt during 0.5 s of sleep


def test_the_users_own_blas_threads_win():
    _, applied, threads = run(PRODUCTS, "one", OPENBLAS_NUM_THREADS="2")
    assert not applied and threads == 2
