"""Transcriptions asked for while the model is busy, run together: one ``transcribe_many`` call.

Scoring asks for many short transcripts at once: the N audio answers of a TTS task, and the input
audio of every transcription task being evaluated side by side. Each ``transcribe`` call queues its
clips; a drain takes everything queued (of one language) into one call of the transcriber's
``transcribe_many`` in the engines' pool, which packs short clips into shared Whisper windows. A lone
request runs at once (no waiting for company); requests that arrive while the model is busy share
the next call. At most ``pool.workers`` drains run at once, the pool's own bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from subnet_proxy.engines.base import Transcriber
from subnet_proxy.engines.pool import WorkerPool


@dataclass(frozen=True, slots=True)
class _Request:
    clips: Sequence[np.ndarray]
    language: str | None
    done: asyncio.Future[list[str]]


class TranscriptBatcher:
    """Coalesces concurrent ``transcribe`` calls into ``transcribe_many`` calls in the worker pool."""

    def __init__(self, transcriber: Transcriber, pool: WorkerPool) -> None:
        self._transcriber = transcriber
        self._pool = pool
        self._pending: list[_Request] = []
        self._drains: set[asyncio.Task[None]] = set()
        #: drains started and not yet past their last look at ``_pending`` (counted by the drain itself:
        #: a finished task leaves ``_drains`` only in a later callback, when a request may already wait).
        self._active = 0
        #: ``transcribe_many`` calls made and clips they carried (how much coalescing happens).
        self.calls = 0
        self.clips = 0

    async def transcribe(self, clips: Sequence[np.ndarray], language: str | None) -> list[str]:
        """The texts of 16 kHz mono clips, in order (EngineError as the transcriber raises it)."""
        if not clips:
            return []
        request = _Request(clips, language, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        if self._active < self._pool.workers:
            self._active += 1
            drain = asyncio.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await request.done

    async def _drain(self) -> None:
        try:
            await self._take_all()
        finally:
            self._active -= 1

    async def _take_all(self) -> None:
        while self._pending:
            language = self._pending[0].language
            batch = [r for r in self._pending if r.language == language and not r.done.done()]
            self._pending = [r for r in self._pending if r.language != language and not r.done.done()]
            if not batch:
                continue
            clips = [clip for request in batch for clip in request.clips]
            self.calls += 1
            self.clips += len(clips)
            try:
                texts = await self._pool.run(self._transcriber.transcribe_many, clips, language)
            except asyncio.CancelledError:  # the loop is closing: so are the callers
                for request in batch:
                    request.done.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch, which decides
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                continue
            at = 0
            for request in batch:
                if not request.done.done():
                    request.done.set_result(texts[at:at + len(request.clips)])
                at += len(request.clips)

