"""A real reference miner on 127.0.0.1 with the shipped models, and callers of every standing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bittensor as bt
import pytest
from bittensor_wallet import Wallet

from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.config import AxonSettings
from subnet_proxy.engines import Engines
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerAxon, MinerLimits, MinerService
from tests.conftest import free_port, make_wallet

#: a small body limit, so the oversize tests need no large payloads.
TEST_BODY_LIMIT = 2_000_000
MIN_STAKE = 10.0


@dataclass
class Callers:
    validator: Wallet  # permit, stake 100
    poor_validator: Wallet  # permit, stake 1 (< MIN_STAKE)
    plain: Wallet  # registered, no permit
    stranger: Wallet  # not registered


@dataclass
class RunningMiner:
    axon: MinerAxon
    service: MinerService
    wallet: Wallet
    callers: Callers

    @property
    def info(self) -> bt.AxonInfo:
        return self.axon.axon.info()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.axon.port}"


def start_miner(tmp: Path, engines: Engines, *, limits: MinerLimits | None = None) -> tuple[MinerAxon, RunningMiner]:
    wallets = tmp / "wallets"
    miner = make_wallet(wallets, "miner")
    callers = Callers(make_wallet(wallets, "validator"), make_wallet(wallets, "poor"), make_wallet(wallets, "plain"),
                      make_wallet(wallets, "stranger"))
    chain = LocalChain(tmp / "chain.json", netuid=1)
    chain.register_sync(Registration.of_wallet(miner, ip="127.0.0.1", port=1))
    chain.register_sync(Registration.of_wallet(callers.validator, stake=100.0, validator_permit=True))
    chain.register_sync(Registration.of_wallet(callers.poor_validator, stake=1.0, validator_permit=True))
    chain.register_sync(Registration.of_wallet(callers.plain, stake=500.0, validator_permit=False))
    service = MinerService(engines, MetagraphView(chain.snapshot_sync()), AdmissionPolicy(min_stake=MIN_STAKE),
                           limits or MinerLimits(max_audio_s=60.0))
    port = free_port()
    axon = MinerAxon(AxonSettings(ip="127.0.0.1", port=port), miner, service, max_body_bytes=TEST_BODY_LIMIT,
                     external_ip="127.0.0.1")
    asyncio.run(axon.start())
    return axon, RunningMiner(axon, service, miner, callers)


@pytest.fixture(scope="module")
def miner(tmp_path_factory: pytest.TempPathFactory, engines: Engines) -> Iterator[RunningMiner]:
    axon, running = start_miner(tmp_path_factory.mktemp("miner"), engines)
    try:
        yield running
    finally:
        asyncio.run(axon.stop())


@pytest.fixture
async def dendrite_of():
    """Real bittensor dendrites signed by the given wallets, closed after the test."""
    made: list[bt.Dendrite] = []

    def make(wallet: Wallet) -> bt.Dendrite:
        made.append(bt.Dendrite(wallet=wallet))
        return made[-1]

    yield make
    for dendrite in made:
        await dendrite.aclose_session()
