"""The validator's background loops besides forward: metagraph resync (and peers), weights, retention,
approval grace, recovery.

Each runs on its own cadence, off the hot path: the forward loop only ever reads the latest
snapshot held by ``MetagraphView``, so a slow chain endpoint delays a resync, never a task.
"""

from __future__ import annotations

import dataclasses
import logging

from subnet_proxy.approval import settle_after_grace
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain import Chain, MetagraphSnapshot
from subnet_proxy.config import RetentionSettings
from subnet_proxy.outbound import is_public
from subnet_proxy.retention import run_retention
from subnet_proxy.store.base import StoreMaintenance, TaskStore
from subnet_proxy.tasks import TaskStatus, utcnow
from subnet_proxy.telemetry import Telemetry
from subnet_proxy.validator.forward import ForwardLoop
from subnet_proxy.validator.loop_runner import LoopRunner
from subnet_proxy.validator.peers import PeerDirectory
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.weights import WeightSetter, WeightsOutcome

log = logging.getLogger(__name__)


class MetagraphView:
    """The latest metagraph snapshot; immutable snapshots make sharing it between loops safe."""

    def __init__(self, snapshot: MetagraphSnapshot) -> None:
        self._snapshot = snapshot

    def __call__(self) -> MetagraphSnapshot:
        return self._snapshot

    def update(self, snapshot: MetagraphSnapshot) -> None:
        self._snapshot = snapshot


def without_private_axons(snapshot: MetagraphSnapshot) -> tuple[MetagraphSnapshot, list[int]]:
    """The snapshot with every axon on a non-public address (private, loopback, link-local,
    multicast, unspecified) shown as not serving, and the uids so changed. Only the axon goes:
    stake, permits and hotkeys (what quorums and signed callers are checked against) stay."""
    skipped = [n.uid for n in snapshot.neurons if n.is_serving and not is_public(n.ip)]
    if not skipped:
        return snapshot, skipped
    neurons = tuple(dataclasses.replace(n, ip="0.0.0.0", port=0) if n.uid in skipped else n
                    for n in snapshot.neurons)
    return MetagraphSnapshot(netuid=snapshot.netuid, block=snapshot.block, neurons=neurons), skipped


class ResyncLoop(LoopRunner):
    """Fetch the metagraph, let the ScoreBook follow it (new uids, replaced hotkeys), publish it.
    Outside local mode (``public_axons_only``) axons on non-public addresses are never queried:
    they are dropped here, once per resync with one log line, rather than refused per task."""

    name = "resync"

    def __init__(self, chain: Chain, view: MetagraphView, scores: ScoreBook, *, interval_s: float,
                 public_axons_only: bool = True, directory: PeerDirectory | None = None) -> None:
        super().__init__(interval_s=interval_s)
        self.chain = chain
        self.view = view
        self.scores = scores
        self.public_axons_only = public_axons_only
        self.directory = directory

    async def run_step(self) -> None:
        snapshot = await self.chain.snapshot()
        if self.public_axons_only:
            snapshot, skipped = without_private_axons(snapshot)
            if skipped:
                log.warning("resync at block %d: %d axons on non-public addresses are not queried (uids %s)",
                            snapshot.block, len(skipped), skipped[:50])
        reset = self.scores.sync(snapshot)
        self.view.update(snapshot)
        await self.scores.persist()
        if self.directory is not None:  # the peers and their URLs, read with the metagraph they are checked on
            await self.directory.refresh(snapshot)
        if reset:
            log.info("resync at block %d: uids %s have new hotkeys and start from zero", snapshot.block, reset)


class WeightsLoop(LoopRunner):
    """Once a block, ask the WeightSetter whether an epoch has passed; it sets weights when due."""

    name = "weights"

    def __init__(self, setter: WeightSetter, view: MetagraphView, scores: ScoreBook, *, interval_s: float,
                 telemetry: Telemetry | None = None) -> None:
        super().__init__(interval_s=interval_s)
        self.setter = setter
        self.view = view
        self.scores = scores
        self.telemetry = telemetry
        self.last: WeightsOutcome | None = None

    async def run_step(self) -> None:
        outcome = await self.setter.step(self.view())
        if outcome is None:
            return
        self.last = outcome
        await self.scores.persist()
        if self.telemetry is not None:
            plan = outcome.plan
            self.telemetry.log_weights(plan.uids, plan.weights, block=plan.block, success=outcome.result.success)


class RetentionLoop(LoopRunner):
    """Expire overdue tasks, delete old finished ones and the blobs nothing refers to any more."""

    name = "retention"

    def __init__(self, store: StoreMaintenance, blobs: BlobStore, policy: RetentionSettings) -> None:
        super().__init__(interval_s=policy.interval_s)
        self.store = store
        self.blobs = blobs
        self.policy = policy

    async def run_step(self) -> None:
        report = await run_retention(self.store, self.blobs, self.policy)
        if report.expired or report.purged_count or report.blobs_deleted:
            log.info("retention: %d expired, %d purged, %d blobs deleted", len(report.expired),
                     report.purged_count, len(report.blobs_deleted))


class GraceLoop(LoopRunner):
    """Decide the DONE tasks whose quorum was not reached within ``grace_s`` on the evaluations they
    have (``approval.settle_after_grace``): a peer that is down or never evaluates delays a task by
    the grace at most. Runs every quarter of the grace."""

    name = "grace"

    def __init__(self, store: TaskStore, view: MetagraphView, *, quorum: float, grace_s: float) -> None:
        super().__init__(interval_s=max(grace_s / 4, 0.5))
        self.store = store
        self.view = view
        self.quorum = quorum
        self.grace_s = grace_s
        self.settled = 0

    async def run_step(self) -> None:
        cursor = None
        while not self.stopping:
            page = await self.store.list_tasks(status=TaskStatus.DONE, limit=100, cursor=cursor)
            now = utcnow()
            for task in page.tasks:
                status = await settle_after_grace(self.store, task, self.view(), self.quorum, grace_s=self.grace_s,
                                                  now=now)
                if status is not None:
                    self.settled += 1
                    log.info("task %s: %s after the approval grace of %.0f s", task.task_id, status.value,
                             self.grace_s)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class RecoveryLoop(LoopRunner):
    """Every ``interval_s``, evaluate the DONE tasks this validator has not judged (``ForwardLoop.recover``).

    The first sweep runs at start, alongside intake (the loop's guards keep the two apart): a
    restart with many DONE tasks waiting (a crash, a shared store's quorum) is serving at once.
    """

    name = "recovery"

    def __init__(self, forward: ForwardLoop, *, interval_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.forward = forward
        self.recovered = 0

    async def run_step(self) -> None:
        count = await self.forward.recover()
        self.recovered += count
        if count:
            log.info("recovery: evaluated %d done task(s) left unjudged", count)
