"""Hand the heap that model calls freed back to the operating system (glibc's ``malloc_trim``).

A scoring call allocates and frees many MB of native buffers (CTranslate2, onnxruntime, numpy, in
worker threads), and glibc keeps freed memory in its per-thread arenas instead of returning it: in
a validator run (``scripts/bench_memory.py``) RSS crept up by tens of MB every thousand tasks, and
one ``malloc_trim(0)`` took 34 MB back at once. Elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def malloc_trim() -> Callable[[], bool] | None:
    """A function that returns free heap to the OS (True when some was), or None without glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))
