"""The miner service with a deliberately slow engine: its own deadline, stake order, no lost slots."""

from __future__ import annotations

import asyncio
import threading
import time

from protocol import SummarizationSynapse
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines import Engines, LexRankSummarizer, PiperSynthesizer, WhisperTranscriber
from subnet_proxy.engines.base import Summarizer
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerLimits, MinerService


class SlowSummarizer(Summarizer):
    """A fault injected on purpose: every call takes ``delay`` seconds of worker time."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        """Nothing to load."""

    def summarize(self, text: str, max_words: int | None = None) -> str:
        time.sleep(self.delay)
        with self._lock:
            self.calls.append(text)
        return LexRankSummarizer().summarize(text, max_words)


def _service(delay: float) -> tuple[MinerService, SlowSummarizer]:
    slow = SlowSummarizer(delay)
    settings = EngineSettings()
    engines = Engines(transcriber=WhisperTranscriber(settings), synthesizer=PiperSynthesizer(settings),
                      summarizer=slow, workers=1)
    neurons = tuple(Neuron(uid=i, hotkey=f"v{i}", coldkey="c", stake=stake, ip="127.0.0.1", port=1,
                           validator_permit=True, last_update=0) for i, stake in enumerate([1.0, 500.0, 20.0]))
    view = MetagraphView(MetagraphSnapshot(netuid=1, block=0, neurons=neurons))
    return MinerService(engines, view, AdmissionPolicy(), MinerLimits()), slow


def _synapse(caller: str, text: str, timeout: float) -> SummarizationSynapse:
    synapse = SummarizationSynapse(text=text, max_words=5, timeout=timeout)
    synapse.dendrite.hotkey = caller
    return synapse


TEXT = "The river rose overnight. Farmers moved their herds to higher ground. The bridge held."


async def test_work_past_the_synapse_timeout_is_answered_408_on_time():
    service, _ = _service(delay=1.0)
    started = time.monotonic()
    answer = await service.summarize(_synapse("v0", TEXT, timeout=0.4))
    assert time.monotonic() - started < 0.8
    assert answer.axon.status_code == 408 and answer.summary is None
    await asyncio.sleep(0.8)  # the abandoned call finishes in its worker and gives the slot back
    ok = await service.summarize(_synapse("v0", TEXT, timeout=5.0))
    assert ok.summary and ok.axon.status_code is None
    service.engines.close()


async def test_waiting_callers_are_served_by_stake():
    service, slow = _service(delay=0.2)
    first = asyncio.ensure_future(service.summarize(_synapse("v0", "first. " + TEXT, timeout=10)))
    await asyncio.sleep(0.05)  # "first" holds the only worker
    queued = [asyncio.ensure_future(service.summarize(_synapse(hotkey, f"{hotkey}. " + TEXT, timeout=10)))
              for hotkey in ("v0", "v2", "v1")]  # stakes 1, 20, 500
    await asyncio.gather(first, *queued)
    assert [call.split(".")[0] for call in slow.calls] == ["first", "v1", "v2", "v0"]
    service.engines.close()


async def test_a_caller_that_cannot_get_a_worker_in_time_gets_408():
    service, slow = _service(delay=0.6)
    busy = asyncio.ensure_future(service.summarize(_synapse("v1", TEXT, timeout=10)))
    await asyncio.sleep(0.05)
    answer = await service.summarize(_synapse("v0", TEXT, timeout=0.3))
    assert answer.axon.status_code == 408 and "waiting for a free model worker" in answer.axon.status_message
    await busy
    assert len(slow.calls) == 1  # the impatient request never ran
    service.engines.close()
