"""What the dashboard shows beyond health and metrics: each miner's score per task kind, weights history.

The ScoreBook keeps one EMA per uid (what weights are made of); an operator also wants to see
which kind a miner is good at, so ``KindScores`` keeps a display-only EMA per (uid, kind), with the
book's alpha, from the same rewards (an evaluation observer). A uid whose hotkey changed starts over.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from subnet_proxy.monitoring.base import age
from subnet_proxy.tasks import MinerResponse, MinerReward, Task
from subnet_proxy.validator.weights import WeightSetter


class KindScores:
    """EMA of rewards per uid and kind (an ``evaluation.TaskObserver``); ``version`` moves on every update."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.version = 0
        self._ema: dict[int, tuple[str, dict[str, float]]] = {}

    def task_evaluated(self, task: Task, responses: Sequence[MinerResponse], rewards: Sequence[MinerReward]) -> None:
        kind = str(task.kind)
        for r in rewards:
            hotkey, by_kind = self._ema.get(r.uid, (r.hotkey, {}))
            if hotkey != r.hotkey:
                by_kind = {}
            old = by_kind.get(kind)
            by_kind[kind] = r.reward if old is None else (1 - self.alpha) * old + self.alpha * r.reward
            self._ema[r.uid] = (r.hotkey, by_kind)
        self.version += 1

    def of(self, uid: int, hotkey: str) -> dict[str, float]:
        held = self._ema.get(uid)
        return {k: round(v, 4) for k, v in held[1].items()} if held and held[0] == hotkey else {}


def weights_history(setter: WeightSetter, now: float | None = None) -> list[dict[str, Any]]:
    """The setter's attempts, newest first, with their age and full message (the dashboard is not public)."""
    now = time.monotonic() if now is None else now
    return [{"block": a.block, "age_s": age(now, a.at), "success": a.success, "message": a.message[:300],
             "weighted": a.weighted} for a in reversed(setter.history)]
