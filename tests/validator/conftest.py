"""A validator on the real embedded store and local chain, with miners as real axons on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.config import EngineSettings, MockSettings, MonitorSettings, NeuronSettings, Settings
from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.server.app import create_app, start_server
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.tasks import Task, TaskStatus
from subnet_proxy.validator.evaluation import EngineScorer
from subnet_proxy.validator.neuron import Validator
from tests.conftest import make_wallet
from tests.validator.axons import running_axon

VALIDATOR_STAKE = 10_000.0


@pytest.fixture(scope="session")
def scoring(engines):
    """The validator's real scoring models (MiniLM embeddings, VAD) over the session's engines."""
    from subnet_proxy.rewards import ScoringEngines

    return ScoringEngines.build(engines, EngineSettings())


@dataclass
class Harness:
    root: Path
    store: SQLiteTaskStore
    blobs: LocalBlobStore
    chain: LocalChain
    scoring: Any
    stack: ExitStack
    validators: list[Validator] = field(default_factory=list)

    def settings(self, monitor: MonitorSettings | None = None, **neuron: Any) -> Settings:
        fields = dict(data_dir=str(self.root), timeout=3.0, sample_size=2, concurrency=4, lease_s=3.0,
                      synthetic_rate=0.0, shutdown_grace_s=0.5, epoch_length=1)
        fields.update(neuron)
        return Settings(netuid=self.chain.netuid, neuron=NeuronSettings(**fields),
                        mock=MockSettings(enabled=True, block_time_s=0.5), monitor=monitor or MonitorSettings())

    async def add_miner(self, name: str, forward: Callable[..., Any], *, uid: int | None = None) -> int:
        """Start a stock axon serving ``forward`` and register it; returns its uid."""
        wallet = make_wallet(self.root / "wallets", name)
        port = self.stack.enter_context(running_axon(wallet, forward))
        return await self.chain.register(Registration.of_wallet(wallet, ip="127.0.0.1", port=port), uid=uid)

    async def validator(self, *, scorer: Any = None, monitor: MonitorSettings | None = None,
                        metrics: Any = None, ingest: Any = None, **neuron: Any) -> Validator:
        """A started validator (``scorer``: wrap the real one to inject faults)."""
        wallet = make_wallet(self.root / "wallets", "validator")
        await self.chain.register(Registration.of_wallet(wallet, stake=VALIDATOR_STAKE, validator_permit=True))
        chain = LocalChain(self.chain.path, netuid=self.chain.netuid, hotkey=wallet.hotkey.ss58_address,
                           block_time_s=0.5)
        validator = Validator(self.settings(monitor, **neuron), keypair=wallet.hotkey, chain=chain, store=self.store,
                              blobs=self.blobs, scorer=scorer or EngineScorer(self.scoring, self.blobs),
                              metrics=metrics, ingest=ingest)
        self.validators.append(validator)
        await validator.start()
        return validator

    @asynccontextmanager
    async def served(self, validator: Validator) -> AsyncIterator[tuple[str, SqliteKeyStore]]:
        """The validator's side-server on 127.0.0.1 as ``run.py`` builds it (its monitor, miner table): the
        URL and the key store (seed keys into it)."""
        keys = SqliteKeyStore(self.root / "keys.db")
        app = create_app(validator.settings, store=self.store, blobs=self.blobs, keys=keys,
                         metagraph=validator.metagraph, own_hotkey=validator.hotkey, monitor=validator.monitor,
                         miner_stats=validator.miner_stats)
        server = await start_server(app, validator.settings, host="127.0.0.1", port=0)
        try:
            yield server.url, keys
        finally:
            await server.stop()
            await keys.close()

    async def wait_status(self, task_id: str, *statuses: TaskStatus, timeout: float = 20.0) -> Task:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            task = await self.store.get_task(task_id)
            if task.status in statuses:
                return task
            if loop.time() > deadline:
                raise TimeoutError(f"task {task_id} still {task.status.value}, wanted {statuses}")
            await asyncio.sleep(0.05)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


@pytest.fixture
async def harness(tmp_path: Path, scoring, stack: ExitStack) -> AsyncIterator[Harness]:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    chain = LocalChain(tmp_path / "chain.json", netuid=3, block_time_s=0.5)
    h = Harness(tmp_path, store, blobs, chain, scoring, stack)
    yield h
    for v in h.validators:
        if not v.forward.stopping:
            await v.stop()
    await store.close()
    await blobs.close()
