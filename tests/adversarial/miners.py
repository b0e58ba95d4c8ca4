"""Dishonest and broken miners on real bittensor axons: every way an answer can be worthless.

No postponed annotations here, on purpose: ``Axon.attach`` compares the forward functions'
signatures against real classes.
"""

import asyncio
import hashlib
import random
import string
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import bittensor as bt
import numpy as np
from bittensor_wallet import Wallet

from protocol import (
    MAX_AUDIO_BYTES,
    MAX_SUMMARY_CHARS,
    MAX_TRANSCRIPT_CHARS,
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    b64encode,
    encode_audio,
)
from tests.conftest import free_port
from tests.validator.axons import wait_port

#: what the "different sentence" miners say, whatever they are asked (not in the corpus).
OTHER_SENTENCE = "Please remember to water the plants on the balcony before you leave for the weekend."
RATE = 16_000

Forward = Callable[[typing.Any], Awaitable[typing.Any]]
INPUTS: dict[type, tuple[str, ...]] = {
    TranscriptionSynapse: ("audio_b64", "audio_format", "language"),
    TTSSynapse: ("text", "voice", "sample_rate"),
    SummarizationSynapse: ("text", "max_words"),
}
OUTPUTS: dict[type, tuple[str, ...]] = {
    TranscriptionSynapse: ("transcript", "segments"),
    TTSSynapse: ("audio_b64", "audio_format", "audio_sample_rate"),
    SummarizationSynapse: ("summary",),
}


def _bypass(synapse: bt.Synapse, **fields: typing.Any) -> None:
    """Set output fields without validation: a broken miner's axon sends whatever it holds."""
    synapse.__dict__.update(fields)


def _audio(synapse: TTSSynapse, data: bytes, fmt: str = "wav") -> TTSSynapse:
    synapse.audio_b64 = b64encode(data)
    synapse.audio_format = fmt  # type: ignore[assignment]
    return synapse


def _speaking_time(text: str) -> int:
    """Samples for a plausible reading of ``text`` (about 15 characters a second)."""
    return int(RATE * max(1.0, len(text) / 15.0))


def _junk_words(rng: random.Random, count: int) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(count))


@dataclass
class Behaviour:
    """One answer per synapse kind (each a coroutine taking and returning the synapse)."""

    transcription: Forward
    tts: Forward
    summarization: Forward


def _answer_text(synapse: typing.Any, text: str) -> typing.Any:
    """Put ``text`` in a text synapse's output field (a TTS synapse is left without output)."""
    if isinstance(synapse, TranscriptionSynapse):
        synapse.transcript = text
    elif isinstance(synapse, SummarizationSynapse):
        synapse.summary = text
    return synapse


def empty() -> Behaviour:
    async def text(synapse: typing.Any) -> typing.Any:
        return _answer_text(synapse, "")

    return Behaviour(text, text, text)


