"""A reference miner slower than the synapse timeout answers empty, delivers through the real side-server,
and the validator merges the delivered answer: the task is approved with it.

Everything is real on 127.0.0.1: the validator's loops and dendrite, the side-server's signed endpoint,
the miner's axon, service and deliverer, Whisper on both sides (the miner's wrapped in a deliberate
delay: the fault this test injects), speech synthesized by Piper.
"""

from __future__ import annotations

import threading
import time

import pytest

from protocol import DecodedAudio, encode_audio
from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.chain.local import Registration
from subnet_proxy.config import AxonSettings
from subnet_proxy.engines import Engines
from subnet_proxy.engines.base import Transcriber, Transcript
from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.kinds import task_timeout
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerAxon, MinerLimits, MinerService
from subnet_proxy.miner.delivery import Deliverer, DeliveryPolicy
from subnet_proxy.server.app import create_app, start_server
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import Task, TaskInput, TaskKind, TaskStatus
from subnet_proxy.validator.codec import MINER_RESPONSE_PATH
from tests.conftest import free_port, make_wallet

pytestmark = pytest.mark.slow  # real Whisper and Piper

BASE_TIMEOUT_S = 1.0
SPOKEN = "The river rose overnight and the farmers moved their herds to higher ground."


class SlowTranscriber(Transcriber):
    """The real transcriber, made slower than the synapse timeout on purpose."""

    def __init__(self, inner: Transcriber, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        self.inner.load()

    def transcribe(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)  # a worker thread, not the event loop
        return self.inner.transcribe(audio, language)


async def _slow_miner(harness, engines, delay_s: float
                      ) -> tuple[int, MinerAxon, MetagraphView, SlowTranscriber, Engines]:
    wallet = make_wallet(harness.root / "wallets", "slow-miner")
    slow = SlowTranscriber(engines.transcriber, delay_s)
    miner_engines = Engines(transcriber=slow, synthesizer=engines.synthesizer, summarizer=engines.summarizer)
    view = MetagraphView(MetagraphSnapshot(netuid=harness.chain.netuid, block=0, neurons=()))
    service = MinerService(miner_engines, view, AdmissionPolicy(), MinerLimits(),
                           delivery=Deliverer(wallet.hotkey, DeliveryPolicy(first_pause_s=0.2, public_only=False)))
    port = free_port()
    axon = MinerAxon(AxonSettings(ip="127.0.0.1", port=port), wallet, service, max_body_bytes=5_000_000,
                     external_ip="127.0.0.1")
    await axon.start()
    uid = await harness.chain.register(Registration.of_wallet(wallet, ip="127.0.0.1", port=port))
    return uid, axon, view, slow, miner_engines


async def test_a_miner_slower_than_the_timeout_delivers_later_and_its_answer_is_approved(harness, engines):
    speech = engines.synthesizer.synthesize(SPOKEN, sample_rate=16_000)
    audio = encode_audio(speech.samples, 16_000, "wav")
    ref = await harness.blobs.put(audio, content_type="audio/wav")
    task = Task(kind=TaskKind.TRANSCRIPTION, owner="client",
                input=TaskInput(audio_blob=ref.key, audio_format="wav", audio_seconds=round(speech.duration_s, 3)))
    timeout = task_timeout(task, BASE_TIMEOUT_S)

    uid, axon, view, slow, miner_engines = await _slow_miner(harness, engines, delay_s=timeout + 1.0)
    keys = SqliteKeyStore(harness.root / "keys.db")
    server = None
    try:
        validator = await harness.validator(sample_size=1, timeout=BASE_TIMEOUT_S, lease_s=5.0)
        view.update(await harness.chain.snapshot())  # the miner now knows the validator (permit, stake)
        app = create_app(validator.settings, store=WatchedStore(harness.store), blobs=harness.blobs, keys=keys,
                         metagraph=validator.metagraph, own_hotkey=validator.hotkey)
        server = await start_server(app, validator.settings, host="127.0.0.1", port=0)
        validator.dispatcher.offer_delivery(server.url)

        task, _ = await harness.store.create_task(task)
        done = await harness.wait_status(task.task_id, TaskStatus.APPROVED, TaskStatus.FAILED, timeout=60)
        assert done.status is TaskStatus.APPROVED, done.error
    finally:
        if server is not None:
            await server.stop()
        await keys.close()
        await axon.stop()
        miner_engines.close()

    [response] = await harness.store.list_responses(task.task_id)
    assert response.uid == uid and response.state == "ok"
    assert response.latency_s is not None and response.latency_s > timeout  # it really came after the timeout
    assert slow.calls == 1  # delivered from the same job, not recomputed
    result = await harness.store.get_final_result(task.task_id)
    assert result is not None and result.uid == uid and result.text == response.text
    assert "river" in (result.text or "").lower()
    [evaluation] = await harness.store.list_evaluations(task.task_id)
    [reward] = evaluation.rewards
    assert reward.uid == uid and reward.reward > 0.5  # judged against the delivery window, not the timeout
    assert validator.dispatcher.delivery_url == server.url + MINER_RESPONSE_PATH
