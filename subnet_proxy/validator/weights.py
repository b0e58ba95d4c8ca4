"""Weights: turn the score book into normalized weights and set them on chain once per epoch.

``compute_weights`` is the pure part: the EMA of each uid still held by the hotkey the book scored,
zero for this validator itself and for validators (they are never queried), normalized to sum 1.
All zeros stays all zeros: the chain side (``process_weights``) then spreads weight evenly, as
bittensor does for a validator with nothing to say yet.

``WeightSetter.step`` is the loop step: it sets weights when ``epoch_length`` blocks have passed
since this validator's last update (the later of the metagraph's ``last_update`` and the last
block it set weights at itself), with the protocol's spec version as ``version_key``. A failure
(refusal, rate limit, chain down) is logged and retried after an exponential backoff, never raised.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from protocol import __spec_version__
from subnet_proxy.chain import Chain, ChainError, MetagraphSnapshot, WeightsResult
from subnet_proxy.tasks import MinerStat
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.selection import DEFAULT_VALIDATOR_STAKE, is_validator

log = logging.getLogger(__name__)

#: first pause after a failed attempt (one block), doubled per failure up to ``RETRY_MAX_S``.
RETRY_BASE_S = 12.0
RETRY_MAX_S = 600.0


@dataclass(frozen=True, slots=True)
class WeightsPlan:
    """Weights for every uid of a snapshot, indexed as ``uids``; they sum to 1 (or are all 0)."""

    block: int
    uids: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class WeightsAttempt:
    """One try at setting weights, as health and the dashboard show it: ``at`` is ``time.monotonic()``;
    ``block`` None when the chain could not even be read; ``message`` the chain's answer or error."""

    at: float
    block: int | None
    success: bool
    message: str
    #: uids given a weight above zero.
    weighted: int = 0


#: attempts kept for the dashboard's weights history.
HISTORY = 50


@dataclass(frozen=True, slots=True)
class WeightsOutcome:
    plan: WeightsPlan
    result: WeightsResult


def compute_weights(stats: Iterable[MinerStat], snapshot: MetagraphSnapshot, own_hotkey: str, *,
                    validator_stake: float = DEFAULT_VALIDATOR_STAKE) -> WeightsPlan:
    """The weights the scores call for (pure: no chain, no clock)."""
    by_uid = {s.uid: s for s in stats}
    raw = np.zeros(snapshot.n, dtype=np.float64)
    for i, neuron in enumerate(snapshot.neurons):
        stat = by_uid.get(neuron.uid)
        if stat is None or stat.hotkey != neuron.hotkey or neuron.hotkey == own_hotkey:
            continue
        if is_validator(neuron, validator_stake=validator_stake):
            continue
        raw[i] = stat.ema_score if math.isfinite(stat.ema_score) and stat.ema_score > 0 else 0.0
    total = raw.sum()
    weights = raw / total if total > 0 else raw
    return WeightsPlan(block=snapshot.block, uids=tuple(n.uid for n in snapshot.neurons),
                       weights=tuple(float(w) for w in weights))


def blocks_until_due(snapshot: MetagraphSnapshot, block: int, own_hotkey: str, epoch_length: int,
                     last_set_block: int | None) -> int | None:
    """Blocks left before weights are due (0: now); None while this hotkey is not registered."""
    me = snapshot.by_hotkey(own_hotkey)
    if me is None:
        return None
    last = max(me.last_update, last_set_block if last_set_block is not None else me.last_update)
    return max(0, epoch_length - (block - last))


class WeightSetter:
    """The weights loop step over a chain and a score book."""

    def __init__(self, chain: Chain, book: ScoreBook, *, own_hotkey: str, epoch_length: int,
                 version_key: int = __spec_version__, validator_stake: float = DEFAULT_VALIDATOR_STAKE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._chain = chain
        self._book = book
        self.own_hotkey = own_hotkey
        self.epoch_length = epoch_length
        self.version_key = version_key
        self._validator_stake = validator_stake
        self._clock = clock
        self.last_set_block: int | None = None
        self.failures = 0
        #: every attempt, newest last (bounded), and the counts since start (for /metrics).
        self.history: deque[WeightsAttempt] = deque(maxlen=HISTORY)
        self.successes_total = 0
        self.failures_total = 0
        self._retry_at = 0.0
        self._warned_unregistered = False

    async def step(self, snapshot: MetagraphSnapshot) -> WeightsOutcome | None:
        """Set weights if due (None when not due or backing off); never raises on chain trouble."""
        if self._clock() < self._retry_at:
            return None
        try:
            block = await self._chain.current_block()
        except ChainError as exc:
            self._failed(f"cannot read the current block: {exc}", None)
            return None
        left = blocks_until_due(snapshot, block, self.own_hotkey, self.epoch_length, self.last_set_block)
        if left is None:
            if not self._warned_unregistered:
                log.warning("hotkey %s is not registered on netuid %d: no weights set", self.own_hotkey,
                            snapshot.netuid)
                self._warned_unregistered = True
            return None
        self._warned_unregistered = False
        if left > 0:
            return None
        stats = self._book.stats()
        plan = compute_weights(stats, snapshot, self.own_hotkey, validator_stake=self._validator_stake)
        try:
            result = await self._chain.set_weights(list(plan.uids), list(plan.weights), version_key=self.version_key)
        except ChainError as exc:
            result = WeightsResult(False, str(exc))
        weighted = sum(1 for w in plan.weights if w > 0)
        if result.success:
            self.successes_total += 1
            self.history.append(WeightsAttempt(self._clock(), block, True, result.message, weighted))
            self.last_set_block = block
            self.failures = 0
            self._book.record_weights(plan.uids, plan.weights, computed_for={s.uid: s.hotkey for s in stats})
            log.info("weights set at block %d for %d uids: %s", block, len(plan.uids), result.message)
        else:
            self._failed(result.message, block, weighted)
        return WeightsOutcome(plan=plan, result=result)

    @property
    def last_attempt(self) -> WeightsAttempt | None:
        return self.history[-1] if self.history else None

    @property
    def last_success(self) -> WeightsAttempt | None:
        return next((a for a in reversed(self.history) if a.success), None)

    def _failed(self, message: str, block: int | None, weighted: int = 0) -> None:
        self.failures_total += 1
        self.history.append(WeightsAttempt(self._clock(), block, False, message, weighted))
        self.failures += 1
        delay = min(RETRY_BASE_S * 2 ** (self.failures - 1), RETRY_MAX_S)
        self._retry_at = self._clock() + delay
        log.warning("setting weights failed (%d in a row), next try in %.0f s: %s", self.failures, delay, message)
