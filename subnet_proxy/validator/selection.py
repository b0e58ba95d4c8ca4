"""Miner selection: which K uids a task goes to, and in what order to try the others.

A pure function of (snapshot, score-book stats, own hotkey, k, rng). The rule:

1. **Candidates** are the uids that announce an axon (``ip:port`` set), are not this validator's
   hotkey, and are not validators. A validator is a uid with a validator permit *and* stake of at
   least ``validator_stake`` (default 4096, the subnet template's ``vpermit_tao_limit``): a
   permit with little stake is a miner that the chain happened to grant a permit, and is queried.
2. **Weight** of a candidate = ``(EXPLORATION + quality) * speed * backoff`` where
   - ``quality`` is the EMA score; a miner with fewer than ``NEW_MINER_ATTEMPTS`` attempts (or whose
     stats belong to another hotkey) gets ``max(its EMA, NEW_MINER_PRIOR)``, so new miners are tried;
   - ``EXPLORATION`` (a floor) keeps every candidate reachable, so a miner that improved can climb;
   - ``speed = ref / (ref + latency)``, ``ref`` the median latency of the candidates that have one
     (a miner at the median gets 0.5, an instant one 1, a slow one less); unknown latency counts
     as the median;
   - ``backoff = 0.5 ** consecutive_failures``, floored at ``MIN_BACKOFF``: a miner that keeps
     failing is tried ever more rarely, yet never dropped, so it can prove it is back.
3. **Draw**: a weighted random permutation without replacement (Efraimidis-Spirakis keys
   ``u ** (1 / weight)``). The first K are queried; the rest, in that order, are the fallback for
   re-dispatch when none of the K answers validly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.tasks import MinerStat

#: stake from which a uid with a validator permit is treated as a validator (never queried).
DEFAULT_VALIDATOR_STAKE = 4096.0
#: weight floor added to every candidate's quality.
EXPLORATION = 0.05
#: the quality a miner is credited with until it has a few attempts behind it.
NEW_MINER_PRIOR = 0.5
NEW_MINER_ATTEMPTS = 3
#: the least backoff factor (after 6 consecutive failures: tried 1/64 as often).
MIN_BACKOFF = 1 / 64
#: latency reference when no candidate has one yet.
DEFAULT_LATENCY_REF_S = 1.0


@dataclass(frozen=True, slots=True)
class Selection:
    """The uids to query now, and the others in the order to try them if all of those fail."""

    uids: tuple[int, ...]
    fallback: tuple[int, ...]


def is_validator(neuron: Neuron, *, validator_stake: float = DEFAULT_VALIDATOR_STAKE) -> bool:
    return neuron.validator_permit and neuron.stake >= validator_stake


def candidates(snapshot: MetagraphSnapshot, own_hotkey: str, *,
               validator_stake: float = DEFAULT_VALIDATOR_STAKE) -> list[Neuron]:
    """The uids a task may go to: serving, not a validator, not us."""
    return [n for n in snapshot.neurons
            if n.is_serving and n.hotkey != own_hotkey and not is_validator(n, validator_stake=validator_stake)]


def selection_weights(neurons: list[Neuron], stats: dict[int, MinerStat]) -> list[float]:
    """The draw weight of each neuron (same order), by the rule in the module docstring."""
    known = [stats[n.uid] if n.uid in stats and stats[n.uid].hotkey == n.hotkey else None for n in neurons]
    latencies = [s.latency_s for s in known if s is not None and s.latency_s is not None]
    ref = max(median(latencies), 1e-3) if latencies else DEFAULT_LATENCY_REF_S
    weights = []
    for stat in known:
        ema = _finite(stat.ema_score) if stat is not None else 0.0
        attempts = stat.attempts if stat is not None else 0
        quality = max(ema, NEW_MINER_PRIOR) if attempts < NEW_MINER_ATTEMPTS else ema
        latency = stat.latency_s if stat is not None and stat.latency_s is not None else ref
        speed = ref / (ref + (max(latency, 0.0) if math.isfinite(latency) else ref))
        failures = stat.consecutive_failures if stat is not None else 0
        backoff = max(0.5 ** failures, MIN_BACKOFF)
        weights.append((EXPLORATION + min(max(quality, 0.0), 1.0)) * speed * backoff)
    return weights


def select_miners(snapshot: MetagraphSnapshot, stats: Iterable[MinerStat], own_hotkey: str, k: int,
                  rng: random.Random, *, validator_stake: float = DEFAULT_VALIDATOR_STAKE) -> Selection:
    """K distinct uids for a task (fewer when fewer are candidates) and the fallback order."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    pool = candidates(snapshot, own_hotkey, validator_stake=validator_stake)
    weights = selection_weights(pool, {s.uid: s for s in stats})
    # Efraimidis-Spirakis: sorting by u ** (1/w) descending is a weighted draw without replacement.
    keyed = sorted(((rng.random() ** (1.0 / w), n.uid) for n, w in zip(pool, weights, strict=True)), reverse=True)
    order = tuple(uid for _, uid in keyed)
    return Selection(uids=order[:k], fallback=order[k:])


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
