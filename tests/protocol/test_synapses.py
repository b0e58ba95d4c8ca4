"""The wire contract: JSON round trips, hash coverage of inputs, bounds, and a real axon round trip."""


import asyncio
import typing

import bittensor as bt
import numpy as np
import pytest
from pydantic import ValidationError

import protocol
from protocol import (
    MAX_AUDIO_BYTES,
    MAX_TTS_TEXT_CHARS,
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    b64encode,
    decode_audio,
    encode_audio,
)
from tests.conftest import free_port, tone


def _transcription(wav: bytes, **kw) -> TranscriptionSynapse:
    return TranscriptionSynapse(audio_b64=b64encode(wav), audio_format="wav", **kw)


def test_spec_version_is_1000_major_10_minor_patch():
    assert protocol.spec_version("1.2.3") == 1023
    assert protocol.spec_version("2.0.11") == 2011
    assert protocol.__spec_version__ == protocol.spec_version(protocol.__version__)


@pytest.mark.parametrize(
    "synapse",
    [
        TranscriptionSynapse(audio_b64=b64encode(b"RIFF0000WAVE"), audio_format="wav", language="en",
                             transcript="hello", segments=[{"start": 0.0, "end": 1.0, "text": "hello"}]),
        TTSSynapse(text="hello there", voice="joe", sample_rate=22050,
                   audio_b64=b64encode(b"fLaC...."), audio_format="flac", audio_sample_rate=22050),
        SummarizationSynapse(text="A long text. Another sentence.", max_words=10, summary="A long text."),
    ],
    ids=["transcription", "tts", "summarization"],
)
def test_json_round_trip_keeps_every_field(synapse):
    again = type(synapse).model_validate_json(synapse.model_dump_json())
    assert again.model_dump() == synapse.model_dump()
    assert again.body_hash == synapse.body_hash


def test_body_hash_covers_every_input_and_no_output(wav_bytes):
    base = _transcription(wav_bytes, language="en")
    assert _transcription(wav_bytes, language="de").body_hash != base.body_hash
    other = encode_audio(tone(freq=880.0), 16_000, "wav")
    assert _transcription(other, language="en").body_hash != base.body_hash
    answered = _transcription(wav_bytes, language="en", transcript="anything")
    assert answered.body_hash == base.body_hash

    tts = TTSSynapse(text="hi", voice="a")
    assert TTSSynapse(text="hi", voice="b").body_hash != tts.body_hash
    assert TTSSynapse(text="hi", voice="a", sample_rate=16000).body_hash != tts.body_hash
    summ = SummarizationSynapse(text="x y z", max_words=10)
    assert SummarizationSynapse(text="x y z", max_words=20).body_hash != summ.body_hash
    assert SummarizationSynapse(text="x y z", max_words=10, summary="x").body_hash == summ.body_hash


TASK_ID = "0123456789abcdef0123456789abcdef"
URL = "http://127.0.0.1:8000/api/v1/miner/response"


@pytest.mark.parametrize("cls, inputs", [
    (TranscriptionSynapse, {"audio_b64": b64encode(b"RIFF0000WAVE"), "audio_format": "wav"}),
    (TTSSynapse, {"text": "hello"}),
    (SummarizationSynapse, {"text": "x y z"}),
], ids=["transcription", "tts", "summarization"])
def test_task_id_and_delivery_url_are_optional_and_hash_covered(cls, inputs):
    """A late answer's address cannot be swapped in flight: the miner's body-hash check would refuse it."""
    assert {"task_id", "delivery_url"} <= set(cls.required_hash_fields)
    bare = cls(**inputs)
    assert bare.task_id is None and bare.delivery_url is None
    offered = cls(**inputs, task_id=TASK_ID, delivery_url=URL)
    hashes = {bare.body_hash, offered.body_hash,
              cls(**inputs, task_id="f" * 32, delivery_url=URL).body_hash,
              cls(**inputs, task_id=TASK_ID, delivery_url="http://10.0.0.9:8000/api/v1/miner/response").body_hash}
    assert len(hashes) == 4
    again = cls.model_validate_json(offered.model_dump_json())
    assert (again.task_id, again.delivery_url, again.body_hash) == (TASK_ID, URL, offered.body_hash)


@pytest.mark.parametrize("fields", [
    {"task_id": "ABCDEF0123456789ABCDEF0123456789"},  # uppercase
    {"task_id": "0123"},
    {"task_id": "0123456789abcdef0123456789abcdeg"},
    {"delivery_url": "ftp://127.0.0.1/x"},
    {"delivery_url": "/api/v1/miner/response"},
    {"delivery_url": "http://"},
    {"delivery_url": "http://user:pw@127.0.0.1/x"},
    {"delivery_url": "http://127.0.0.1/x#frag"},
    {"delivery_url": "http://127.0.0.1:99999999/x"},
    {"delivery_url": "http://127.0.0.1/a b"},
    {"delivery_url": "http://127.0.0.1/x\r\nX-Evil: 1"},
    {"delivery_url": "https://example.org/" + "a" * protocol.synapses.MAX_DELIVERY_URL_CHARS},
])
def test_bad_task_id_or_delivery_url_is_refused(fields):
    with pytest.raises(ValidationError):
        SummarizationSynapse(text="x y z", **fields)


