"""The validator's side of ``monitoring.Monitor``: each loop's health, read from the loops themselves.

A loop is stalled when the work it exists for stopped while there is work: no metagraph resync
for ``--monitor.resync_stale_s``; a registered validator whose weights (on chain or set here) are
older than ``--monitor.weights_stale_epochs`` epochs; pending tasks and none dispatched for
``--monitor.dispatch_stale_s``; evaluations waiting and none finished for
``--monitor.scoring_stale_s``; any other loop failing ``--monitor.loop_failures`` steps in a row.
A quiet validator (nothing pending, nothing to score) is healthy however long it has been idle.

Everything here is a read of state the loops keep anyway (``LoopRunner`` timestamps, the weight
setter's attempts, the forward loop's backlog): checking health costs no store or chain call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import generate_latest

from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.config import Settings
from subnet_proxy.engines import Engines
from subnet_proxy.monitoring.base import LoopCheck, age
from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.tasks import TaskStatus
from subnet_proxy.validator.dashboard import KindScores, weights_history
from subnet_proxy.validator.forward import ForwardLoop
from subnet_proxy.validator.gauges import ValidatorGauges
from subnet_proxy.validator.loop_runner import LoopRunner
from subnet_proxy.validator.peer_loop import PeerEvaluationLoop
from subnet_proxy.validator.weights import WeightsAttempt, WeightSetter


class ValidatorMonitor:
    """Health of one validator's loops (see the module docstring for the rules)."""

    def __init__(self, settings: Settings, *, forward: ForwardLoop, resync: LoopRunner, setter: WeightSetter,
                 background: Sequence[LoopRunner], metagraph: Callable[[], MetagraphSnapshot], own_hotkey: str,
                 metrics: TaskMetrics | None = None, engines: Engines | None = None,
                 peers: PeerEvaluationLoop | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.peers = peers
        self.forward = forward
        self.resync = resync
        self.setter = setter
        #: the loops judged only by their failures in a row (retention, recovery, synthetic ...).
        self.background = [loop for loop in background if loop is not resync]
        self.metagraph = metagraph
        self.own_hotkey = own_hotkey
        self.clock = clock
        #: the task lifecycle metrics (fed by the shared ``MeteredStore``) and the scrape-time gauges beside them.
        self.metrics = metrics or TaskMetrics()
        #: per-kind miner scores for the dashboard (an evaluation observer; see ``dashboard.py``).
        self.kind_scores = KindScores(settings.neuron.moving_average_alpha)
        self.gauges = ValidatorGauges(self.metrics.registry, forward=forward, resync=resync, setter=setter,
                                      metagraph=metagraph, own_hotkey=own_hotkey, data_dir=settings.data_dir,
                                      engines=engines)

    def version(self) -> int:
        setter = self.setter
        return (self.metrics.recent.version + self.kind_scores.version + setter.successes_total
                + setter.failures_total + self.resync.steps)

    def dashboard(self, counts: dict[TaskStatus, int]) -> dict[str, Any]:
        checks = self.loops(counts)
        return {"loops": {name: {"ok": c.ok, "reason": c.reason, "detail": c.detail} for name, c in checks.items()},
                "activity": self.metrics.recent.summary(), "weights": weights_history(self.setter, self.clock())}

    def miner_kinds(self, uid: int, hotkey: str) -> dict[str, float]:
        return self.kind_scores.of(uid, hotkey)

    def exposition(self, counts: dict[TaskStatus, int]) -> bytes:
        self.gauges.refresh(self.loops(counts))
        return generate_latest(self.metrics.registry)

    def ready(self) -> str | None:
        if not self.forward.running:
            return "the forward loop is not running"
        return None

    def loops(self, counts: dict[TaskStatus, int]) -> dict[str, LoopCheck]:
        now = self.clock()
        checks = {"resync": self._resync(now), "weights": self._weights(now), "dispatch": self._dispatch(now, counts),
                  "scoring": self._scoring(now)}
        if self.peers is not None:
            checks["peers"] = self._peers(self.peers, now)
        for loop in self.background:  # the weights, resync and peer loops have their own checks above
            checks.setdefault(loop.name, self._failing(loop, now))
        return checks

    def _peers(self, loop: PeerEvaluationLoop, now: float) -> LoopCheck:
        """Peers known and reachable, and what was judged for them. An unreachable peer is its own
        problem (it is left alone for a while), so only this loop's own failures make it not ok."""
        known, reachable = loop.reachable()
        detail = {"known": known, "reachable": reachable, "evaluated": loop.evaluated,
                  "failures_in_a_row": loop.consecutive_failures, "last_error": loop.last_error}
        return self._failing(loop, now, detail)

    @staticmethod
    def _since(loop: LoopRunner, at: float | None, now: float) -> float | None:
        """Seconds since ``at``, or since the loop started when it never happened."""
        when = at if at is not None else loop.started_at
        return None if when is None else now - when

    def _resync(self, now: float) -> LoopCheck:
        limit = self.settings.monitor.resync_stale_s
        detail = {"block": self.metagraph().block, "age_s": age(now, self.resync.last_ok_at),
                  "failures_in_a_row": self.resync.consecutive_failures, "last_error": self.resync.last_error}
        since = self._since(self.resync, self.resync.last_ok_at, now)
        if since is not None and since > limit:
            return LoopCheck(False, f"no metagraph resync for {since:.0f} s (limit {limit:g} s)", detail)
        return LoopCheck(True, None, detail)

    def _weights(self, now: float) -> LoopCheck:
        attempt, success = self.setter.last_attempt, self.setter.last_success
        snapshot = self.metagraph()
        me = snapshot.by_hotkey(self.own_hotkey)
        detail: dict[str, Any] = {"registered": me is not None, "last_attempt": _attempt(attempt, now),
                                     "last_success": _attempt(success, now)}
        if me is None:  # not registered: weights cannot be set; serving tasks goes on (logged at start)
            return LoopCheck(True, None, detail)
        last = max(me.last_update, self.setter.last_set_block or 0)
        behind = snapshot.block - last
        detail["blocks_since_set"] = behind
        limit = self.settings.monitor.weights_stale_epochs * self.setter.epoch_length
        if behind > limit:
            why = f"; last attempt: {_public(attempt.message)}" if attempt is not None and not attempt.success else ""
            return LoopCheck(False, f"weights not set for {behind} blocks (limit {limit:g}){why}", detail)
        return LoopCheck(True, None, detail)

    def _dispatch(self, now: float, counts: dict[TaskStatus, int]) -> LoopCheck:
        pending = counts.get(TaskStatus.PENDING, 0)
        forward = self.forward
        detail: dict[str, Any] = {"pending": pending, "in_flight": forward.in_flight,
                  "last_dispatched_age_s": age(now, forward.last_dispatched_at),
                  "failures_in_a_row": forward.consecutive_failures, "last_error": forward.last_error}
        limit = self.settings.monitor.dispatch_stale_s
        since = self._since(forward, forward.last_dispatched_at, now)
        if pending and since is not None and since > limit:
            return LoopCheck(False, f"{pending} task(s) pending and none dispatched for {since:.0f} s "
                                    f"(limit {limit:g} s)", detail)
        return self._failing(forward, now, detail)

    def _scoring(self, now: float) -> LoopCheck:
        forward = self.forward
        backlog = forward.scoring_backlog
        detail = {"backlog": backlog, "last_evaluation_age_s": age(now, forward.last_evaluated_at)}
        limit = self.settings.monitor.scoring_stale_s
        since = self._since(forward, forward.last_evaluated_at, now)
        if backlog and since is not None and since > limit:
            return LoopCheck(False, f"{backlog} evaluation(s) waiting and none finished for {since:.0f} s "
                                    f"(limit {limit:g} s)", detail)
        return LoopCheck(True, None, detail)

    def _failing(self, loop: LoopRunner, now: float, detail: dict[str, Any] | None = None) -> LoopCheck:
        detail = detail if detail is not None else {
            "steps": loop.steps, "last_ok_age_s": age(now, loop.last_ok_at),
            "failures_in_a_row": loop.consecutive_failures, "last_error": loop.last_error}
        limit = self.settings.monitor.loop_failures
        if loop.consecutive_failures >= limit:
            return LoopCheck(False, f"{loop.name}: {loop.consecutive_failures} steps failed in a row "
                                    f"(last: {loop.last_error})", detail)
        return LoopCheck(True, None, detail)


def _attempt(attempt: WeightsAttempt | None, now: float) -> dict[str, object] | None:
    """A weights attempt for public health: block, age, and the error's head only (``_public``)."""
    if attempt is None:
        return None
    return {"block": attempt.block, "age_s": age(now, attempt.at), "success": attempt.success,
            "error": None if attempt.success else _public(attempt.message)}


def _public(message: str) -> str:
    """An error message's head, before any ``: detail`` (which may name a host): health is public."""
    return message.split(":", 1)[0][:80]
