"""What the reference miner does with each synapse: admission, priority, deadline, engine call, answer.

Every failure becomes a status on the synapse (400 bad input, 408 out of time, 413 too large,
503 model unavailable), never an exception out of the handler, so one bad request cannot take the
axon down or leave a caller without an answer. A transcription or TTS job that outlasts the synapse
timeout, where the synapse offered ``task_id`` and ``delivery_url``, is not a 408: the synapse is
answered empty on time and the job's output is delivered when done (``delivery.Deliverer``); should
that empty answer reach the validator after its dendrite gave up (the upload and the axon's checks
come before this clock starts), the validator still takes the delivery within its window.

Decoding and encoding run in the engine workers with the model call: a 25 MB MP3 is seconds of CPU
and must not stall the axon's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import bittensor as bt

from protocol import (
    AudioDecodeError,
    AudioSynapse,
    AudioTooLongError,
    DecodedAudio,
    Segment,
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    b64decode,
    b64encode,
    decode_audio,
    encode_audio,
    summary_word_bound,
)
from subnet_proxy.engines import EngineError, EngineInputError, Engines, ModelLoadError, Transcript
from subnet_proxy.miner.admission import AdmissionPolicy, MetagraphView, caller_priority, refusal
from subnet_proxy.miner.delivery import Deliverer, Destination, LateAnswer
from subnet_proxy.miner.gate import PriorityGate

log = logging.getLogger(__name__)

T = TypeVar("T")

#: time kept back from the synapse timeout to serialize and send the answer.
RESPONSE_MARGIN_S = 0.25


@dataclass(frozen=True, slots=True)
class MinerLimits:
    """Bounds on the work one request may ask for (the protocol bounds sizes; these bound cost)."""

    max_audio_s: float = 600.0
    tts_format: str = "flac"


class RequestFailed(Exception):
    """A request cannot be answered; ``status`` is the HTTP status the caller gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _fail(synapse: bt.Synapse, status: int, message: str) -> None:
    if synapse.axon is None:
        synapse.axon = bt.TerminalInfo()
    synapse.axon.status_code = status
    synapse.axon.status_message = message


def _budget(timeout: float | None, started: float) -> float:
    """Seconds left to answer a synapse that arrived at ``started`` (monotonic) with ``timeout``."""
    total = float(timeout) if timeout and timeout > 0 else 12.0
    margin = min(RESPONSE_MARGIN_S, total / 4)
    return total - margin - (time.monotonic() - started)


