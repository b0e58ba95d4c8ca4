"""The Firestore store's ``TaskQueue``: claims by compare-and-set, leases by transaction, the new-task signal.

A claim reads its candidates, then takes each with a write conditioned on the update time of that
read, so of concurrent claimers exactly one wins a task. Reading the candidates inside a
transaction instead makes every read take a lock; on the emulator 5 claimers sharing 200 tasks then
took 65-100 s against 2 s this way. Renewals, releases and assignments are transactions
(``FirestoreCore._update_if``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc

from subnet_proxy.store import ops
from subnet_proxy.store.base import TaskQueue
from subnet_proxy.store.firestore import codec, queries
from subnet_proxy.store.firestore.core import FirestoreCore, fan_out
from subnet_proxy.tasks import Task, utcnow

#: rounds a claim call may take while claimable tasks remain but other claimers keep winning them.
CLAIM_ROUNDS = 50
#: candidates read per wanted task once claimers collide (the spread that keeps them apart).
CLAIM_SPREAD = 4


class FirestoreQueue(FirestoreCore, TaskQueue):
    """The work queue over the ``tasks`` collection."""

    @property
    def notification_mode(self) -> str:
        return self._signal.mode

    async def claim_tasks(
        self,
        claimer: str,
        *,
        limit: int,
        lease_s: float,
        kinds: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> list[Task]:
        now, kind_list = ops.check_claim(limit=limit, lease_s=lease_s, now=now, kinds=kinds)
        if kind_list == []:
            return []
        taken: dict[str, Task] = {}
        contended = False
        for _ in range(CLAIM_ROUNDS):
            want = limit - len(taken)
            if want <= 0:
                break
            candidates = [
                s for s in await queries.claimable(self._col.tasks, now=now, kinds=kind_list,
                                                   window=want * CLAIM_SPREAD if contended else want)
                if s.id not in taken
            ]
            if not candidates:
                break
            # The oldest, as the interface promises, until another claimer is seen taking the same
            # head of the queue: from then on spread over a wider window so the two stop colliding.
            pick = random.sample(candidates, min(want, len(candidates))) if contended else candidates[:want]
            outcomes = await fan_out(self._take(snap, claimer, lease_s, now) for snap in pick)
            won = [task for task in outcomes if task is not None]
            contended = contended or len(won) < len(pick)
            for task in won:
                taken[task.task_id] = task
        return sorted(taken.values(), key=lambda t: (t.created_at, t.task_id))

    async def _take(self, snap: Any, claimer: str, lease_s: float, now: datetime) -> Task | None:
        """Take one candidate if nobody changed it since ``snap`` was read: the write carries that
        read's update time as a precondition, so of concurrent claimers exactly one write lands."""
        task = codec.decode_task(snap.to_dict())
        if not ops.claimable(task, now):
            return None
        task = ops.claimed(task, claimer, lease_s=lease_s, now=now)
        try:
            await snap.reference.update(
                codec.encode_task(task), option=self._client.write_option(last_update_time=snap.update_time)
            )
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
            return None  # another claimer (or a transition, or a purge) got there first
        return task

    async def renew_lease(self, task_id: str, claimer: str, *, lease_s: float) -> Task:
        ops.check_lease_s(lease_s)
        return await self._update(task_id, lambda t: ops.renewed(t, claimer, lease_s=lease_s, now=utcnow()))

    async def release_task(self, task_id: str, claimer: str, *, reason: str = "released") -> Task:
        task = await self._update(task_id, lambda t: ops.released(t, claimer, reason=reason, now=utcnow()))
        self._signal.notify()
        return task

    async def assign_miners(self, task_id: str, claimer: str, miners: list[tuple[int, str]]) -> Task:
        return await self._update(task_id, lambda t: ops.with_miners(t, claimer, miners, now=utcnow()))

    async def wait_for_task(self, timeout: float) -> bool:
        return await self._signal.wait(timeout)
