"""Answer checks the kinds share: a text answer's bounds, an audio answer's decodability.

A kind's ``check_answer`` is one of these with its own limits; it runs on both ways an answer
arrives (``wire.synapse_output``, ``wire.delivered_output``), so both accept and refuse alike.
"""

from __future__ import annotations

import asyncio

from protocol import AudioDecodeError, AudioInfo, probe_audio
from protocol.audio import b64decode
from protocol.synapses import MAX_SAMPLE_RATE
from subnet_proxy.kinds.base import AnswerRefused, AudioProbe, Output, RawAnswer


def check_text(kind: str, raw: RawAnswer, *, limit: int, segments: bool = False) -> Output:
    """A text answer: non-blank, at most ``limit`` characters; its segments kept when ``segments``."""
    if raw.text is None or not raw.text.strip():
        raise AnswerRefused("missing_field", f"a {kind} answer needs text", empty=True)
    if len(raw.text) > limit:
        raise AnswerRefused("invalid_request", f"text longer than {limit} characters")
    kept = [s.model_dump() for s in raw.segments] if segments and raw.segments else None
    return Output(text=raw.text, segments=kept)


async def protocol_probe(audio: bytes) -> AudioInfo:
    """``probe_audio`` in a worker thread at the protocol's rates, within its default sample bound."""
    return await asyncio.to_thread(probe_audio, audio, max_rate=MAX_SAMPLE_RATE)


async def check_audio(kind: str, raw: RawAnswer, probe: AudioProbe) -> Output:
    """An audio answer: base64 of a file that ``probe`` finds decodable (a compressed file is decoded
    in full, bounded by samples); stored with the format and rate the bytes have."""
    if not raw.audio_b64:
        raise AnswerRefused("missing_field", f"a {kind} answer needs audio_b64", empty=True)
    try:
        audio = b64decode(raw.audio_b64)
        info = await probe(audio)
    except (ValueError, AudioDecodeError) as exc:
        raise AnswerRefused("invalid_audio", f"audio_b64 is not decodable audio: {exc}") from exc
    return Output(audio=audio, audio_format=info.format, sample_rate=info.sample_rate)
