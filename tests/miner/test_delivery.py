"""Late delivery from the miner: deferral on time, a signed POST to the offered URL only, bounded retries.

The receiving end is a real aiohttp server on 127.0.0.1 that checks each request's signature with the
side-server's own verifier and answers with scripted statuses (faults injected on purpose); the full
path through the real side-server and validator is tests/validator/test_late_delivery.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from bittensor_wallet import Keypair

from protocol import DecodedAudio, TranscriptionSynapse, b64encode
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines import Engines, LexRankSummarizer, PiperSynthesizer
from subnet_proxy.engines.base import Transcriber, Transcript, TranscriptSegment
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerLimits, MinerService
from subnet_proxy.miner.delivery import Deliverer, DeliveryPolicy, Destination, LateAnswer, resolves_to_public
from subnet_proxy.signing import SignatureError, SignatureVerifier
from tests.conftest import free_port

VALIDATOR = Keypair.create_from_uri("//DeliveryValidator")
MINER = Keypair.create_from_uri("//DeliveryMiner")
TASK_ID = "0123456789abcdef0123456789abcdef"
FAST = DeliveryPolicy(attempts=3, first_pause_s=0.05, request_timeout_s=2.0, public_only=False)


@dataclass
class Receiver:
    """A validator-like endpoint: verifies signatures for VALIDATOR, answers ``statuses`` in turn."""

    statuses: list[int]
    url: str = ""
    received: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            caller = SignatureVerifier(VALIDATOR.ss58_address, max_age_s=60).verify(request.headers, body)
        except SignatureError as exc:
            self.refused.append(exc.code)
            return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=401)
        status = self.statuses.pop(0) if self.statuses else 200
        self.received.append({"status": status, "hotkey": caller.hotkey, **json.loads(body)})
        if status != 200:
            return web.json_response({"error": {"code": "scripted", "message": "no"}}, status=status)
        self.arrived.set()
        return web.json_response({"task_id": TASK_ID, "uid": 7, "first": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver(statuses=[])
    app = web.Application()
    app.router.add_post("/api/v1/miner/response", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    recv.url = f"http://127.0.0.1:{port}/api/v1/miner/response"
    yield recv
    await runner.cleanup()


def _done(value: object) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def _to(url: str) -> Destination:
    return Destination(task_id=TASK_ID, url=url, validator_hotkey=VALIDATOR.ss58_address)


async def _drain(deliverer: Deliverer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while deliverer.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert deliverer.pending == 0


async def test_a_busy_validator_is_retried_and_the_answer_arrives_signed(receiver):
    receiver.statuses = [503, 429]
    deliverer = Deliverer(MINER, FAST)
    deliverer.later(_done("hello"), lambda text: LateAnswer(text=text), _to(receiver.url))
    await _drain(deliverer)
    assert [r["status"] for r in receiver.received] == [503, 429, 200]
    final = receiver.received[-1]
    assert final == {"status": 200, "hotkey": MINER.ss58_address, "task_id": TASK_ID, "text": "hello"}
    assert receiver.refused == []


async def test_a_refusal_is_final_and_retries_are_bounded(receiver):
    receiver.statuses = [409]
    deliverer = Deliverer(MINER, FAST)
    deliverer.later(_done("late"), lambda text: LateAnswer(text=text), _to(receiver.url))
    await _drain(deliverer)
    assert [r["status"] for r in receiver.received] == [409]  # already answered: no retry helps

    receiver.statuses, receiver.received = [500, 500, 500, 500], []
    deliverer.later(_done("late"), lambda text: LateAnswer(text=text), _to(receiver.url))
    await _drain(deliverer)
    assert [r["status"] for r in receiver.received] == [500, 500, 500]  # FAST.attempts, then it gives up


async def test_an_unreachable_url_or_a_failed_job_ends_quietly():
    deliverer = Deliverer(MINER, FAST)
    deliverer.later(_done("x"), lambda text: LateAnswer(text=text), _to(f"http://127.0.0.1:{free_port()}/x"))
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("engine crashed"))
    deliverer.later(failed, lambda text: LateAnswer(text=text), _to("http://127.0.0.1:9/never"))
    await _drain(deliverer)


async def test_outside_local_mode_only_public_hosts_get_deliveries(receiver):
    """A permitted validator cannot aim miners at loopback, private or metadata addresses."""
    guarded = Deliverer(MINER, DeliveryPolicy(attempts=1, first_pause_s=0.05, request_timeout_s=2.0))
    for url in (receiver.url, "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/x",
                "http://[::1]/x"):
        guarded.later(_done("x"), lambda text: LateAnswer(text=text), _to(url))
    await _drain(guarded)
    assert receiver.received == []
    assert await resolves_to_public("http://8.8.8.8/api/v1/miner/response")  # a literal: no lookup made
    assert not await resolves_to_public("not a url")


class SlowTranscriber(Transcriber):
    """A fault injected on purpose: a fixed transcript after ``delay`` seconds of worker time."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def load(self) -> None:
        """Nothing to load."""

    def transcribe(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        time.sleep(self.delay)
        return Transcript(text="a slow transcript", segments=(TranscriptSegment(0.0, 1.0, "a slow transcript"),),
                          language="en")


def _service(delay: float, deliverer: Deliverer | None) -> MinerService:
    settings = EngineSettings()
    engines = Engines(transcriber=SlowTranscriber(delay), synthesizer=PiperSynthesizer(settings),
                      summarizer=LexRankSummarizer(), workers=1)
    validator = Neuron(uid=0, hotkey=VALIDATOR.ss58_address, coldkey="c", stake=100.0, ip="127.0.0.1", port=1,
                       validator_permit=True, last_update=0)
    view = MetagraphView(MetagraphSnapshot(netuid=1, block=0, neurons=(validator,)))
    return MinerService(engines, view, AdmissionPolicy(), MinerLimits(), delivery=deliverer)


def _synapse(wav_bytes: bytes, timeout: float, **offer: str) -> TranscriptionSynapse:
    synapse = TranscriptionSynapse(audio_b64=b64encode(wav_bytes), audio_format="wav", timeout=timeout, **offer)
    synapse.dendrite.hotkey = VALIDATOR.ss58_address
    return synapse


async def test_a_job_past_the_timeout_is_answered_empty_on_time_then_delivered(receiver, wav_bytes):
    deliverer = Deliverer(MINER, FAST)
    service = _service(delay=0.8, deliverer=deliverer)
    started = time.monotonic()
    answer = await service.transcribe(_synapse(wav_bytes, 0.4, task_id=TASK_ID, delivery_url=receiver.url))
    assert time.monotonic() - started < 0.6
    assert answer.transcript is None and answer.axon.status_code is None  # empty, not a 408
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    [delivered] = receiver.received
    assert delivered["task_id"] == TASK_ID and delivered["text"] == "a slow transcript"
    assert delivered["segments"] == [{"start": 0.0, "end": 1.0, "text": "a slow transcript"}]
    await _drain(deliverer)
    service.engines.close()


@pytest.mark.parametrize("offer", [{}, {"task_id": TASK_ID}], ids=["no offer", "no delivery_url"])
async def test_without_an_offer_a_late_job_is_still_a_408(receiver, wav_bytes, offer):
    deliverer = Deliverer(MINER, FAST)
    service = _service(delay=0.6, deliverer=deliverer)
    answer = await service.transcribe(_synapse(wav_bytes, 0.3, **offer))
    assert answer.axon.status_code == 408
    assert deliverer.pending == 0
    await asyncio.sleep(0.5)  # the abandoned job ends in its worker; nothing is sent anywhere
    assert receiver.received == []
    service.engines.close()


async def test_a_job_within_the_timeout_answers_on_the_synapse_and_delivers_nothing(receiver, wav_bytes):
    deliverer = Deliverer(MINER, FAST)
    service = _service(delay=0.05, deliverer=deliverer)
    answer = await service.transcribe(_synapse(wav_bytes, 5.0, task_id=TASK_ID, delivery_url=receiver.url))
    assert answer.transcript == "a slow transcript" and answer.axon.status_code is None
    assert deliverer.pending == 0 and receiver.received == []
    service.engines.close()


@dataclass
class Metadata:
    """A loopback "cloud metadata" service holding a secret: nothing the miner sends may reach it."""

    url: str = ""
    hits: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(f"{request.method} {request.path}")
        return web.Response(status=500, text="AKIA-METADATA-SECRET")


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


@pytest.fixture
async def metadata() -> AsyncIterator[Metadata]:
    meta = Metadata()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", meta.handle)
    runner, port = await _serve(app)
    meta.url = f"http://127.0.0.1:{port}/latest/meta-data/iam/credentials"
    yield meta
    await runner.cleanup()


@pytest.mark.parametrize("status", [307, 303, 302])
async def test_a_redirecting_validator_never_steers_the_signed_body_elsewhere(metadata, status, caplog):
    """A 307 would re-POST the signed answer, a 303 turn it into a GET of the metadata path: neither
    is followed, the 3xx is a final refusal, and no foreign reply body is ever logged."""
    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": metadata.url}, text="go there")

    app = web.Application()
    app.router.add_post("/api/v1/miner/response", redirect)
    runner, port = await _serve(app)
    caplog.set_level("DEBUG")
    try:
        deliverer = Deliverer(MINER, FAST)
        deliverer.later(_done("x"), lambda text: LateAnswer(text=text),
                        _to(f"http://127.0.0.1:{port}/api/v1/miner/response"))
        await _drain(deliverer)
    finally:
        await runner.cleanup()
    assert metadata.hits == []
    assert "SECRET" not in caplog.text and "go there" not in caplog.text


async def test_a_foreign_reply_body_is_never_logged(metadata, caplog):
    caplog.set_level("DEBUG")
    deliverer = Deliverer(MINER, DeliveryPolicy(attempts=2, first_pause_s=0.01, request_timeout_s=2.0,
                                                public_only=False))
    deliverer.later(_done("x"), lambda text: LateAnswer(text=text), _to(metadata.url))
    await _drain(deliverer)
    assert len(metadata.hits) == 2  # local mode: loopback allowed, a 500 retried
    assert "SECRET" not in caplog.text
    assert "500" in caplog.text


async def test_a_rebinding_name_never_reaches_loopback(metadata, monkeypatch):
    """The name answers a public address first (the check passes), then 127.0.0.1: the address
    connected to is always the one checked, so the loopback service is never reached."""
    loop = asyncio.get_running_loop()
    answers = ["8.8.8.8", "127.0.0.1", "127.0.0.1", "127.0.0.1"]
    real = loop.getaddrinfo

    async def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example":
            return await real(host, port, *args, **kwargs)
        address = answers.pop(0) if answers else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    port = int(metadata.url.split(":")[2].split("/")[0])
    guarded = Deliverer(MINER, DeliveryPolicy(attempts=3, first_pause_s=0.01, request_timeout_s=0.5))
    guarded.later(_done("x"), lambda text: LateAnswer(text=text),
                  _to(f"http://rebind.example:{port}/latest/meta-data"))
    await _drain(guarded, timeout=10)
    assert metadata.hits == []
