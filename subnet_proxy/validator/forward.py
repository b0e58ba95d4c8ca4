"""The forward loop: claim tasks the moment they arrive, work up to ``concurrency`` of them at once.

Intake waits on the store's own new-task signal (``wait_for_task``: an in-process event on the
embedded store), never on a sleep-and-poll cadence, and claims only as many tasks as there are free
dispatch slots, so a burst queues in the store rather than in memory. Each claimed task is
dispatched by its own coroutine (``dispatch.Dispatcher``); its lease is renewed every third of the
lease while it is out with miners, and the work stops if the lease is lost (another validator took
the task over), or when it outlives its time budget (``Dispatcher.time_budget`` plus one lease): a
stuck call must not keep a task DISTRIBUTED under a lease renewed for ever; it is claimed again
once the lease runs out.

Evaluation (``evaluation.Evaluator``: the models) runs after the dispatch slot is freed, at most
``concurrency`` at once: when scoring is the bottleneck, new tasks still reach miners (and their
clients the first answer) at once. The evaluation backlog is bounded too (``EVAL_BACKLOG`` x
concurrency): beyond it, intake waits.

Shutdown stops intake first, gives in-flight work ``grace_s`` to finish, then cancels the rest and
releases the leases of tasks still out with miners (DISTRIBUTED -> PENDING), so the next start, or
another validator, picks them up at once instead of waiting for the lease to run out.

``recover`` evaluates DONE tasks this validator has not judged: at start (it stopped between the two
steps) and then on a cadence (``loops.RecoveryLoop``), so a task whose evaluation failed, or that was
cut off by a lease lost just after DONE, or another validator's task on a shared store still short
of its quorum, does not stay DONE until the next restart or its deadline. A task this process is
dispatching or evaluating is never picked by the sweep, and a repeated evaluation moves no score.

Intake yields to the side-server in the same process (``server.activity``): while uploads are in
flight it waits for a moment with none, at most ``yield_s``, before claiming; a burst of
submissions is taken in first (it queues in the store), and a sustained one slows dispatch to at
most ``concurrency`` claims per ``yield_s`` instead of halving the rate clients can hand tasks over.

Claims and the sweep take only the kinds registered in this build (``kinds.REGISTRY``): validators
of different versions may share a store, and a task of a kind this one cannot serve is left to one
that can (or to its deadline), never failed or scored here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from subnet_proxy.kinds import REGISTRY
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.store import ops
from subnet_proxy.store.base import LeaseLost, TaskStore
from subnet_proxy.tasks import IllegalTransition, Task, TaskStatus, utcnow
from subnet_proxy.validator.dispatch import Dispatcher
from subnet_proxy.validator.evaluation import Evaluator
from subnet_proxy.validator.loop_runner import LoopRunner

log = logging.getLogger(__name__)

#: longest single wait on the store's new-task signal (a backstop; the signal normally wakes us).
MAX_IDLE_WAIT_S = 5.0
#: evaluations waiting or running, as a multiple of the concurrency, before intake pauses.
EVAL_BACKLOG = 4


class ForwardLoop(LoopRunner):
    name = "forward"

    def __init__(
        self,
        store: TaskStore,
        dispatcher: Dispatcher,
        evaluator: Evaluator,
        *,
        claimer: str,
        concurrency: int,
        lease_s: float,
        grace_s: float = 30.0,
        on_dispatched: Callable[[Task], None] | None = None,
        ingest: IngestActivity | None = None,
        yield_s: float = 0.0,
    ) -> None:
        super().__init__(interval_s=MAX_IDLE_WAIT_S)
        self.store = store
        self.dispatcher = dispatcher
        self.evaluator = evaluator
        self.claimer = claimer
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.grace_s = grace_s
        self.on_dispatched = on_dispatched
        self.ingest = ingest
        self.yield_s = yield_s
        self.completed = 0
        #: ``time.monotonic()`` of the last task sent to miners and of the last evaluation done (health).
        self.last_dispatched_at: float | None = None
        self.last_evaluated_at: float | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._evaluating: set[asyncio.Task[None]] = set()
        #: ids of tasks being evaluated here (entered before they leave ``_inflight``: no gap for a sweep).
        self._judging: set[str] = set()
        self._eval_slots = asyncio.Semaphore(concurrency)
        self._slot_freed = asyncio.Event()
        self._more_waiting = False

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def scoring_backlog(self) -> int:
        """Evaluations waiting for a slot or running."""
        return len(self._evaluating)

    def _free_slots(self) -> int:
        if len(self._evaluating) >= EVAL_BACKLOG * self.concurrency:
            return 0
        return self.concurrency - len(self._inflight)

    # -- intake -------------------------------------------------------------------------------------
    async def run_step(self) -> None:
        free = self._free_slots()
        self._more_waiting = False
        if free <= 0:
            return
        if self.ingest is not None and self.ingest.in_flight:
            await self.ingest.quiet(self.yield_s)
            free = self._free_slots()  # slots freed while it waited are claimed in the same round trip
            if free <= 0 or self.stopping:
                return
        # only the kinds this build can serve: a validator sharing a store with a newer one leaves it the rest
        tasks = await self.store.claim_tasks(self.claimer, limit=free, lease_s=self.lease_s, kinds=list(REGISTRY))
        for task in tasks:
            self._inflight[task.task_id] = asyncio.create_task(self._work(task), name=f"task-{task.task_id}")
        self._more_waiting = len(tasks) == free

    async def wait_next(self) -> None:
        if self.stopping:
            return
        if self._free_slots() <= 0:
            self._slot_freed.clear()
            await self._race(self._slot_freed.wait())
        elif not self._more_waiting:
            await self._race(self.store.wait_for_task(self.interval_s))

    async def _race(self, waiter: Awaitable[object]) -> None:
        """Wait for ``waiter`` or a stop, whichever comes first."""
        wait = asyncio.ensure_future(waiter)
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({wait, stop}, return_when=asyncio.FIRST_COMPLETED)
        for fut in (wait, stop):
            fut.cancel()
        await asyncio.gather(wait, stop, return_exceptions=True)

    # -- one task -----------------------------------------------------------------------------------
    async def _work(self, task: Task) -> None:
        budget = self.dispatcher.time_budget(task) + self.lease_s
        try:
            if ops.overdue(task, utcnow()):
                await self._expire(task)
                return
            self.last_dispatched_at = time.monotonic()
            if self.on_dispatched is not None:
                self.on_dispatched(task)
            keeper = asyncio.create_task(self._keep_lease(task.task_id, asyncio.current_task()))
            try:
                async with asyncio.timeout(budget):
                    outcome = await self.dispatcher.run(task)
            finally:
                keeper.cancel()
            if outcome.responses:
                self._judging.add(task.task_id)
                evaluation = asyncio.create_task(self._evaluate(outcome.task, outcome.timeout_s))
                self._evaluating.add(evaluation)
            else:
                self.completed += 1
        except LeaseLost:
            await self._log_lost_lease(task.task_id)
        except TimeoutError:
            log.exception("task %s: dispatch timed out (its budget is %.0f s); abandoned, claimed again when its "
                          "lease runs out", task.task_id, budget)
        except Exception:  # noqa: BLE001 - logged with traceback; the lease runs out and the task is retried
            log.exception("task %s: dispatch failed; it will be claimed again when its lease runs out", task.task_id)
        finally:
            self._inflight.pop(task.task_id, None)
            self._slot_freed.set()

    async def _expire(self, task: Task) -> None:
        """A task claimed past its deadline (retention expires them only every ``interval_s``) ends
        EXPIRED at once: its client has given up on it, so miners are not asked to work for nothing."""
        deadline = task.deadline.isoformat() if task.deadline else "?"
        await self.store.transition(task.task_id, TaskStatus.EXPIRED, reason=ops.DEADLINE_ERROR,
                                    error=(ops.DEADLINE_ERROR, f"not dispatched by its deadline {deadline}"),
                                    claimer=self.claimer)
        self.completed += 1
        log.info("task %s: claimed past its deadline %s; expired", task.task_id, deadline)

    async def _evaluate(self, task: Task, timeout_s: float) -> None:
        try:
            async with self._eval_slots:
                await self.evaluator.evaluate(task, timeout_s=timeout_s)
            self.last_evaluated_at = time.monotonic()
            self.completed += 1
        except Exception:  # noqa: BLE001 - logged with traceback; the next recovery sweep evaluates it
            log.exception("task %s: evaluation failed; the next recovery sweep redoes it", task.task_id)
        finally:
            self._judging.discard(task.task_id)
            self._evaluating.discard(asyncio.current_task())
            self._slot_freed.set()

    async def _log_lost_lease(self, task_id: str) -> None:
        """A lease is lost when another validator took the task over, or when the task ended under it:
        its client cancelled it (nothing to warn about) or it expired."""
        try:
            current = await self.store.get_task(task_id)
        except Exception:  # noqa: BLE001 - only the log line depends on it
            current = None
        if current is not None and current.error is not None and current.error.code == ops.CANCELLED_ERROR:
            log.info("task %s: cancelled by its client while out with miners; abandoned", task_id)
        elif current is not None and current.status.is_terminal:
            log.warning("task %s: ended %s while out with miners; abandoned", task_id, current.status.value)
        else:
            log.warning("task %s: lease lost; another validator has it now", task_id)

    async def _keep_lease(self, task_id: str, worker: asyncio.Task[object] | None) -> None:
        """Renew the lease while the task is out with miners; stop the worker if it is lost."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.store.renew_lease(task_id, self.claimer, lease_s=self.lease_s)
            except LeaseLost:
                await self._log_lost_lease(task_id)
                if worker is not None:
                    worker.cancel()
                return
            # Not only StoreError: a cloud backend raises its client's own errors (unavailable,
            # deadline exceeded). A keeper that died on one would let the lease run out under a task
            # still out with miners, and another validator would do the same work again.
            except Exception:  # noqa: BLE001 - logged with traceback and retried at the next third of the lease
                log.exception("task %s: lease renewal failed; retrying", task_id)

    # -- start and stop -----------------------------------------------------------------------------
    async def recover(self) -> int:
        """Evaluate the DONE tasks this validator has not judged yet (see the module docstring); a task
        that cannot be evaluated is logged and left for the next sweep. Returns how many were."""
        recovered, cursor = 0, None
        while True:
            page = await self.store.list_tasks(status=TaskStatus.DONE, limit=100, cursor=cursor)
            for task in page.tasks:
                if self.stopping:
                    return recovered
                recovered += await self._recover_one(task)
            if page.next_cursor is None:
                return recovered
            cursor = page.next_cursor

    async def _recover_one(self, task: Task) -> bool:
        # Checked before reading the evaluations: an evaluation here is recorded before its id leaves
        # ``_judging``, and a task enters ``_judging`` before it leaves ``_inflight``.
        if task.task_id in self._inflight or task.task_id in self._judging or task.kind not in REGISTRY:
            return False
        evaluations = await self.store.list_evaluations(task.task_id)
        if any(e.validator_hotkey == self.evaluator.hotkey for e in evaluations):
            return False
        self._judging.add(task.task_id)
        try:
            async with self._eval_slots:
                timeout_s = self.dispatcher.judging_timeout(task, await self.store.list_responses(task.task_id))
                await self.evaluator.evaluate(task, timeout_s=timeout_s)
            self.last_evaluated_at = time.monotonic()
            return True
        except Exception:  # noqa: BLE001 - logged with traceback; one bad task must not stop the sweep or the start
            log.exception("task %s: recovery evaluation failed; retried at the next sweep", task.task_id)
            return False
        finally:
            self._judging.discard(task.task_id)

    async def stop(self) -> None:
        """Stop intake, let in-flight work finish within ``grace_s``, release what is still out."""
        await super().stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s
        if self._inflight:
            log.info("forward: %d task(s) out with miners; waiting up to %.0f s", len(self._inflight), self.grace_s)
            await asyncio.wait(set(self._inflight.values()), timeout=self.grace_s)
        unfinished = list(self._inflight)
        await _cancel(set(self._inflight.values()))
        for task_id in unfinished:
            try:
                await self.store.release_task(task_id, self.claimer, reason="validator shutdown")
            except (LeaseLost, IllegalTransition):
                pass  # already moved on (DONE, or another validator's): nothing to give back
            except Exception:  # noqa: BLE001 - logged; the lease runs out instead, and the shutdown (scores saved) goes on
                log.exception("task %s: release on shutdown failed; it comes back when its lease runs out", task_id)
        if unfinished:
            log.info("forward: released %d unfinished task(s)", len(unfinished))
        if self._evaluating:  # dispatch may have queued more: wait for them in what is left of the grace
            await asyncio.wait(set(self._evaluating), timeout=max(0.0, deadline - loop.time()))
        if self._evaluating:
            log.info("forward: %d evaluation(s) left for the next start", len(self._evaluating))
            await _cancel(set(self._evaluating))


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for fut in tasks:
        fut.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
