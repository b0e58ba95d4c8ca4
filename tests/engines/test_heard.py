"""The encoder memo: what a reference transcript encoded, recorded per thread and kept for the answers."""

from __future__ import annotations

import threading

import numpy as np

from subnet_proxy.engines.heard import EncoderMemo, HeardWindow, audio_key


class Model:
    """Stands in for faster-whisper's WhisperModel: ``encode`` returns a fresh output per call."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, features: np.ndarray) -> tuple[str, int]:
        self.calls += 1
        return ("output", self.calls)


def test_only_the_recording_thread_sees_what_it_encodes() -> None:
    memo, model = EncoderMemo(), Model()
    memo.wrap(model)
    assert model.encode(np.zeros(1)) == ("output", 1)  # outside a recording: encoded, not recorded
    seen_elsewhere: list[object] = []
    with memo.recording() as outputs:
        model.encode(np.zeros(1))
        other = threading.Thread(target=lambda: seen_elsewhere.append(model.encode(np.zeros(1))))
        other.start()
        other.join()
        model.encode(np.zeros(1))
    model.encode(np.zeros(1))
    assert outputs == [("output", 2), ("output", 4)] and seen_elsewhere == [("output", 3)]


def test_windows_are_kept_per_audio_handed_out_once_and_the_oldest_dropped() -> None:
    memo = EncoderMemo(size=2)
    clips = [np.full(160, i, dtype=np.float32) for i in range(3)]
    assert audio_key(clips[0]) == audio_key(clips[0].copy()) != audio_key(clips[1])
    for i, clip in enumerate(clips):
        memo.keep(audio_key(clip), HeardWindow(output=i, frames=100))
    assert memo.take(audio_key(clips[0])) is None  # the oldest, dropped past the size
    assert memo.take(audio_key(clips[2])) == HeardWindow(output=2, frames=100)
    assert memo.take(audio_key(clips[2])) is None  # handed out once
    assert memo.take(audio_key(clips[1])) == HeardWindow(output=1, frames=100)
