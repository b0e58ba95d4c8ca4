"""TranscriptBatcher: requests made while the model is busy share one ``transcribe_many`` call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from protocol import DecodedAudio
from subnet_proxy.engines import EngineInputError, Transcriber, Transcript, WorkerPool
from subnet_proxy.engines.batcher import TranscriptBatcher


class CountingTranscriber(Transcriber):
    """Names each clip by its length; the first call holds the worker until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], str | None]] = []
        self.release = threading.Event()

    def load(self) -> None:
        pass

    def transcribe(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        raise AssertionError("scoring goes through transcribe_many")

    def transcribe_many(self, clips: Sequence[np.ndarray], language: str | None = None) -> list[str]:
        self.calls.append(([len(c) for c in clips], language))
        self.release.wait(5)
        if language == "xx":
            raise EngineInputError("language 'xx' is not supported")
        return [f"{language}:{len(c)}" for c in clips]


def _clips(*sizes: int) -> list[np.ndarray]:
    return [np.zeros(n, dtype=np.float32) for n in sizes]


async def test_requests_waiting_for_the_model_share_one_call_per_language():
    transcriber, pool = CountingTranscriber(), WorkerPool(1)
    batcher = TranscriptBatcher(transcriber, pool)
    first = asyncio.create_task(batcher.transcribe(_clips(1), "en"))
    while not transcriber.calls:  # the lone first request runs at once
        await asyncio.sleep(0.001)
    waiting = [asyncio.create_task(batcher.transcribe(_clips(*sizes), language))
               for sizes, language in (((2, 3), "en"), ((4,), "de"), ((5,), "en"), ((6,), "xx"))]
    await asyncio.sleep(0)
    transcriber.release.set()
    assert await first == ["en:1"]
    assert await waiting[0] == ["en:2", "en:3"] and await waiting[2] == ["en:5"]
    assert await waiting[1] == ["de:4"]
    with pytest.raises(EngineInputError):
        await waiting[3]
    assert transcriber.calls == [([1], "en"), ([2, 3, 5], "en"), ([4], "de"), ([6], "xx")]
    assert (batcher.calls, batcher.clips) == (4, 6)
    pool.close()


async def test_a_request_right_after_a_drain_ends_is_not_left_waiting():
    """The caller of a finished batch wakes before its drain's task is reaped: asking again at once
    must start a new drain, not wait for one that has ended."""
    transcriber, pool = CountingTranscriber(), WorkerPool(1)
    transcriber.release.set()
    batcher = TranscriptBatcher(transcriber, pool)


    async def ask_in_a_row() -> list[list[str]]:  # awaited directly: this task wakes first
        return [await batcher.transcribe(_clips(size), "en") for size in (1, 2, 3)]

    assert await asyncio.wait_for(ask_in_a_row(), 5) == [["en:1"], ["en:2"], ["en:3"]]
    pool.close()
