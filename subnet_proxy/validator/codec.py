"""Between the task store and the wire: a Task as a synapse, an axon's answer as a MinerResponse.

Every synapse names its task (``task_id``) and, when this validator's side-server is reachable by
miners, where a late answer may be delivered (``delivery_url``, see ``delivery_endpoint``).

Also the largest answer a miner may send for a kind (the fan-out refuses bigger ones unread); the
timeout scaled by task size is the registry's (``rewards.registry.task_timeout``), the one the
rewards judge speed against.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from protocol import (
    MAX_SUMMARY_CHARS,
    MAX_TRANSCRIPT_CHARS,
    AudioSynapse,
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    b64decode,
    b64encode,
    mime_type,
)
from protocol.synapses import MAX_AUDIO_B64_CHARS, MAX_SEGMENTS, check_delivery_url
from subnet_proxy.blobs.base import BlobError, BlobStore
from subnet_proxy.tasks import MinerResponse, ResponseState, Task, TaskKind
from subnet_proxy.validator.dendrite import AxonResult, Outcome

#: largest answer beyond the echoed request, per kind (JSON escaping can take 6 bytes a character).
_MAX_OUTPUT_BYTES = {
    TaskKind.TRANSCRIPTION: 6 * MAX_TRANSCRIPT_CHARS + 200 * MAX_SEGMENTS,
    TaskKind.TTS: MAX_AUDIO_B64_CHARS + 4096,
    TaskKind.SUMMARIZATION: 6 * MAX_SUMMARY_CHARS + 4096,
}

_STATE_OF: dict[Outcome, ResponseState] = {
    "ok": "ok", "timeout": "timeout", "unreachable": "error", "http_error": "error",
    "oversize": "invalid", "invalid": "invalid",
}


#: the side-server endpoint miners deliver late answers to (``server.routes_network``).
MINER_RESPONSE_PATH = "/api/v1/miner/response"


def delivery_endpoint(base_url: str | None) -> str | None:
    """The ``delivery_url`` synapses offer for a side-server at ``base_url``; None offers none.

    Raises ValueError for a base the protocol would refuse, so a bad ``--proxy.public_url`` fails
    when the validator starts, not on every task.
    """
    if base_url is None:
        return None
    return check_delivery_url(base_url.rstrip("/") + MINER_RESPONSE_PATH)


class BadTaskInput(ValueError):
    """The task's input cannot be turned into a synapse (missing blob, out of protocol bounds)."""


def max_output_bytes(kind: TaskKind) -> int:
    return _MAX_OUTPUT_BYTES[kind]


async def build_synapse(task: Task, blobs: BlobStore, *, delivery_url: str | None = None) -> AudioSynapse:
    """The synapse miners receive for ``task``; BadTaskInput when the input cannot make one."""
    data = task.input
    offer = {"task_id": task.task_id, "delivery_url": delivery_url}
    try:
        if task.kind is TaskKind.TRANSCRIPTION:
            if not data.audio_blob or not data.audio_format:
                raise BadTaskInput("transcription task without audio")
            audio = await blobs.get(data.audio_blob)
            return TranscriptionSynapse(audio_b64=b64encode(audio), audio_format=data.audio_format,
                                        language=data.language, **offer)
        if task.kind is TaskKind.TTS:
            return TTSSynapse(text=data.text or "", voice=data.voice, **offer)
        return SummarizationSynapse(text=data.text or "", max_words=data.max_words, **offer)
    except (ValidationError, BlobError) as exc:
        raise BadTaskInput(f"{task.kind.value} input unusable: {exc}"[:500]) from exc


@dataclass(frozen=True, slots=True)
class Decoded:
    """A MinerResponse, and the audio bytes of a TTS answer (stored as a blob by the caller)."""

    response: MinerResponse
    audio: bytes | None = None


def decode_result(task: Task, result: AxonResult) -> Decoded:
    """The MinerResponse for one axon result; an ``ok`` answer without the kind's output is invalid."""
    base = dict(task_id=task.task_id, hotkey=result.hotkey, uid=result.uid, latency_s=result.latency_s,
                status_code=result.status_code)
    if not result.ok or result.synapse is None:
        return Decoded(MinerResponse(state=_STATE_OF[result.outcome], message=result.message, **base))
    syn = result.synapse
    if isinstance(syn, TranscriptionSynapse) and syn.transcript is not None:
        segments = [s.model_dump() for s in syn.segments] if syn.segments else None
        return Decoded(MinerResponse(state="ok", text=syn.transcript, segments=segments, **base))
    if isinstance(syn, TTSSynapse) and syn.audio_b64 and syn.audio_format:
        return Decoded(MinerResponse(state="ok", output_format=syn.audio_format,
                                     output_sample_rate=syn.audio_sample_rate, **base),
                       audio=b64decode(syn.audio_b64))
    if isinstance(syn, SummarizationSynapse) and syn.summary:
        return Decoded(MinerResponse(state="ok", text=syn.summary, **base))
    return Decoded(MinerResponse(state="invalid", message="answer carries no output", **base))


async def stored_response(decoded: Decoded, blobs: BlobStore) -> MinerResponse:
    """The response ready for the TaskStore: a TTS answer's audio put in the BlobStore first."""
    if decoded.audio is None:
        return decoded.response
    fmt = decoded.response.output_format or "wav"
    ref = await blobs.put(decoded.audio, content_type=mime_type(fmt))
    return decoded.response.model_copy(update={"output_blob": ref.key})
