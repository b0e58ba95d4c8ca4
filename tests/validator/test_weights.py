"""Weights: the pure computation, the epoch cadence, and the step against the local chain."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from protocol import __spec_version__
from subnet_proxy.chain import Chain, ChainError, MetagraphSnapshot, Neuron, WeightsResult
from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.tasks import MinerStat
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.weights import RETRY_BASE_S, WeightSetter, blocks_until_due, compute_weights


def neuron(uid: int, hotkey: str, *, permit: bool = False, stake: float = 0.0, last_update: int = 0) -> Neuron:
    return Neuron(uid=uid, hotkey=hotkey, coldkey="ck", stake=stake, ip="127.0.0.1", port=9000 + uid,
                  validator_permit=permit, last_update=last_update)


def stat(uid: int, hotkey: str, ema: float) -> MinerStat:
    # model_construct: MinerStat refuses NaN, but the weights must stay safe should one ever get through
    return MinerStat.model_construct(uid=uid, hotkey=hotkey, ema_score=ema)


SNAP = MetagraphSnapshot(netuid=1, block=500, neurons=(
    neuron(0, "me", permit=True, stake=10_000, last_update=400),
    neuron(1, "m1"), neuron(2, "m2"), neuron(3, "m3"),
    neuron(4, "other-validator", permit=True, stake=9_000),
))


def test_compute_weights_normalizes_and_excludes_ourselves_and_validators() -> None:
    stats = [stat(0, "me", 0.9), stat(1, "m1", 0.6), stat(2, "m2", 0.2), stat(3, "m3", float("nan")),
             stat(4, "other-validator", 0.5)]
    plan = compute_weights(stats, SNAP, "me")
    assert plan.uids == (0, 1, 2, 3, 4) and plan.block == 500
    assert plan.weights == pytest.approx((0.0, 0.75, 0.25, 0.0, 0.0))


def test_compute_weights_ignores_stats_of_a_previous_hotkey_and_handles_all_zero() -> None:
    plan = compute_weights([stat(1, "old-m1", 0.9), stat(2, "m2", 0.3)], SNAP, "me")
    assert plan.weights == pytest.approx((0.0, 0.0, 1.0, 0.0, 0.0))
    assert compute_weights([], SNAP, "me").weights == (0.0,) * 5


def test_blocks_until_due() -> None:
    assert blocks_until_due(SNAP, 500, "me", 100, None) == 0
    assert blocks_until_due(SNAP, 450, "me", 100, None) == 50
    assert blocks_until_due(SNAP, 500, "me", 100, 480) == 80  # our own record is newer than the metagraph's
    assert blocks_until_due(SNAP, 500, "nobody", 100, None) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_step_sets_weights_each_epoch_on_the_local_chain(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "chain.json"
    admin = LocalChain(path, netuid=1, clock=clock)
    await admin.register(Registration(hotkey="me", coldkey="ck", stake=10_000, validator_permit=True))
    for i in (1, 2):
        await admin.register(Registration(hotkey=f"m{i}", coldkey="ck", ip="127.0.0.1", port=9000 + i))
    chain = LocalChain(path, netuid=1, hotkey="me", clock=clock)
    book = ScoreBook(alpha=0.5)
    setter = WeightSetter(chain, book, own_hotkey="me", epoch_length=5, clock=clock)

    snap = await chain.snapshot()
    book.sync(snap)
    book.update(1, "m1", 1.0)
    book.update(2, "m2", 0.5)
    assert await setter.step(snap) is None  # registered at block 0: not due before block 5
    clock.now += 12 * 5
    outcome = await setter.step(await chain.snapshot())
    assert outcome is not None and outcome.result.success, outcome
    (record,) = await chain.weights_history()
    assert record.version_key == __spec_version__ and record.block == 5
    weights = dict(zip(record.uids, record.weights, strict=True))
    assert weights[1] == pytest.approx(2 * weights[2], rel=1e-3) and weights.get(0, 0.0) == 0.0
    assert [s.last_weight for s in book.stats()] == pytest.approx([0.0, 2 / 3, 1 / 3])
    # within the epoch nothing is sent, even with a stale snapshot
    clock.now += 12 * 2
    assert await setter.step(snap) is None
    clock.now += 12 * 3
    assert (await setter.step(await chain.snapshot())).result.success
    assert len(await chain.weights_history()) == 2


class FlakyChain(Chain):
    def __init__(self, snapshot: MetagraphSnapshot) -> None:
        self.snap = snapshot
        self.down = True
        self.calls: list[tuple[list[int], list[float], int]] = []
        self.refuse = False
        self.raise_on_set = False

    async def snapshot(self) -> MetagraphSnapshot:
        return self.snap

    async def current_block(self) -> int:
        if self.down:
            raise ChainError("websocket closed")
        return 1000

    async def is_registered(self, hotkey: str) -> bool:
        return self.snap.by_hotkey(hotkey) is not None

    async def register(self, registration: Registration) -> int:
        neuron = self.snap.by_hotkey(registration.hotkey)
        if neuron is None:
            raise ChainError(f"hotkey {registration.hotkey} is not registered")
        return neuron.uid

    async def set_weights(self, uids: Sequence[int], weights: Sequence[float], *, version_key: int) -> WeightsResult:
        if self.raise_on_set:
            raise ChainError("the local chain stayed locked")
        self.calls.append((list(uids), list(weights), version_key))
        return WeightsResult(not self.refuse, "refused" if self.refuse else "ok")

    async def publish(self, data: str) -> None:
        raise ChainError("no commitments on this chain")

    async def commitments(self) -> dict[str, str]:
        return {}

    async def close(self) -> None:
        pass


async def test_failures_back_off_and_never_raise() -> None:
    clock = Clock()
    chain = FlakyChain(SNAP)
    book = ScoreBook(alpha=0.5)
    book.sync(SNAP)
    setter = WeightSetter(chain, book, own_hotkey="me", epoch_length=100, clock=clock)
    assert await setter.step(SNAP) is None and setter.failures == 1
    chain.down = False
    assert await setter.step(SNAP) is None  # still backing off
    clock.now += RETRY_BASE_S
    chain.refuse = True
    outcome = await setter.step(SNAP)
    assert outcome is not None and not outcome.result.success and setter.failures == 2
    clock.now += RETRY_BASE_S  # the second backoff is twice as long
    assert await setter.step(SNAP) is None
    clock.now += RETRY_BASE_S
    chain.refuse = False
    assert (await setter.step(SNAP)).result.success and setter.failures == 0
    assert len(chain.calls) == 2 and setter.last_set_block == 1000


async def test_a_chain_error_while_sending_is_a_failed_outcome() -> None:
    chain = FlakyChain(SNAP)
    chain.down, chain.raise_on_set = False, True
    book = ScoreBook(alpha=0.5)
    setter = WeightSetter(chain, book, own_hotkey="me", epoch_length=100, clock=Clock())
    outcome = await setter.step(SNAP)
    assert outcome is not None and not outcome.result.success and "locked" in outcome.result.message
    assert setter.failures == 1 and setter.last_set_block is None


async def test_an_unregistered_validator_sets_nothing() -> None:
    chain = FlakyChain(SNAP)
    chain.down = False
    setter = WeightSetter(chain, ScoreBook(alpha=0.5), own_hotkey="stranger", epoch_length=1)
    assert await setter.step(SNAP) is None and chain.calls == []
