"""The TaskStore on Cloud Firestore: many proxy/validator processes share one queue through it.

Collections (every name prefixed by ``--store.firestore_prefix``)::

    tasks/{task_id}                       the task (status, lease, timeline...)
    idempotency/{owner~key}               owner + idempotency key -> task_id (created with the task)
    miner_responses/{task_id~hotkey}      one answer per task and miner hotkey
    first_responses/{task_id}             which hotkey answered validly first (created once)
    evaluations/{task_id~validator}       one judgement per task and validator hotkey
    final_results/{task_id}               the answer the client gets
    validators/{hotkey}                   validators seen evaluating: stake, last evaluation
    files/{blob_key}/refs/{task~use}      which tasks use a blob (use: input, result, response.HOTKEY)

Atomicity: a claim reads its candidates, then takes each with a write conditioned on the update
time of that read (Firestore's compare-and-set), so of concurrent claimers exactly one wins a task.
Reading the candidates inside a transaction instead makes every read take a lock; on the emulator
5 claimers sharing 200 tasks then took 65-100 s against 2 s this way. Every other read-modify-write
of a task (renew, release, assign, transition, expire) is a transaction.
"Exactly once" records (responses, evaluations, idempotency, first answer) are ``create`` writes
with deterministic ids: the second writer gets AlreadyExists and reads the first's. A first valid
answer and its first-answer marker are created in one atomic write, so the marker never names a
response that was not stored; an answer conditional on the task's status (``only_if``) is written
in a transaction that reads the task, and an approval's final result in the transaction that moves
the task to APPROVED. The rules
themselves (leases, checked moves) are ``subnet_proxy.store.ops``, shared with every backend.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.async_transaction import async_transactional

from subnet_proxy.config import Settings, StoreSettings
from subnet_proxy.store import ops
from subnet_proxy.store.base import Page, PurgeReport, StoreError, TaskNotFound, TaskStore
from subnet_proxy.store.firestore import codec, queries
from subnet_proxy.store.firestore.signal import NewTaskSignal, close_client, pending_query
from subnet_proxy.tasks import Evaluation, FinalResult, MinerResponse, Task, TaskKind, TaskStatus, utcnow

#: rounds a claim call may take while claimable tasks remain but other claimers keep winning them.
CLAIM_ROUNDS = 50
#: candidates read per wanted task once claimers collide (the spread that keeps them apart).
CLAIM_SPREAD = 4
#: transaction attempts before giving up (the client backs off between attempts).
TX_ATTEMPTS = 10
#: requests one store call keeps in flight at once (claims, purges, blob reference checks).
FAN_OUT = 32

T = TypeVar("T")


async def fan_out(calls: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather`` with at most FAN_OUT calls in flight, results in order."""
    gate = asyncio.Semaphore(FAN_OUT)

    async def run(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(run(call) for call in calls)))


