"""Who the miner answers and in what order: blacklist and priority decisions over a metagraph view.

The axon asks on every request, so the decisions read a snapshot held in memory (``MetagraphView``)
that a background task refreshes from the chain; no request ever waits on the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from subnet_proxy.chain import MetagraphSnapshot


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """Callers need a registered hotkey, a validator permit and at least ``min_stake``."""

    min_stake: float = 0.0
    allow_non_validators: bool = False


class MetagraphView:
    """The latest metagraph snapshot, swapped whole so readers in other threads never see half of one."""

    def __init__(self, snapshot: MetagraphSnapshot) -> None:
        self.snapshot = snapshot

    def update(self, snapshot: MetagraphSnapshot) -> None:
        self.snapshot = snapshot


def refusal(snapshot: MetagraphSnapshot, hotkey: str | None, policy: AdmissionPolicy) -> str | None:
    """Why a caller is refused, or None when it may be served."""
    if not hotkey:
        return "request carries no hotkey"
    neuron = snapshot.by_hotkey(hotkey)
    if neuron is None:
        return f"hotkey {hotkey} is not registered on netuid {snapshot.netuid}"
    if policy.allow_non_validators:
        return None
    if not neuron.validator_permit:
        return f"hotkey {hotkey} has no validator permit"
    if neuron.stake < policy.min_stake:
        return f"hotkey {hotkey} has stake {neuron.stake:g}, below the minimum {policy.min_stake:g}"
    return None


def caller_priority(snapshot: MetagraphSnapshot, hotkey: str | None) -> float:
    """Higher stake is served first; unknown callers (refused anyway) rank lowest."""
    neuron = snapshot.by_hotkey(hotkey) if hotkey else None
    return float(neuron.stake) if neuron is not None else 0.0
