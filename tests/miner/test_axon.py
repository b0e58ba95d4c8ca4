"""The reference miner on a real axon, queried by real bittensor dendrites over 127.0.0.1."""

from __future__ import annotations

import json
import socket

import aiohttp
import bittensor as bt
import jiwer
import numpy as np
import pytest

from protocol import (
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    b64encode,
    decode_audio,
    encode_audio,
)
from tests.miner.conftest import TEST_BODY_LIMIT, RunningMiner

pytestmark = pytest.mark.slow

SENTENCE = "The children walked to school in the rain and their teacher gave them warm tea."
ARTICLE = (
    "The storm reached the coast on Tuesday night. Fishermen had pulled their boats onto the beach a day "
    "earlier. Power failed in three villages, and the roads to the north were closed by fallen trees. "
    "By Wednesday morning crews had restored electricity to most homes. The harbor master said the damage "
    "to the pier would take a month to repair. Schools reopened on Thursday."
)


async def ask(dendrite: bt.Dendrite, miner: RunningMiner, synapse: bt.Synapse, timeout: float) -> bt.Synapse:
    """The answered synapse itself (status included), not its deserialized output."""
    return await dendrite.call(miner.info, synapse, timeout=timeout, deserialize=False)


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


async def test_answers_all_three_synapses(miner, dendrite_of, engines):
    dendrite = dendrite_of(miner.callers.validator)

    tts = await ask(dendrite, miner, TTSSynapse(text=SENTENCE, sample_rate=16_000), timeout=30)
    assert tts.is_success, tts.axon.status_message
    audio = decode_audio(tts.deserialize())
    assert tts.audio_format == "flac" and audio.sample_rate == tts.audio_sample_rate == 16_000
    assert 2.0 < audio.duration_s < 10.0

    wav = encode_audio(audio.samples, audio.sample_rate, "wav")
    asr = await ask(dendrite, miner, TranscriptionSynapse(audio_b64=b64encode(wav), audio_format="wav",
                                                               language="en"), timeout=30)
    assert asr.is_success, asr.axon.status_message
    assert jiwer.wer(_words(SENTENCE), _words(asr.transcript)) < 0.15
    assert asr.segments and asr.segments[0].start >= 0 and asr.segments[-1].end <= audio.duration_s + 0.5

    summary = await ask(dendrite, miner, SummarizationSynapse(text=ARTICLE, max_words=25), timeout=30)
    assert summary.is_success, summary.axon.status_message
    assert 5 <= len(summary.summary.split()) <= 25
    assert summary.summary.split(". ")[0].rstrip(".") in ARTICLE


@pytest.mark.parametrize("who,reason", [("stranger", "not registered"), ("plain", "no validator permit"),
                                        ("poor_validator", "below the minimum")])
async def test_blacklists_callers_that_are_not_staked_validators(miner, dendrite_of, who, reason):
    dendrite = dendrite_of(getattr(miner.callers, who))
    answer = await ask(dendrite, miner, SummarizationSynapse(text=ARTICLE, max_words=20), timeout=10)
    assert answer.axon.status_code == 403
    assert reason in answer.axon.status_message
    assert answer.summary is None


def test_priority_is_the_callers_stake(miner):
    snapshot = miner.service.view.snapshot
    validator = snapshot.by_hotkey(miner.callers.validator.hotkey.ss58_address)
    synapse = SummarizationSynapse(text="x")
    synapse.dendrite.hotkey = validator.hotkey
    assert miner.service.priority(synapse) == 100.0
    synapse.dendrite.hotkey = miner.callers.stranger.hotkey.ss58_address
    assert miner.service.priority(synapse) == 0.0


@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
async def test_oversize_body_is_refused_before_it_is_read(miner, dendrite_of):
    big = b64encode(b"RIFF" + bytes(TEST_BODY_LIMIT))  # valid base64, over the miner's limit once in JSON
    dendrite = dendrite_of(miner.callers.validator)
    answer = await ask(dendrite, miner, TranscriptionSynapse(audio_b64=big, audio_format="wav"), timeout=10)
    assert answer.axon.status_code == 413
    assert "over the miner's limit" in answer.axon.status_message

    # A client that declares a huge body gets 413 at once, without sending it.
    with socket.create_connection(("127.0.0.1", miner.axon.port), timeout=5) as sock:
        sock.sendall(b"POST /TranscriptionSynapse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 999999999999\r\n\r\n")
        reply = b""
        while b"}}" not in reply:  # the JSON error body ends the reply
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    head, body = reply.decode().split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "payload_too_large"


async def test_chunked_oversize_body_is_refused(miner):
    async def body():
        for _ in range(TEST_BODY_LIMIT // 65_536 + 2):
            yield b" " * 65_536

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{miner.url}/SummarizationSynapse", data=body()) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_audio_longer_than_the_limit_is_refused(miner, dendrite_of):
    long_audio = encode_audio(np.zeros(61 * 8_000, dtype=np.float32), 8_000, "flac")  # 61 s > max_audio_s 60
    dendrite = dendrite_of(miner.callers.validator)
    answer = await ask(dendrite, miner, TranscriptionSynapse(audio_b64=b64encode(long_audio), audio_format="flac"),
                                 timeout=10)
    assert answer.axon.status_code == 413 and "limit of 60 s" in answer.axon.status_message


@pytest.mark.parametrize("synapse,message", [
    (TranscriptionSynapse(audio_b64=b64encode(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10), audio_format="wav"),
     "cannot be decoded"),
    (TranscriptionSynapse(audio_b64=b64encode(b"just some text, not audio"), audio_format="mp3"), "cannot be decoded"),
    (TTSSynapse(text="Hello there.", voice="de_DE-thorsten-high"), "not available"),
    (SummarizationSynapse(text="?!? ... !!!"), "no words"),
])
async def test_bad_requests_get_a_clear_400(miner, dendrite_of, synapse, message):
    answer = await ask(dendrite_of(miner.callers.validator), miner, synapse, timeout=10)
    assert answer.axon.status_code == 400
    assert message in answer.axon.status_message


async def test_survives_garbage_and_keeps_answering(miner, dendrite_of):
    async with aiohttp.ClientSession() as session:
        for path, data in [("/TranscriptionSynapse", b"{not json"), ("/TTSSynapse", b"\xff\xfe\x00garbage"),
                           ("/SummarizationSynapse", json.dumps({"text": 5, "max_words": "many"}).encode()),
                           ("/NoSuchSynapse", b"{}"), ("/TTSSynapse", b"")]:
            async with session.post(miner.url + path, data=data,
                                    headers={"Content-Type": "application/json"}) as response:
                assert 400 <= response.status < 600
    answer = await ask(dendrite_of(miner.callers.validator), miner, SummarizationSynapse(text=ARTICLE, max_words=20),
                       timeout=10)
    assert answer.is_success


async def test_a_request_that_cannot_finish_in_time_times_out(miner, dendrite_of, engines):
    speech = engines.synthesizer.synthesize(ARTICLE, sample_rate=16_000)  # ~20 s of speech: seconds to transcribe
    audio = encode_audio(speech.samples, 16_000, "flac")
    dendrite = dendrite_of(miner.callers.validator)
    late = await ask(dendrite, miner, TranscriptionSynapse(audio_b64=b64encode(audio), audio_format="flac"),
                               timeout=0.5)
    assert late.axon.status_code == 408 or late.dendrite.status_code == 408
    ok = await ask(dendrite, miner, SummarizationSynapse(text=ARTICLE, max_words=20), timeout=30)
    assert ok.is_success