class FirestoreTaskStore(TaskStore):
    """Firestore via the AsyncClient; credentials from ADC / GOOGLE_APPLICATION_CREDENTIALS, or the
    emulator when FIRESTORE_EMULATOR_HOST is set."""

    def __init__(self, settings: StoreSettings, *, client: firestore.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client or firestore.AsyncClient(
            project=settings.firestore_project, database=settings.firestore_database
        )
        self._col = queries.Collections(self._client, settings.firestore_prefix)
        self._signal = NewTaskSignal(
            listen=settings.firestore_listen,
            make_listener_collection=self._listener_collection,
            oldest_pending=self._oldest_pending,
            poll_s=settings.poll_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> FirestoreTaskStore:
        return cls(settings.store)

    @property
    def notification_mode(self) -> str:
        return self._signal.mode

    # -- tasks ---------------------------------------------------------------------------------
    async def create_task(self, task: Task) -> tuple[Task, bool]:
        ops.check_new(task)
        batch = self._client.batch()
        idem_ref = None
        if task.idempotency_key is not None:
            idem_ref = self._col.idempotency.document(codec.doc_id(task.owner, task.idempotency_key))
            batch.create(idem_ref, {"owner": task.owner, "idempotency_key": task.idempotency_key,
                                    "task_id": task.task_id, "created_at": task.created_at})
        batch.create(self._col.tasks.document(task.task_id), codec.encode_task(task))
        self._add_refs(batch, task.blob_keys, task.task_id, "input")
        try:
            await batch.commit()
        except gexc.Conflict:
            # the same task id, or the same owner + idempotency key: the first one stands
            first_id = task.task_id
            if idem_ref is not None and (first := await idem_ref.get()).exists:
                first_id = first.get("task_id")
            return await self.get_task(first_id), False
        self._signal.notify()
        return task, True

    async def get_task(self, task_id: str) -> Task:
        snap = await self._task_ref(task_id).get()
        if not snap.exists:
            raise TaskNotFound(task_id)
        return codec.decode_task(snap.to_dict())

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        ops.check_limit(limit)
        after = ops.decode_cursor(cursor) if cursor is not None else None
        query = queries.listing(self._col.tasks, status=status, owner=owner, after=after, limit=limit + 1)
        tasks = [codec.decode_task(s.to_dict()) async for s in query.stream()]
        return ops.page_of(tasks, limit)

    async def claim_tasks(
        self,
        claimer: str,
        *,
        limit: int,
        lease_s: float,
        kinds: Iterable[TaskKind] | None = None,
        now: datetime | None = None,
    ) -> list[Task]:
        ops.check_limit(limit)
        ops.check_lease_s(lease_s)
        now = ops.instant(now)
        kind_list = None if kinds is None else [TaskKind(k) for k in kinds]
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

    async def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        reason: str | None = None,
        error: tuple[str, str] | None = None,
        claimer: str | None = None,
        result: FinalResult | None = None,
    ) -> Task:
        ops.check_decision(task_id, target, result)
        task, _ = await self._update_if(
            task_id,
            lambda t: ops.transitioned(t, target, reason=reason, error=error, claimer=claimer, now=utcnow()),
            result=result,
        )
        if target is TaskStatus.PENDING:
            self._signal.notify()
        return task

    async def _update(self, task_id: str, change: Callable[[Task], Task]) -> Task:
        task, _ = await self._update_if(task_id, change)
        return task

    async def _update_if(
        self, task_id: str, change: Callable[[Task], Task | None], *, result: FinalResult | None = None
    ) -> tuple[Task, bool]:
        """Read, change and write one task (and its final ``result`` if given) in a transaction;
        ``change`` returning None writes nothing. ``change`` may run more than once (the transaction
        retries on contention): keep it pure."""
        ref = self._task_ref(task_id)
        result_ref = self._col.results.document(task_id)

        @async_transactional
        async def update(tx: Any) -> tuple[Task, bool]:
            snap = await ref.get(transaction=tx)
            if not snap.exists:
                raise TaskNotFound(task_id)
            old_result = await result_ref.get(transaction=tx) if result is not None else None
            task = codec.decode_task(snap.to_dict())
            changed = change(task)
            if changed is None:
                return task, False
            tx.set(ref, codec.encode_task(changed))
            if result is not None:
                self._replace_result(tx, old_result, result)
            return changed, True

        updated: tuple[Task, bool] = await update(self._client.transaction(max_attempts=TX_ATTEMPTS))
        return updated

    # -- responses, evaluations, results ----------------------------------------------------------
    async def record_response(
        self, response: MinerResponse, *, only_if: frozenset[TaskStatus] | None = None
    ) -> tuple[MinerResponse, bool]:
        """One read of the task, the answer and the first-answer marker; then the answer (with the
        marker when it is the first valid one) created in one atomic write. AlreadyExists means the
        answer is a repeat, or another answer took the marker meanwhile: then it is stored as not first."""
        ref = self._col.responses.document(codec.doc_id(response.task_id, response.hotkey))
        marker = self._col.first_responses.document(response.task_id)
        task_snap, existing, marked = await self._get_all(self._task_ref(response.task_id), ref, marker)
        if not task_snap.exists:
            raise TaskNotFound(response.task_id)
        ops.require_accepting(codec.decode_task(task_snap.to_dict()), only_if)
        if existing.exists:
            return codec.decode(MinerResponse, existing.to_dict()), False
        stored = ops.first_marked(response, first_exists=marked.exists)
        try:
            await self._create_response(stored, ref, marker, only_if)
            return stored, True
        except gexc.Conflict:
            pass
        if (again := await ref.get()).exists:
            return codec.decode(MinerResponse, again.to_dict()), False
        if not stored.is_first:
            raise StoreError(f"task {stored.task_id}: the answer of {stored.hotkey} was refused as a repeat "
                             "but is not stored")
        stored = ops.first_marked(response, first_exists=True)
        try:
            await self._create_response(stored, ref, marker, only_if)
        except gexc.Conflict:
            return codec.decode(MinerResponse, (await ref.get()).to_dict()), False
        return stored, True

    async def _create_response(
        self, stored: MinerResponse, ref: Any, marker: Any, only_if: frozenset[TaskStatus] | None
    ) -> None:
        """Create the answer (and the marker naming it when it is first) in one atomic write; with
        ``only_if``, in a transaction that re-reads the task, so its status holds at commit.
        gexc.Conflict when the answer or the marker already exists (nothing is written then)."""

        def add(writes: Any) -> None:
            writes.create(ref, codec.encode_response(stored))
            if stored.is_first:
                writes.create(marker, {"task_id": stored.task_id, "hotkey": stored.hotkey, "at": utcnow()})
            self._add_refs(writes, ops.response_blobs(stored), stored.task_id, f"response.{stored.hotkey}")

        if only_if is None:
            batch = self._client.batch()
            add(batch)
            await batch.commit()
            return
        task_ref = self._task_ref(stored.task_id)

        @async_transactional
        async def create(tx: Any) -> None:
            snap = await task_ref.get(transaction=tx)
            if not snap.exists:
                raise TaskNotFound(stored.task_id)
            ops.require_accepting(codec.decode_task(snap.to_dict()), only_if)
            add(tx)

        await create(self._client.transaction(max_attempts=TX_ATTEMPTS))

    async def list_responses(self, task_id: str) -> list[MinerResponse]:
        query = self._col.responses.where(filter=firestore.FieldFilter("task_id", "==", task_id))
        responses = [codec.decode(MinerResponse, s.to_dict()) async for s in query.stream()]
        return sorted(responses, key=lambda r: (r.received_at, r.hotkey))

    async def first_response(self, task_id: str) -> MinerResponse | None:
        marker = await self._col.first_responses.document(task_id).get()
        if not marker.exists:
            return None
        snap = await self._col.responses.document(codec.doc_id(task_id, marker.get("hotkey"))).get()
        return codec.decode(MinerResponse, snap.to_dict()) if snap.exists else None

    async def record_evaluation(self, evaluation: Evaluation) -> bool:
        await self._require_task(evaluation.task_id)
        batch = self._client.batch()
        batch.create(
            self._col.evaluations.document(codec.doc_id(evaluation.task_id, evaluation.validator_hotkey)),
            codec.encode_evaluation(evaluation),
        )
        batch.set(
            self._col.validators.document(codec.doc_id(evaluation.validator_hotkey)),
            {"hotkey": evaluation.validator_hotkey, "stake": evaluation.stake,
             "last_evaluation_at": evaluation.created_at, "last_task_id": evaluation.task_id},
            merge=True,
        )
        try:
            await batch.commit()
        except gexc.Conflict:
            return False
        return True

    async def list_evaluations(self, task_id: str) -> list[Evaluation]:
        query = self._col.evaluations.where(filter=firestore.FieldFilter("task_id", "==", task_id))
        evaluations = [codec.decode(Evaluation, s.to_dict()) async for s in query.stream()]
        return sorted(evaluations, key=lambda e: (e.created_at, e.validator_hotkey))

    async def set_final_result(self, result: FinalResult) -> None:
        await self._require_task(result.task_id)
        ref = self._col.results.document(result.task_id)

        @async_transactional
        async def replace(tx: Any) -> None:
            self._replace_result(tx, await ref.get(transaction=tx), result)

        await replace(self._client.transaction(max_attempts=TX_ATTEMPTS))

    def _replace_result(self, tx: Any, old: Any, result: FinalResult) -> None:
        """Write ``result`` over the stored one (snapshot ``old``, read in ``tx``) and move its blob refs."""
        if old.exists:
            for key in ops.result_blobs(codec.decode(FinalResult, old.to_dict())):
                tx.delete(self._col.blob_ref(key, result.task_id, "result"))
        tx.set(self._col.results.document(result.task_id), codec.encode_result(result))
        self._add_refs(tx, ops.result_blobs(result), result.task_id, "result")

    async def get_final_result(self, task_id: str) -> FinalResult | None:
        snap = await self._col.results.document(task_id).get()
        return codec.decode(FinalResult, snap.to_dict()) if snap.exists else None

    # -- health, notification, retention ----------------------------------------------------------
    async def count_by_status(self) -> dict[TaskStatus, int]:
        counts = await asyncio.gather(*(queries.count(self._col.tasks, status) for status in TaskStatus))
        return dict(zip(TaskStatus, counts, strict=True))

    async def wait_for_task(self, timeout: float) -> bool:
        return await self._signal.wait(timeout)

    async def purge(self, *, status: TaskStatus, older_than: datetime, limit: int = 500) -> PurgeReport:
        ops.check_limit(limit)
        ops.instant(older_than)
        status = TaskStatus(status)
        query = queries.older_than(self._col.tasks, status=status, before=older_than, limit=limit)
        tasks = [codec.decode_task(s.to_dict()) async for s in query.stream()]
        reports = await fan_out(queries.delete_task_tree(self._col, self._client, t) for t in tasks)
        keys: set[str] = set().union(*reports) if reports else set()
        return PurgeReport(task_ids=[t.task_id for t in tasks], blob_keys=keys)

    async def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> list[str]:
        ops.check_limit(limit)
        now = ops.instant(now)
        ids = await queries.overdue_ids(self._col.tasks, now=now, limit=limit)

        def expire(task: Task) -> Task | None:
            return ops.expired_by_deadline(task, now) if ops.overdue(task, now) else None

        expired = []
        for task_id in ids:
            try:
                _, changed = await self._update_if(task_id, expire)
            except TaskNotFound:
                continue  # purged meanwhile
            if changed:
                expired.append(task_id)
        return expired

    async def blobs_in_use(self, keys: Iterable[str]) -> set[str]:
        unique = sorted(set(keys))
        used = await fan_out(queries.has_refs(self._col, codec.doc_id(k)) for k in unique)
        return {key for key, in_use in zip(unique, used, strict=True) if in_use}

    async def ping(self) -> None:
        await queries.count(self._col.tasks, TaskStatus.PENDING)

    async def close(self) -> None:
        await self._signal.close()
        await close_client(self._client)

    # -- helpers -----------------------------------------------------------------------------------
    def _task_ref(self, task_id: str) -> Any:
        if not task_id or "/" in task_id:
            raise TaskNotFound(task_id)
        return self._col.tasks.document(task_id)

    async def _require_task(self, task_id: str) -> None:
        if not (await self._task_ref(task_id).get(field_paths=["status"])).exists:
            raise TaskNotFound(task_id)

    async def _get_all(self, *refs: Any) -> list[Any]:
        """Several documents in one round trip, in the order asked (get_all yields in any order)."""
        snaps = {s.reference.path: s async for s in self._client.get_all(list(refs))}
        return [snaps[ref.path] for ref in refs]

    def _add_refs(self, batch: Any, keys: Iterable[str], task_id: str, source: str) -> None:
        """Record in ``batch`` (or a transaction) that ``task_id`` uses each blob key as ``source``."""
        for key in keys:
            batch.set(self._col.blob_ref(key, task_id, source), {"blob_key": key, "task_id": task_id, "use": source})

    async def _oldest_pending(self) -> str | None:
        found = await pending_query(self._col.tasks).get()
        return str(found[0].id) if found else None

    def _listener_collection(self) -> tuple[Any, Any]:
        """A sync client for the snapshot listener (the async client cannot listen)."""
        client = firestore.Client(project=self._client.project, database=self._settings.firestore_database)
        return client.collection(self._col.tasks.id), client