def random_text(seed: int) -> Behaviour:
    rng = random.Random(seed)

    async def transcription(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        synapse.transcript = _junk_words(rng, 20)
        return synapse

    async def tts(synapse: TTSSynapse) -> TTSSynapse:  # random bytes claimed to be a WAV file
        return _audio(synapse, rng.randbytes(40_000))

    async def summarization(synapse: SummarizationSynapse) -> SummarizationSynapse:
        synapse.summary = _junk_words(rng, 20)
        return synapse

    return Behaviour(transcription, tts, summarization)


def echo() -> Behaviour:
    """Hands the input back: the source as its summary, the text's bytes as audio, the base64 as a transcript."""

    async def transcription(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        synapse.transcript = synapse.audio_b64[:400]
        return synapse

    async def tts(synapse: TTSSynapse) -> TTSSynapse:
        return _audio(synapse, synapse.text.encode())

    async def summarization(synapse: SummarizationSynapse) -> SummarizationSynapse:
        synapse.summary = synapse.text
        return synapse

    return Behaviour(transcription, tts, summarization)


def noise(seed: int) -> Behaviour:
    rng = np.random.default_rng(seed)

    async def transcription(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        synapse.transcript = "".join(chr(c) for c in rng.integers(33, 127, 300))
        return synapse

    async def tts(synapse: TTSSynapse) -> TTSSynapse:
        samples = rng.uniform(-0.5, 0.5, _speaking_time(synapse.text)).astype(np.float32)
        return _audio(synapse, encode_audio(samples, RATE, "wav"))

    async def summarization(synapse: SummarizationSynapse) -> SummarizationSynapse:
        synapse.summary = "".join(chr(c) for c in rng.integers(33, 127, 300))
        return synapse

    return Behaviour(transcription, tts, summarization)


def silence() -> Behaviour:
    async def text(synapse: typing.Any) -> typing.Any:
        return _answer_text(synapse, " \n ")

    async def tts(synapse: TTSSynapse) -> TTSSynapse:
        return _audio(synapse, encode_audio(np.zeros(_speaking_time(synapse.text), np.float32), RATE, "flac"), "flac")

    return Behaviour(text, tts, text)


def other_sentence(spoken: bytes) -> Behaviour:
    """A real sentence, well spoken (``spoken``: Piper reading OTHER_SENTENCE), that is not the one asked for."""

    async def transcription(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        synapse.transcript = OTHER_SENTENCE
        return synapse

    async def tts(synapse: TTSSynapse) -> TTSSynapse:
        return _audio(synapse, spoken)

    async def summarization(synapse: SummarizationSynapse) -> SummarizationSynapse:
        synapse.summary = OTHER_SENTENCE
        return synapse

    return Behaviour(transcription, tts, summarization)


class AnswerLeak:
    """Answers one miner gave, readable by a colluding hotkey: two hotkeys, one operator, one answer."""

    def __init__(self) -> None:
        self._answers: dict[str, dict[str, typing.Any]] = {}

    @staticmethod
    def key(synapse: bt.Synapse) -> str:
        inputs = tuple(repr(getattr(synapse, name)) for name in INPUTS[type(synapse)])
        return hashlib.sha256(repr((type(synapse).__name__, inputs)).encode()).hexdigest()

    def publish(self, synapse: bt.Synapse) -> None:
        self._answers[self.key(synapse)] = {name: getattr(synapse, name) for name in OUTPUTS[type(synapse)]}

    async def wait(self, synapse: bt.Synapse, timeout: float) -> dict[str, typing.Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self._answers.get(self.key(synapse))
            if answer is not None:
                return answer
            await asyncio.sleep(0.02)
        return None


def copycat(leak: AnswerLeak, relay_s: float = 0.5) -> Behaviour:
    """Returns, byte for byte, the answer another hotkey gave to the same request.

    It can only copy an answer once that exists, and passing it on costs it ``relay_s``: the copy
    reaches the validator after the original.
    """

    async def copy(synapse: typing.Any) -> typing.Any:
        answer = await leak.wait(synapse, (synapse.timeout or 12.0) - 0.5)
        await asyncio.sleep(relay_s)
        for name, value in (answer or {}).items():
            setattr(synapse, name, value)
        return synapse

    return Behaviour(copy, copy, copy)


def late() -> Behaviour:
    """Answers well past the timeout (the dendrite gives up first)."""

    async def slow(synapse: typing.Any) -> typing.Any:
        await asyncio.sleep((synapse.timeout or 12.0) + 2.0)
        return _answer_text(synapse, "an answer that comes far too late")

    return Behaviour(slow, slow, slow)


def oversize() -> Behaviour:
    """Answers past the protocol's bounds (sent unvalidated, as a broken or hostile miner would)."""

    async def transcription(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        _bypass(synapse, transcript="word " * (MAX_TRANSCRIPT_CHARS // 5 + 10))
        return synapse

    async def tts(synapse: TTSSynapse) -> TTSSynapse:
        _bypass(synapse, audio_b64=b64encode(b"\0" * (MAX_AUDIO_BYTES + 3)), audio_format="wav")
        return synapse

    async def summarization(synapse: SummarizationSynapse) -> SummarizationSynapse:
        _bypass(synapse, summary="word " * (MAX_SUMMARY_CHARS // 5 + 10))
        return synapse

    return Behaviour(transcription, tts, summarization)


def serve(wallet: Wallet, behaviour: Behaviour) -> bt.Axon:
    """A started stock axon answering the three synapses with ``behaviour``."""
    port = free_port()
    axon = bt.Axon(wallet=wallet, ip="127.0.0.1", port=port, external_ip="127.0.0.1", external_port=port)

    async def forward_transcription(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        return await behaviour.transcription(synapse)

    async def forward_tts(synapse: TTSSynapse) -> TTSSynapse:
        return await behaviour.tts(synapse)

    async def forward_summarization(synapse: SummarizationSynapse) -> SummarizationSynapse:
        return await behaviour.summarization(synapse)

    for forward in (forward_transcription, forward_tts, forward_summarization):
        axon.attach(forward_fn=forward)
    axon.start()
    wait_port(port)
    return axon
