"""A DONE task judged: rewards for every answer, this validator's evaluation, approval, scores.

The rewards come from the reward functions (one per task kind); the evaluation goes through the
approval module shared with the side-server, which sets the final result (the best valid answer)
and approves the task once the validators' quorum is reached (one evaluation locally). The same
rewards then move the miners' EMA scores, and the telemetry gets the task's figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from subnet_proxy import approval
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.kinds import score_task
from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.rewards import ScoringEngines
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import Evaluation, MinerResponse, MinerReward, Task, TaskStatus
from subnet_proxy.telemetry import Telemetry
from subnet_proxy.validator.scores import ScoreBook

log = logging.getLogger(__name__)


class Scorer(Protocol):
    async def score(self, task: Task, responses: Sequence[MinerResponse], *, timeout_s: float) -> list[MinerReward]:
        """One reward in [0, 1] per response, in the order given."""
        ...


class EngineScorer:
    """The reward functions with this validator's engines and blobs (``kinds.score_task``)."""

    def __init__(self, engines: ScoringEngines, blobs: BlobStore) -> None:
        self.engines = engines
        self.blobs = blobs

    async def score(self, task: Task, responses: Sequence[MinerResponse], *, timeout_s: float) -> list[MinerReward]:
        return await score_task(task, responses, task.ground_truth, self.engines, blobs=self.blobs,
                                timeout_s=timeout_s)


class TimedScorer:
    """A scorer whose every call is timed into ``subnet_proxy_task_scoring_seconds{kind}``."""

    def __init__(self, scorer: Scorer, metrics: TaskMetrics) -> None:
        self.scorer = scorer
        self.metrics = metrics

    async def score(self, task: Task, responses: Sequence[MinerResponse], *, timeout_s: float) -> list[MinerReward]:
        started = time.perf_counter()
        try:
            return await self.scorer.score(task, responses, timeout_s=timeout_s)
        finally:
            self.metrics.scored(str(task.kind), time.perf_counter() - started)


class TaskObserver(Protocol):
    def task_evaluated(self, task: Task, responses: Sequence[MinerResponse], rewards: Sequence[MinerReward]) -> None:
        ...


class TelemetryObserver:
    """Per task: rewards and latencies by uid; then the per-uid scores (wandb, via ``Telemetry``)."""

    def __init__(self, telemetry: Telemetry, scores: ScoreBook) -> None:
        self.telemetry = telemetry
        self.scores = scores

    def task_evaluated(self, task: Task, responses: Sequence[MinerResponse], rewards: Sequence[MinerReward]) -> None:
        latencies = {r.uid: r.latency_s for r in responses if r.valid and r.latency_s is not None}
        self.telemetry.log_task(task_id=task.task_id, kind=str(task.kind), rewards={r.uid: r.reward for r in rewards},
                                latencies=latencies, synthetic=task.synthetic, status=task.status.value)
        self.telemetry.log_scores(self.scores.stats())


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    task: Task
    rewards: list[MinerReward]
    status: TaskStatus


class Evaluator:
    """Judges DONE tasks; see the module docstring."""

    def __init__(
        self,
        store: TaskStore,
        scorer: Scorer,
        scores: ScoreBook,
        metagraph: Callable[[], MetagraphSnapshot],
        *,
        validator_hotkey: str,
        quorum: float,
        observers: Sequence[TaskObserver] = (),
        members: Callable[[], frozenset[str] | None] = lambda: None,
    ) -> None:
        self.store = store
        self.scorer = scorer
        self.scores = scores
        self.metagraph = metagraph
        self.hotkey = validator_hotkey
        self.quorum = quorum
        self.observers = list(observers)
        self.members = members

    async def evaluate(self, task: Task, *, timeout_s: float) -> EvaluationOutcome:
        """Score every stored answer (those delivered through the side-server included); for a DONE
        task record the evaluation (and approve it at quorum). A FAILED task (nobody answered
        validly) still moves the scores: its miners earn zero."""
        snapshot = self.metagraph()
        responses = await self.store.list_responses(task.task_id)
        rewards = await self.scorer.score(task, responses, timeout_s=timeout_s) if responses else []
        status = task.status
        if task.status is TaskStatus.DONE:
            evaluation = Evaluation(task_id=task.task_id, validator_hotkey=self.hotkey, rewards=rewards)
            result = await approval.record_evaluation(self.store, evaluation, snapshot, self.quorum,
                                                      members=self.members())
            status = result.status
            if not result.recorded:  # judged before (a sweep raced this one): the scores already moved
                log.info("task %s: already evaluated by %s; scores left as they are", task.task_id, self.hotkey)
                return EvaluationOutcome(task, rewards, status)
        await self.learn(task, responses, rewards)
        log.debug("task %s %s: rewards %s", task.task_id, status.value,
                  {r.uid: round(r.reward, 3) for r in rewards})
        return EvaluationOutcome(task, rewards, status)

    async def learn(self, task: Task, responses: Sequence[MinerResponse], rewards: Sequence[MinerReward]) -> None:
        """Move the miners' scores by the rewards (this validator's tasks, and peers' tasks it judged)."""
        # A valid answer is a success even when it earns nothing (a later duplicate of an honest
        # answer, say): backoff is for miners that fail to answer, the EMA judges the quality.
        latency = {r.hotkey: r.latency_s for r in responses if r.valid}
        for reward in rewards:
            self.scores.update(reward.uid, reward.hotkey, reward.reward, latency_s=latency.get(reward.hotkey),
                               success=reward.hotkey in latency)
        await self.scores.persist()
        for observer in self.observers:
            observer.task_evaluated(task, responses, rewards)
