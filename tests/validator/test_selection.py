"""Miner selection: who may be chosen, how often, the fallback order, exploration and backoff."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.tasks import MinerStat
from subnet_proxy.validator.selection import (
    DEFAULT_VALIDATOR_STAKE,
    candidates,
    is_validator,
    select_miners,
)


def neuron(uid: int, *, hotkey: str | None = None, port: int = 9000, permit: bool = False,
           stake: float = 0.0) -> Neuron:
    return Neuron(uid=uid, hotkey=hotkey or f"hk{uid}", coldkey="ck", stake=stake, ip="127.0.0.1",
                  port=port + uid if port else 0, validator_permit=permit, last_update=0)


def snapshot(*neurons: Neuron) -> MetagraphSnapshot:
    return MetagraphSnapshot(netuid=1, block=1, neurons=neurons)


def stat(uid: int, ema: float, *, latency: float | None = 0.5, attempts: int = 50, failures: int = 0,
         hotkey: str | None = None) -> MinerStat:
    # model_construct: MinerStat refuses NaN/inf, but the draw must stay safe should one ever get through
    return MinerStat.model_construct(uid=uid, hotkey=hotkey or f"hk{uid}", ema_score=ema, latency_s=latency,
                                     attempts=attempts, consecutive_failures=failures)


def counts(snap: MetagraphSnapshot, stats: list[MinerStat], draws: int = 3000, k: int = 1) -> Counter[int]:
    rng = random.Random(7)
    tally: Counter[int] = Counter()
    for _ in range(draws):
        tally.update(select_miners(snap, stats, "me", k, rng).uids)
    return tally


def test_only_serving_non_validator_axons_other_than_ours() -> None:
    snap = snapshot(
        neuron(0, hotkey="me"),                                         # ourselves
        neuron(1, permit=True, stake=DEFAULT_VALIDATOR_STAKE),          # a validator
        neuron(2, port=0),                                              # no axon
        neuron(3),                                                      # a miner
        neuron(4, permit=True, stake=10.0),                             # a permit but little stake: a miner
    )
    assert [n.uid for n in candidates(snap, "me")] == [3, 4]
    assert is_validator(snap.neurons[1]) and not is_validator(snap.neurons[4])
    sel = select_miners(snap, [], "me", 5, random.Random(1))
    assert sorted(sel.uids) == [3, 4] and sel.fallback == ()


def test_k_distinct_uids_and_the_rest_as_fallback() -> None:
    snap = snapshot(*(neuron(i) for i in range(10)))
    sel = select_miners(snap, [stat(i, i / 10) for i in range(10)], "me", 3, random.Random(3))
    assert len(sel.uids) == 3 and len(set(sel.uids)) == 3
    assert set(sel.uids) | set(sel.fallback) == set(range(10)) and not set(sel.uids) & set(sel.fallback)
    again = select_miners(snap, [stat(i, i / 10) for i in range(10)], "me", 3, random.Random(3))
    assert again == sel  # a pure function of its inputs
    with pytest.raises(ValueError):
        select_miners(snap, [], "me", 0, random.Random(1))
    assert select_miners(snapshot(), [], "me", 3, random.Random(1)).uids == ()


def test_better_scores_are_chosen_more_often_but_weak_miners_are_still_explored() -> None:
    snap = snapshot(*(neuron(i) for i in range(3)))
    tally = counts(snap, [stat(0, 0.9), stat(1, 0.3), stat(2, 0.0)])
    assert tally[0] > 2 * tally[1] > 0
    assert tally[2] > 0  # the exploration floor


def test_new_miners_get_tried() -> None:
    snap = snapshot(*(neuron(i) for i in range(3)))
    tally = counts(snap, [stat(0, 0.9), stat(1, 0.9)])  # uid 2 has no stats yet
    assert tally[2] > 0.3 * tally[0]
    # stats held for another hotkey on the uid are not the new owner's
    tally = counts(snap, [stat(0, 0.9), stat(1, 0.9), stat(2, 0.0, failures=10, hotkey="old-owner")])
    assert tally[2] > 0.3 * tally[0]


def test_failing_miners_back_off_but_are_not_dropped() -> None:
    snap = snapshot(*(neuron(i) for i in range(2)))
    tally = counts(snap, [stat(0, 0.6), stat(1, 0.6, failures=6)], draws=4000)
    assert tally[0] > 20 * tally[1] and tally[1] > 0


def test_slow_miners_are_chosen_less() -> None:
    snap = snapshot(*(neuron(i) for i in range(3)))
    tally = counts(snap, [stat(0, 0.8, latency=0.2), stat(1, 0.8, latency=0.5), stat(2, 0.8, latency=5.0)])
    assert tally[0] > tally[1] > 2 * tally[2] > 0


def test_non_finite_stats_do_not_break_the_draw() -> None:
    snap = snapshot(*(neuron(i) for i in range(2)))
    sel = select_miners(snap, [stat(0, float("nan"), latency=float("inf")), stat(1, 0.5)], "me", 2, random.Random(1))
    assert sorted(sel.uids) == [0, 1]
