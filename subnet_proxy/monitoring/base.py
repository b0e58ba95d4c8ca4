"""The interface between what watches the validator's loops and the server that shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from subnet_proxy.tasks import TaskStatus


@dataclass(frozen=True, slots=True)
class LoopCheck:
    """One loop's health: ``reason`` says why it is not ok (public: no hosts, paths or keys in it)."""

    ok: bool
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def age(now: float, at: float | None) -> float | None:
    """Seconds since ``at`` (a ``time.monotonic()`` reading), rounded for display; None for never."""
    return None if at is None else round(now - at, 3)


class Monitor(Protocol):
    """What the side-server asks the validator about its loops."""

    def loops(self, counts: dict[TaskStatus, int]) -> dict[str, LoopCheck]:
        """Each loop's health, given the store's task counts by status (the dispatch backlog)."""
        ...

    def ready(self) -> str | None:
        """Why the validator cannot take work now (None: it can)."""
        ...

    def exposition(self, counts: dict[TaskStatus, int]) -> bytes:
        """The validator's Prometheus metrics (text format), appended to the server's own on ``/metrics``."""
        ...

    def version(self) -> int:
        """A number that moves whenever what ``dashboard`` shows changed (a live view sends only then)."""
        ...

    def dashboard(self, counts: dict[TaskStatus, int]) -> dict[str, Any]:
        """The dashboard's view of the loops: ``loops`` (health), ``activity`` (the last hour, recent tasks and
        failures, ``window.RecentActivity.summary``), ``weights`` (attempts, newest first)."""
        ...

    def miner_kinds(self, uid: int, hotkey: str) -> dict[str, float]:
        """The miner's score per task kind (display only; the weights use one score per uid)."""
        ...