class MinerService:
    """The axon's blacklist, priority and forward functions for the three synapses."""

    def __init__(self, engines: Engines, view: MetagraphView, policy: AdmissionPolicy, limits: MinerLimits, *,
                 delivery: Deliverer | None = None) -> None:
        self.engines = engines
        self.view = view
        self.policy = policy
        self.limits = limits
        #: None: never deliver late; jobs past the synapse timeout are answered 408 only.
        self.delivery = delivery
        self.gate = PriorityGate(engines.pool.workers)

    # -- admission ---------------------------------------------------------------------------------

    def blacklist(self, synapse: bt.Synapse) -> tuple[bool, str]:
        hotkey = synapse.dendrite.hotkey if synapse.dendrite is not None else None
        reason = refusal(self.view.snapshot, hotkey, self.policy)
        return (True, reason) if reason else (False, "allowed")

    def priority(self, synapse: bt.Synapse) -> float:
        return caller_priority(self.view.snapshot, synapse.dendrite.hotkey if synapse.dendrite else None)

    # -- forward functions -------------------------------------------------------------------------

    async def transcribe(self, synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        async def work() -> Transcript:
            audio = await self.engines.pool.run(self._decode, synapse.audio_b64)
            return await self.engines.transcribe(audio, synapse.language)

        def late(transcript: Transcript) -> LateAnswer:
            return LateAnswer(text=transcript.text, segments=[s.model_dump() for s in _segments(transcript)])

        transcript = await self._serve(synapse, work, late)
        if transcript is not None:
            synapse.transcript = transcript.text
            synapse.segments = _segments(transcript)
        return synapse

    async def synthesize(self, synapse: TTSSynapse) -> TTSSynapse:
        fmt = self.limits.tts_format

        async def work() -> tuple[bytes, int]:
            speech = await self.engines.synthesize(synapse.text, synapse.voice, synapse.sample_rate)
            data = await self.engines.pool.run(encode_audio, speech.samples, speech.sample_rate, fmt)
            return data, speech.sample_rate

        def late(answer: tuple[bytes, int]) -> LateAnswer:
            return LateAnswer(audio=answer[0], audio_format=fmt)

        answer = await self._serve(synapse, work, late)
        if answer is not None:
            synapse.audio_b64 = b64encode(answer[0])
            synapse.audio_format = fmt  # type: ignore[assignment]  # a checked Literal value
            synapse.audio_sample_rate = answer[1]
        return synapse

    async def summarize(self, synapse: SummarizationSynapse) -> SummarizationSynapse:
        async def work() -> str:
            # A validator of an older release may send no bound: the protocol's rule gives the one it judges by.
            return await self.engines.summarize(synapse.text, summary_word_bound(synapse.text, synapse.max_words))

        summary = await self._serve(synapse, work)
        if summary is not None:
            synapse.summary = summary
        return synapse

    # -- the shared path -----------------------------------------------------------------------------

    def _decode(self, audio_b64: str) -> DecodedAudio:
        """Runs in a worker thread: decoding a large file is seconds of CPU."""
        try:
            return decode_audio(b64decode(audio_b64), max_seconds=self.limits.max_audio_s)
        except AudioTooLongError as exc:
            raise RequestFailed(413, f"audio is over this miner's limit of {self.limits.max_audio_s:.0f} s") from exc
        except (AudioDecodeError, ValueError) as exc:
            raise RequestFailed(400, f"audio cannot be decoded: {exc}") from exc

    async def _serve(self, synapse: AudioSynapse, work: Callable[[], Coroutine[Any, Any, T]],
                     late: Callable[[T], LateAnswer] | None = None) -> T | None:
        """Run ``work`` under the priority gate within the synapse's time; None (status set) on failure,
        or None (no status: an empty answer) when the job goes on to a late delivery through ``late``."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.gate.acquire(self.priority(synapse)),
                                   max(0.0, _budget(synapse.timeout, started)))
        except TimeoutError:
            _fail(synapse, 408, "timed out waiting for a free model worker")
            return None
        job = asyncio.ensure_future(work())
        job.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.shield(job), max(0.0, _budget(synapse.timeout, started)))
        except TimeoutError:
            if late is not None and self._defer(synapse, job, late):
                return None
            _fail(synapse, 408, f"not done within the synapse timeout of {synapse.timeout} s")
        except RequestFailed as exc:
            _fail(synapse, exc.status, str(exc))
        except EngineInputError as exc:
            _fail(synapse, 400, str(exc))
        except ModelLoadError as exc:
            log.error("model unavailable: %s", exc)
            _fail(synapse, 503, f"model unavailable: {exc}")
        except EngineError as exc:
            log.warning("engine failed on %s: %s", synapse.name, exc)
            _fail(synapse, 500, f"engine failed: {exc}")
        return None

    def _defer(self, synapse: AudioSynapse, job: asyncio.Future[T], late: Callable[[T], LateAnswer]) -> bool:
        """Hand a job past its timeout to the deliverer when the synapse offered delivery; False otherwise.

        The URL and task id come from this synapse, whose hash, signature and caller the axon and the
        blacklist accepted; the answer is signed for that caller's hotkey alone.
        """
        caller = synapse.dendrite.hotkey if synapse.dendrite is not None else None
        if self.delivery is None or not synapse.task_id or not synapse.delivery_url or not caller:
            return False
        self.delivery.later(job, late, Destination(task_id=synapse.task_id, url=synapse.delivery_url,
                                                   validator_hotkey=caller))
        log.info("task %s: not done within %s s; answering empty and delivering later", synapse.task_id,
                 synapse.timeout)
        return True

    def _finished(self, job: asyncio.Future[Any]) -> None:
        """Free the slot only when the work really ends: a job its caller gave up on still holds a worker."""
        self.gate.release()
        error = None if job.cancelled() else job.exception()  # retrieved, so a late failure is not lost
        if error is not None and not isinstance(error, (RequestFailed, EngineError)):
            log.error("miner job failed on an unexpected error", exc_info=error)


def _segments(transcript: Transcript) -> list[Segment]:
    return [Segment(start=s.start, end=s.end, text=s.text) for s in transcript.segments]
