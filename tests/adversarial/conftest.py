"""The adversarial line-up: the honest reference miner and nine bad miners on real axons, started once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bittensor as bt
import pytest
from bittensor_wallet import Wallet

from protocol import SummarizationSynapse, TranscriptionSynapse, TTSSynapse, encode_audio
from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.config import AxonSettings
from subnet_proxy.engines import Engines
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerAxon, MinerLimits, MinerService
from tests.adversarial import miners
from tests.conftest import free_port, make_wallet

#: the bad miners, by the name the tests report.
BAD = ("empty", "random", "echo", "noise", "silence", "other_sentence", "copycat", "late", "oversize")


@dataclass(frozen=True)
class Miner:
    name: str
    uid: int
    wallet: Wallet
    info: bt.AxonInfo


@dataclass(frozen=True)
class LineUp:
    validator: Wallet
    honest: Miner
    bad: tuple[Miner, ...]

    @property
    def all(self) -> tuple[Miner, ...]:
        return (self.honest, *self.bad)


class LeakyService(MinerService):
    """The reference miner, unchanged, except that each answer is also shown to a colluding hotkey."""

    def __init__(self, *args: Any, leak: miners.AnswerLeak) -> None:
        super().__init__(*args)
        self.leak = leak

    async def transcribe(self, synapse: TranscriptionSynapse) -> TranscriptionSynapse:
        answer = await super().transcribe(synapse)
        self.leak.publish(answer)
        return answer

    async def synthesize(self, synapse: TTSSynapse) -> TTSSynapse:
        answer = await super().synthesize(synapse)
        self.leak.publish(answer)
        return answer

    async def summarize(self, synapse: SummarizationSynapse) -> SummarizationSynapse:
        answer = await super().summarize(synapse)
        self.leak.publish(answer)
        return answer


def _behaviour(name: str, engines: Engines, leak: miners.AnswerLeak) -> miners.Behaviour:
    if name == "other_sentence":
        speech = engines.synthesizer.synthesize(miners.OTHER_SENTENCE)
        return miners.other_sentence(encode_audio(speech.samples, speech.sample_rate, "wav"))
    if name == "copycat":
        return miners.copycat(leak)
    if name in ("random", "noise"):
        return getattr(miners, name if name != "random" else "random_text")(seed=len(name))
    return getattr(miners, name)()


@pytest.fixture(scope="session")
def lineup(tmp_path_factory: pytest.TempPathFactory, engines: Engines) -> Iterator[LineUp]:
    root: Path = tmp_path_factory.mktemp("adversarial")
    wallets = root / "wallets"
    validator = make_wallet(wallets, "validator")
    honest_wallet = make_wallet(wallets, "honest")
    bad_wallets = [make_wallet(wallets, name) for name in BAD]

    chain = LocalChain(root / "chain.json", netuid=1)
    chain.register_sync(Registration.of_wallet(validator, stake=100.0, validator_permit=True))
    chain.register_sync(Registration.of_wallet(honest_wallet, ip="127.0.0.1", port=1))
    leak = miners.AnswerLeak()
    service = LeakyService(engines, MetagraphView(chain.snapshot_sync()), AdmissionPolicy(), MinerLimits(), leak=leak)
    honest_axon = MinerAxon(AxonSettings(ip="127.0.0.1", port=free_port()), honest_wallet, service,
                            max_body_bytes=40 * 1024 * 1024, external_ip="127.0.0.1")
    asyncio.run(honest_axon.start())
    honest = Miner("honest", 0, honest_wallet, honest_axon.axon.info())

    axons: list[bt.Axon] = []
    bad: list[Miner] = []
    try:
        for uid, (name, wallet) in enumerate(zip(BAD, bad_wallets, strict=True), start=1):
            axon = miners.serve(wallet, _behaviour(name, engines, leak))
            axons.append(axon)
            bad.append(Miner(name, uid, wallet, axon.info()))
        yield LineUp(validator=validator, honest=honest, bad=tuple(bad))
    finally:
        for axon in axons:
            axon.stop()
        asyncio.run(honest_axon.stop())
