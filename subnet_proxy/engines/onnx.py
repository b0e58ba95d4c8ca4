"""Session options for every onnxruntime model the engines load (Piper's voice, the MiniLM embedder).

onnxruntime's CPU memory arena keeps what the largest call ever needed, and grows by doubling: one
Piper reading of a long text (a minute of speech) took a process from 266 to 531 MB for good, where
the same calls without the arena stay at 219 MB. A validator making challenges and a miner serving
TTS meet such a text sooner or later, and then carry it for weeks, so the arena is off: each call's
tensors are allocated and freed (those from 1 MB up in mappings of their own, ``heap.py``).
Faster-whisper's Silero VAD session already runs without it.
"""

from __future__ import annotations

from typing import Any


def session_options(*, threads: int | None = None) -> Any:
    """``onnxruntime.SessionOptions`` without the CPU memory arena; ``threads``: intra-op threads
    (None: onnxruntime's default), one inter-op thread either way."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    return options
