"""Keep a long-running process's heap from creeping: glibc's ``malloc_trim``, ``M_ARENA_MAX`` and ``M_MMAP_THRESHOLD``.

A scoring call allocates and frees many MB of native buffers (CTranslate2, onnxruntime, numpy, in
worker threads), and glibc keeps freed memory in per-thread arenas (64 MB reservations, one per
thread that ever contended, up to 8 per core) instead of returning it: in a validator run
(``scripts/bench_memory.py``) RSS crept up by tens of MB every thousand tasks, most of it in
those arenas, and one ``malloc_trim(0)`` took 34 MB back at once. The 10,000-task runs still moved in
steps of tens of MB (one of 143 MB, kept): glibc's mmap threshold is dynamic, so after the first
free of a large mmapped buffer (audio, a model's intermediate tensors) buffers up to that size come
from the arenas, where they fragment what trimming can return. A fixed ``MMAP_THRESHOLD`` keeps every
buffer from 1 MB up in its own mapping, given back to the OS when it is freed. Elsewhere than glibc
all of these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

#: glibc's mallopt parameter for the number of arenas, and the arenas a neuron process keeps.
M_ARENA_MAX = -8
ARENAS = 2
#: glibc's mallopt parameter for the mmap threshold, and the one a neuron keeps (fixed: never raised).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1024 * 1024


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt``; True when it took the value (False without glibc)."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(parameter, value))


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc arenas from now on (call first thing: arenas already made stay);
    True when glibc took it. Fewer arenas, less memory held free in each, for a little lock contention."""
    return _mallopt(M_ARENA_MAX, arenas)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Allocations of ``threshold`` bytes and more get their own mapping from now on, whatever was freed
    before (glibc otherwise raises the threshold to the largest mapped buffer freed); True when glibc
    took it."""
    return _mallopt(M_MMAP_THRESHOLD, threshold)


def malloc_trim() -> Callable[[], bool] | None:
    """A function that returns free heap to the OS (True when some was), or None without glibc."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))
