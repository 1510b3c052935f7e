"""Keeping a long TensorFlow run's memory steady on Linux (glibc).

TensorFlow's CPU tensors are allocated with ``malloc``. glibc keeps freed blocks in its
heaps for reuse, one heap (*arena*) per group of threads, and raises its mmap threshold
(up to 32 MiB) whenever a large block is freed, so that most of a training step's tensors
soon come from those heaps. Their free lists fragment across threads and steps, and the
process's memory grows step after step although nothing is leaked: for the ``paper`` model
at batch 2 x 2 s on CPU (``benchmarks/train_step.py``) the peak RSS rose from 7.3 to 8.8 GB
over three steps.

:func:`release_free_memory` (glibc's ``malloc_trim``) hands the heaps' free pages back to
the system. ``metatasnet train`` calls it after every training batch (the
:class:`ReleaseMemory` callback of ``tf_metatasnet.training.callbacks``), which keeps the peak at one
step's working set (5.9 GB above) at no measurable cost in time. The Keras separation
backend calls it after every window: a 60-s stereo song's separation grew by about 190 MB
from its first window to its third without it, and stays flat with it. (Fixing the mmap
threshold instead also steadies the memory, but makes the input pipeline, which allocates
many 10-100 MB tensors, three times slower.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or ``None`` where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        trim = libc.malloc_trim  # glibc only (not musl, macOS or Windows)
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Returns the C heap's free memory to the system (``malloc_trim(0)``).

    Returns ``True`` if some memory was released, ``False`` if none was or where the C
    library is not glibc (nothing is done there).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
