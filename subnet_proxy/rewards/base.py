"""The rules every task kind shares: validity, on time, the bounded speed term.

A kind's reward module judges each answer's *quality* in [0, 1] (``Judged``); ``finalize`` turns
those into rewards the same way for every kind:

* an answer that is not ``ok``, came after the timeout, or that the kind judged invalid gets 0;
* identical answers from different hotkeys are judged alike and each earns its own reward: two
  honest miners running the same deterministic model return the same text or bytes, and zeroing
  the later one cost honest miners while copying an answer within one task's timeout is hardly
  possible (a replay of another task's answer is simply wrong for this one). No kind lets answers
  vote on the reference, so several hotkeys sending one answer gain nothing by it;
* ``reward = quality * multiplier`` with ``multiplier = 1 - SPEED_WEIGHT * (1 - speed)`` and
  ``speed = 1 - latency / timeout``, for answers of passing quality. An answer below
  ``PASS_QUALITY`` gets the slowest multiplier whatever its latency, so
  ``wrong_reward < PASS_QUALITY * (1 - SPEED_WEIGHT) <= right_reward``: no speed can lift a wrong
  answer above a right one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from subnet_proxy.tasks import MinerResponse, MinerReward

#: largest share of a reward that speed can take away (the slowest valid answer keeps 1 - this).
SPEED_WEIGHT = 0.15
#: quality at or above which an answer counts as right (speed may then reorder it among right ones).
PASS_QUALITY = 0.5


@dataclass(frozen=True, slots=True)
class Judged:
    """A kind's verdict on one answer, before the shared rules; ``breakdown`` explains the quality."""

    valid: bool
    quality: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)
    reason: str | None = None


def invalid(reason: str, **breakdown: float) -> Judged:
    return Judged(valid=False, reason=reason, breakdown=dict(breakdown))


def clip01(value: float) -> float:
    return 0.0 if value != value else min(1.0, max(0.0, float(value)))  # NaN counts as 0


def speed_score(latency_s: float, timeout_s: float) -> float:
    """1 for an instant answer, 0 at the timeout, linear between."""
    return clip01(1.0 - latency_s / timeout_s) if timeout_s > 0 else 0.0


def speed_multiplier(quality: float, latency_s: float, timeout_s: float) -> float:
    """The bounded speed factor; only answers of passing quality can earn more than the minimum."""
    speed = speed_score(latency_s, timeout_s) if quality >= PASS_QUALITY else 0.0
    return 1.0 - SPEED_WEIGHT * (1.0 - speed)


def _on_time(response: MinerResponse, timeout_s: float) -> bool:
    return response.valid and response.latency_s is not None and 0.0 <= response.latency_s <= timeout_s


def _finite(breakdown: dict[str, float]) -> dict[str, float]:
    """The breakdown without non-finite terms (a NaN metric explains nothing and cannot be stored)."""
    return {name: float(value) for name, value in breakdown.items() if math.isfinite(value)}


def _zero(response: MinerResponse, reason: str, breakdown: dict[str, float]) -> MinerReward:
    return MinerReward(uid=response.uid, hotkey=response.hotkey, reward=0.0,
                       breakdown={**_finite(breakdown), f"rejected_{reason}": 1.0})


def finalize(responses: Sequence[MinerResponse], judged: Sequence[Judged], *, timeout_s: float) -> list[MinerReward]:
    """Apply the shared rules to every answer, in the order of ``responses``."""
    if len(responses) != len(judged):
        raise ValueError(f"{len(responses)} responses but {len(judged)} verdicts")
    rewards: list[MinerReward] = []
    for response, verdict in zip(responses, judged, strict=True):
        if response.state == "timeout" or (response.valid and not _on_time(response, timeout_s)):
            rewards.append(_zero(response, "timeout", {}))
        elif not response.valid:
            rewards.append(_zero(response, response.state, {}))
        elif not verdict.valid:
            rewards.append(_zero(response, verdict.reason or "invalid", verdict.breakdown))
        else:
            latency = float(response.latency_s or 0.0)
            quality = clip01(verdict.quality)
            multiplier = speed_multiplier(quality, latency, timeout_s)
            rewards.append(MinerReward(
                uid=response.uid, hotkey=response.hotkey, reward=clip01(quality * multiplier),
                breakdown={**_finite(verdict.breakdown), "quality": quality,
                           "speed": speed_score(latency, timeout_s), "speed_multiplier": multiplier},
            ))
    return rewards