@pytest.mark.parametrize(
    "build",
    [
        lambda: TranscriptionSynapse(audio_b64="!!!not base64!!!", audio_format="wav"),
        lambda: TranscriptionSynapse(audio_b64=b64encode(b"abcd"), audio_format="aiff"),
        lambda: TranscriptionSynapse(audio_b64=b64encode(b"abcd"), audio_format="wav", language="english!"),
        lambda: TranscriptionSynapse(audio_b64="A" * (MAX_AUDIO_BYTES // 3 * 4 + 8), audio_format="wav"),
        lambda: TTSSynapse(text=""),
        lambda: TTSSynapse(text="x" * (MAX_TTS_TEXT_CHARS + 1)),
        lambda: TTSSynapse(text="hi", sample_rate=1000),
        lambda: TTSSynapse(text="hi", voice="../../etc/passwd"),
        lambda: SummarizationSynapse(text="text", max_words=0),
        lambda: SummarizationSynapse(text="text", summary="s" * 30_000),
        lambda: TranscriptionSynapse(audio_b64=b64encode(b"abcd"), audio_format="wav",
                                     segments=[{"start": 2.0, "end": 1.0, "text": "backwards"}]),
    ],
)
def test_bad_fields_are_refused(build):
    with pytest.raises(ValidationError):
        build()


def test_deserialize_returns_the_useful_output(wav_bytes):
    assert _transcription(wav_bytes, transcript="hello").deserialize() == "hello"
    assert TTSSynapse(text="hi", audio_b64=b64encode(wav_bytes), audio_format="wav").deserialize() == wav_bytes
    assert TTSSynapse(text="hi").deserialize() is None
    assert SummarizationSynapse(text="a b", summary="a").deserialize() == "a"


@pytest.mark.parametrize("fmt", protocol.AUDIO_FORMATS)
def test_audio_encode_decode_round_trip(fmt):
    samples = tone(seconds=0.5)
    decoded = decode_audio(encode_audio(samples, 16_000, fmt))
    assert decoded.format == fmt
    assert decoded.sample_rate == 16_000
    assert decoded.duration_s == pytest.approx(0.5, abs=0.06)  # lossy codecs pad frames
    assert np.abs(decoded.samples).max() == pytest.approx(0.3, abs=0.06)


@pytest.mark.parametrize("junk", [b"", b"hello world", b"RIFF\x00\x00\x00\x00WAVEjunk", bytes(range(256)) * 10])
def test_decode_refuses_non_audio(junk):
    with pytest.raises(protocol.AudioDecodeError):
        decode_audio(junk)


def test_required_fields_computed_once_per_class(wav_bytes, monkeypatch):
    synapse = _transcription(wav_bytes)
    synapse.to_headers()
    calls = []
    original = TranscriptionSynapse.model_json_schema
    monkeypatch.setattr(TranscriptionSynapse, "model_json_schema",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(*a, **k)))
    for _ in range(5):
        headers = synapse.to_headers()
    assert calls == []
    assert headers["computed_body_hash"] == synapse.body_hash


async def test_round_trip_through_real_axon_and_dendrite(wallet_factory, wav_bytes):
    """Each synapse crosses a real axon on 127.0.0.1 and comes back answered."""
    miner = wallet_factory("miner")
    validator = wallet_factory("validator")

    def transcribe(synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        audio = decode_audio(protocol.b64decode(synapse.audio_b64))
        synapse.transcript = f"{audio.duration_s:.1f} seconds"
        return synapse

    def speak(synapse: TTSSynapse) -> TTSSynapse:
        synapse.audio_b64 = b64encode(encode_audio(tone(0.2), 16_000, "flac"))
        synapse.audio_format = "flac"
        synapse.audio_sample_rate = 16_000
        return synapse

    def summarize(synapse: SummarizationSynapse) -> SummarizationSynapse:
        synapse.summary = synapse.text.split(".")[0] + "."
        return synapse

    def allow_all(synapse: TranscriptionSynapse) -> typing.Tuple[bool, str]:  # noqa: UP006 (bittensor checks it)
        return False, "ok"

    port = free_port()
    axon = bt.Axon(wallet=miner, ip="127.0.0.1", port=port, external_ip="127.0.0.1")
    axon.attach(forward_fn=transcribe, blacklist_fn=allow_all).attach(forward_fn=speak).attach(forward_fn=summarize)
    axon.start()
    dendrite = bt.Dendrite(wallet=validator)
    try:
        await _wait_for_port(port)
        target = axon.info()
        text = await dendrite.call(target, _transcription(wav_bytes), timeout=10)
        assert text == "1.0 seconds"
        audio = await dendrite.call(target, TTSSynapse(text="hello"), timeout=10)
        assert decode_audio(audio).format == "flac"
        summary = await dendrite.call(target, SummarizationSynapse(text="First. Second."), timeout=10)
        assert summary == "First."
        offered = SummarizationSynapse(text="First. Second.", task_id=TASK_ID, delivery_url=URL)
        assert await dendrite.call(target, offered, timeout=10) == "First."
    finally:
        await dendrite.aclose_session()
        axon.stop()


async def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    """The axon serves from a uvicorn thread: wait until it accepts before the first query."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("words", "max_words", "bound"), [
    (40, None, 30), (228, None, 57), (1_000, None, 250), (3_000, None, 250), (228, 12, 12), (3_000, 900, 900),
])
def test_the_summary_bound_is_one_rule_and_travels_in_every_synapse(words: int, max_words: int | None,
                                                                     bound: int) -> None:
    text = " ".join(["word"] * words)
    assert protocol.summary_word_bound(text, max_words) == bound
    synapse = protocol.SummarizationSynapse(text=text, max_words=max_words)
    assert synapse.max_words == bound
    again = protocol.SummarizationSynapse.model_validate_json(synapse.model_dump_json())
    assert again.max_words == bound and again.body_hash == synapse.body_hash
