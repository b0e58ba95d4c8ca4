"""The last hour of task activity, in memory, for the dashboard: throughput, latency percentiles, recent tasks.

Counts and latencies go into one bucket per minute and kind (latencies as counts over fixed
log-spaced bounds), so an event costs a few dictionary updates and the hour's percentiles are a
walk over at most 60 small arrays, whatever the traffic: the dashboard's cost does not grow with
it. Percentiles are the upper bound of the bound they fall in (about 15% resolution). The few
newest tasks and failures are kept as they are. ``version`` moves with every event, so a live view
only sends a new state when something changed.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: latency bounds in seconds: 10 ms to about 20 minutes, each 15% above the last.
BOUNDS: tuple[float, ...] = tuple(round(0.01 * 1.15 ** i, 4) for i in range(104))
WINDOW_MINUTES = 60
RECENT_TASKS = 20
RECENT_FAILURES = 20
#: characters of a task id shown (enough to find it in the logs, too few to use it).
ID_CHARS = 8


@dataclass(slots=True)
class _Minute:
    submitted: int = 0
    approved: int = 0
    failed: int = 0
    first_answer: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    approval: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))


def _bucket(seconds: float) -> int:
    return bisect.bisect_left(BOUNDS, seconds)


def percentile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0-1) of latencies counted per bound; None with no samples."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank and n:
            return BOUNDS[min(i, len(BOUNDS) - 1)]
    return BOUNDS[-1]


class RecentActivity:
    """See the module docstring. ``clock`` is wall time (minutes are wall-clock minutes)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.version = 0
        self._minutes: dict[int, dict[str, _Minute]] = {}
        self._tasks: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._failures: deque[dict[str, Any]] = deque(maxlen=RECENT_FAILURES)

    def _minute(self, kind: str) -> _Minute:
        now = int(self.clock() // 60)
        kinds = self._minutes.get(now)
        if kinds is None:
            kinds = self._minutes[now] = {}
            for old in [m for m in self._minutes if m <= now - WINDOW_MINUTES]:
                del self._minutes[old]
        minute = kinds.get(kind)
        if minute is None:
            minute = kinds[kind] = _Minute()
        return minute

    def _task(self, task_id: str, kind: str, **update: Any) -> None:
        self.version += 1
        row = self._tasks.get(task_id)
        if row is None:
            row = {"id": task_id[:ID_CHARS], "kind": kind, "status": "pending", "at": self.clock(),
                   "first_answer_s": None, "approval_s": None}
            self._tasks[task_id] = row
            while len(self._tasks) > RECENT_TASKS:
                self._tasks.popitem(last=False)
        row.update(update)

    def submitted(self, kind: str, task_id: str) -> None:
        self._minute(kind).submitted += 1
        self._task(task_id, kind)

    def first_answer(self, kind: str, task_id: str, seconds: float) -> None:
        self._minute(kind).first_answer[_bucket(seconds)] += 1
        if task_id in self._tasks:
            self._task(task_id, kind, status="answered", first_answer_s=round(seconds, 3))

    def approved(self, kind: str, task_id: str, seconds: float) -> None:
        minute = self._minute(kind)
        minute.approved += 1
        minute.approval[_bucket(seconds)] += 1
        if task_id in self._tasks:
            self._task(task_id, kind, status="approved", approval_s=round(seconds, 3))

    def failed(self, kind: str, task_id: str, code: str, message: str) -> None:
        self._minute(kind).failed += 1
        self._failures.append({"at": self.clock(), "id": task_id[:ID_CHARS], "kind": kind, "code": code,
                               "message": message[:200]})
        if task_id in self._tasks:
            self._task(task_id, kind, status="expired" if code == "expired" else "failed")
        else:
            self.version += 1

    def summary(self) -> dict[str, Any]:
        """The last hour per kind (counts, approvals per minute oldest first, p50/p90/p99 of the first answer
        and of approval), the newest tasks (newest first) and failures."""
        now_minute = int(self.clock() // 60)
        kinds: dict[str, dict[str, Any]] = {}
        for offset in range(WINDOW_MINUTES):
            for kind, m in self._minutes.get(now_minute - WINDOW_MINUTES + 1 + offset, {}).items():
                k = kinds.get(kind)
                if k is None:
                    k = kinds[kind] = {"submitted": 0, "approved": 0, "failed": 0,
                                       "approved_per_minute": [0] * WINDOW_MINUTES,
                                       "_first": [0] * (len(BOUNDS) + 1), "_approval": [0] * (len(BOUNDS) + 1)}
                k["submitted"] += m.submitted
                k["approved"] += m.approved
                k["failed"] += m.failed
                k["approved_per_minute"][offset] = m.approved
                k["_first"] = [a + b for a, b in zip(k["_first"], m.first_answer, strict=True)]
                k["_approval"] = [a + b for a, b in zip(k["_approval"], m.approval, strict=True)]
        for k in kinds.values():
            first, approval = k.pop("_first"), k.pop("_approval")
            k["first_answer_s"] = {f"p{q}": percentile(first, q / 100) for q in (50, 90, 99)}
            k["approval_s"] = {f"p{q}": percentile(approval, q / 100) for q in (50, 90, 99)}
        return {"kinds": kinds, "tasks": list(reversed(self._tasks.values())),
                "failures": list(reversed(self._failures))}
