"""Blacklist and priority decisions over a metagraph snapshot."""

from __future__ import annotations

import pytest

from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.miner import AdmissionPolicy, caller_priority, refusal


def _neuron(uid: int, hotkey: str, stake: float, permit: bool) -> Neuron:
    return Neuron(uid=uid, hotkey=hotkey, coldkey="c", stake=stake, ip="127.0.0.1", port=1, validator_permit=permit,
                  last_update=0)


SNAPSHOT = MetagraphSnapshot(netuid=7, block=1, neurons=(
    _neuron(0, "validator", 50.0, True), _neuron(1, "miner", 900.0, False), _neuron(2, "small", 2.0, True)))


@pytest.mark.parametrize("hotkey,policy,expected", [
    ("validator", AdmissionPolicy(min_stake=10), None),
    ("small", AdmissionPolicy(min_stake=10), "below the minimum 10"),
    ("small", AdmissionPolicy(min_stake=0), None),
    ("miner", AdmissionPolicy(), "no validator permit"),
    ("miner", AdmissionPolicy(allow_non_validators=True), None),
    ("nobody", AdmissionPolicy(allow_non_validators=True), "not registered on netuid 7"),
    (None, AdmissionPolicy(), "no hotkey"),
    ("", AdmissionPolicy(), "no hotkey"),
])
def test_refusal(hotkey, policy, expected):
    reason = refusal(SNAPSHOT, hotkey, policy)
    assert reason is None if expected is None else expected in reason


def test_priority_is_stake_and_unknown_callers_rank_last():
    assert caller_priority(SNAPSHOT, "miner") == 900.0
    assert caller_priority(SNAPSHOT, "validator") == 50.0
    assert caller_priority(SNAPSHOT, "nobody") == caller_priority(SNAPSHOT, None) == 0.0
