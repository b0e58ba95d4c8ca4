"""The encoder output of the window a reference transcript was read from, kept to read answers against.

Judging a client's transcription costs the validator its own transcript (``reference_transcript``),
then each distinct answer read against the audio (``word_probabilities``). On a CPU Whisper's encoder
is most of a short clip's cost, and both read the same speech: when the reference's speech (what
Whisper's VAD kept) fits in one window, the encoder output of that window is kept here, keyed by the
audio, and the answers are read against that very window: one encoder pass a task instead of two
(a 6.6 s clip: 459 ms of its 1,190 ms). Audio whose speech spans several windows is read window by
window along the transcript's timed words, as before (``listening``).

``EncoderMemo.wrap`` wraps the model's ``encode`` once; a thread records what it encodes only inside
``recording()``, so concurrent workers never see each other's windows.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

#: windows kept at most (a task's answers are read right after its reference; a few tasks interleave).
KEPT = 4


@dataclass(frozen=True, slots=True)
class HeardWindow:
    """One encoded window: CTranslate2's encoder output and how many of its 3,000 frames hold audio."""

    output: Any
    frames: int


def audio_key(samples: np.ndarray) -> bytes:
    """A digest of the (16 kHz) samples: the same audio, the same key."""
    return hashlib.blake2b(np.ascontiguousarray(samples).tobytes(), digest_size=16).digest()


class EncoderMemo:
    """Records the encoder outputs of a reference transcript and keeps the last ``size`` single windows."""

    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self._local = threading.local()
        self._lock = threading.Lock()
        self._kept: OrderedDict[bytes, HeardWindow] = OrderedDict()

    def wrap(self, model: Any) -> None:
        """Make ``model.encode`` (faster-whisper's ``WhisperModel``) report to the recording thread."""
        encode = model.encode

        def recorded(features: np.ndarray) -> Any:
            output = encode(features)
            outputs = getattr(self._local, "outputs", None)
            if outputs is not None:
                outputs.append(output)
            return output

        model.encode = recorded

    @contextmanager
    def recording(self) -> Iterator[list[Any]]:
        """The encoder outputs this thread computes inside the block, in order."""
        outputs: list[Any] = []
        self._local.outputs = outputs
        try:
            yield outputs
        finally:
            self._local.outputs = None

    def keep(self, key: bytes, window: HeardWindow) -> None:
        with self._lock:
            self._kept[key] = window
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def take(self, key: bytes) -> HeardWindow | None:
        """The window kept for this audio, forgotten as it is handed out (None if there is none)."""
        with self._lock:
            return self._kept.pop(key, None)
