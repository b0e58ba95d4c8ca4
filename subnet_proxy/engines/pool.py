"""Run the engines off the event loop: a bounded worker pool and the async facade over all three.

Model calls are seconds of CPU (or GPU) work; run inline they would stall every other request an
axon or a validator loop is serving. ``Engines`` sends each call to a thread pool of
``settings.engine.workers`` threads (CTranslate2 and onnxruntime release the GIL while they compute),
so at most that many model calls run at once and the rest wait their turn. A caller that gives up
(a synapse timeout cancels its coroutine) also withdraws its call if it has not started yet, so
stale work does not pile up behind a slow request. Every ``TRIM_EVERY`` calls the worker that ran
the last one hands freed heap back to the OS (``heap.malloc_trim``): a long run's RSS stays flat.

The workers run at a lower CPU priority (``settings.engine.nice``, 10 by default): in a validator the
side-server's intake shares the process, and seconds of scoring or challenge-making must not take
the cores from clients handing tasks over (issue 16). Linux keeps a nice value per thread and a new
thread inherits its creator's, so the threads the model runtimes start while loading in a worker
(onnxruntime's and CTranslate2's compute pools) yield too; on an idle machine nice costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from protocol import DecodedAudio
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines.base import Speech, Summarizer, Synthesizer, Transcriber, Transcript
from subnet_proxy.heap import malloc_trim

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: model calls between two returns of freed heap to the OS (a validator makes a few per task).
TRIM_EVERY = 200
#: the workers' default nice value, ``--engine.nice``'s (see the module's docstring).
NICE: int = EngineSettings.model_fields["nice"].default


def lower_priority(nice: int) -> None:
    """Make the calling thread ``nice`` steps nicer (Linux: per thread; elsewhere the call may apply
    to the whole process, so it is skipped). A refusal is logged, never fatal."""
    if nice <= 0 or sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:
        log.warning("engine workers keep their CPU priority: %s", exc)


class WorkerPool:
    """A fixed number of worker threads for blocking model calls, awaited from async code."""

    def __init__(self, workers: int, *, trim_every: int = TRIM_EVERY, nice: int = NICE) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if not 0 <= nice <= 19:
            raise ValueError("nice must be between 0 and 19")
        self.workers = workers
        #: calls submitted and not finished (running ones included); see ``queued``.
        self.in_use = 0
        #: times freed heap was handed back to the OS.
        self.trims = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine",
                                            initializer=lower_priority, initargs=(nice,))
        self._trim = malloc_trim()
        self._trim_every = trim_every
        self._finished = itertools.count(1)  # next() is atomic: worker threads count their calls here

    @property
    def queued(self) -> int:
        """Calls waiting for a free worker (the engine queue depth operators watch)."""
        return max(0, self.in_use - self.workers)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in a worker thread; cancelling the await withdraws it if it has not started."""
        loop = asyncio.get_running_loop()
        self.in_use += 1
        try:
            return await loop.run_in_executor(self._executor, self._counted, functools.partial(fn, *args, **kwargs))
        finally:
            self.in_use -= 1

    def _counted(self, call: Callable[[], T]) -> T:
        """Run ``call`` in this worker, then trim the heap if it was the ``trim_every``-th call."""
        try:
            return call()
        finally:
            if next(self._finished) % self._trim_every == 0 and self._trim is not None:
                self._trim()
                self.trims += 1

    def close(self) -> None:
        """Stop taking work and drop what has not started; running calls finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Engines:
    """The three engines behind one async surface, sharing one bounded worker pool.

    The synchronous engines stay reachable (``.transcriber`` ...) for scripts and tests that are
    not async. Models load lazily on first use (in a worker, never on the loop) or all at once with
    ``load()`` at start-up, so a bad model path fails before the first request.
    """

    def __init__(self, *, transcriber: Transcriber, synthesizer: Synthesizer, summarizer: Summarizer,
                 workers: int = 1, nice: int = NICE) -> None:
        self.transcriber = transcriber
        self.synthesizer = synthesizer
        self.summarizer = summarizer
        self.pool = WorkerPool(workers, nice=nice)

    async def load(self, *, asr: bool = True, tts: bool = True, summarizer: bool = True) -> None:
        """Load the chosen models now; raises ModelLoadError naming the missing package or path."""
        if asr:
            await self.pool.run(self.transcriber.load)
        if tts:
            await self.pool.run(self.synthesizer.load)
        if summarizer:
            await self.pool.run(self.summarizer.load)

    async def transcribe(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        return await self.pool.run(self.transcriber.transcribe, audio, language)

    async def reference_transcript(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        return await self.pool.run(self.transcriber.reference_transcript, audio, language)

    async def word_probabilities(self, audio: DecodedAudio, heard: Transcript, heard_words: Sequence[Sequence[str]],
                                 hypotheses: Sequence[Sequence[str]]) -> list[list[float]] | None:
        return await self.pool.run(self.transcriber.word_probabilities, audio, heard, heard_words, hypotheses)

    async def synthesize(self, text: str, voice: str | None = None, sample_rate: int | None = None) -> Speech:
        return await self.pool.run(self.synthesizer.synthesize, text, voice, sample_rate)

    async def summarize(self, text: str, max_words: int | None = None) -> str:
        return await self.pool.run(self.summarizer.summarize, text, max_words)

    def close(self) -> None:
        self.pool.close()
