"""The Firestore store's collections and queries, one function per question the store asks.

Every query here that filters on one field and orders on another needs a composite index in a real
project; ``firestore.indexes.json`` at the repo root lists them (the emulator needs none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

from subnet_proxy.store import ops
from subnet_proxy.store.firestore import codec
from subnet_proxy.tasks import FinalResult, MinerResponse, Task, TaskStatus

#: Firestore's limit of writes in one batch.
BATCH_WRITES = 500


def _eq(field: str, value: Any) -> firestore.FieldFilter:
    return firestore.FieldFilter(field, "==", value)


class Collections:
    """The store's collections, named ``prefix + name`` so deployments can share a project."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.tasks = client.collection(prefix + "tasks")
        self.idempotency = client.collection(prefix + "idempotency")
        self.responses = client.collection(prefix + "miner_responses")
        self.first_responses = client.collection(prefix + "first_responses")
        self.evaluations = client.collection(prefix + "evaluations")
        self.results = client.collection(prefix + "final_results")
        self.validators = client.collection(prefix + "validators")
        self.files = client.collection(prefix + "files")
        self.usage = client.collection(prefix + "usage")
        self.webhooks = client.collection(prefix + "webhooks")

    def blob_ref(self, key: str, task_id: str, source: str) -> Any:
        """``files/{key}/refs/{task~source}``: one reference per use (input, result, response.HOTKEY),
        so replacing a result drops exactly the old result's reference."""
        return self.files.document(codec.doc_id(key)).collection("refs").document(codec.doc_id(task_id, source))


def listing(
    tasks: Any,
    *,
    status: TaskStatus | None,
    owner: str | None,
    kind: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
    newest_first: bool,
) -> Any:
    """Tasks in (created_at, id) order, oldest or newest first, so the cursor is exact even on equal
    times. Every filtered order needs its composite index (firestore.indexes.json)."""
    query = tasks
    if status is not None:
        query = query.where(filter=_eq("status", TaskStatus(status).value))
    if owner is not None:
        query = query.where(filter=_eq("owner", owner))
    if kind is not None:
        query = query.where(filter=_eq("kind", str(kind)))
    direction = firestore.Query.DESCENDING if newest_first else firestore.Query.ASCENDING
    query = query.order_by("created_at", direction=direction).order_by("__name__", direction=direction)
    if after is not None:
        query = query.start_after({"created_at": after[0], "__name__": after[1]})
    return query.limit(limit)


async def claimable(tasks: Any, *, now: datetime, kinds: list[str] | None, window: int) -> list[Any]:
    """Snapshots of the ``window`` oldest claimable tasks: PENDING, or DISTRIBUTED whose lease ran
    out (two queries: Firestore allows one inequality field per query)."""
    pending = tasks.where(filter=_eq("status", TaskStatus.PENDING.value))
    expired = tasks.where(filter=_eq("status", TaskStatus.DISTRIBUTED.value)).where(
        filter=firestore.FieldFilter("lease_expires_at", "<=", now)
    )
    if kinds is not None:
        kind_filter = firestore.FieldFilter("kind", "in", kinds)
        pending, expired = pending.where(filter=kind_filter), expired.where(filter=kind_filter)
    snaps = [s async for s in pending.order_by("created_at").limit(window).stream()]
    snaps += [s async for s in expired.order_by("lease_expires_at").limit(window).stream()]
    snaps.sort(key=lambda s: (s.get("created_at"), s.id))
    return snaps[:window]


async def count(tasks: Any, status: TaskStatus) -> int:
    result = await tasks.where(filter=_eq("status", status.value)).count().get()
    return int(result[0][0].value)


def older_than(tasks: Any, *, status: TaskStatus, before: datetime, limit: int) -> Any:
    return (
        tasks.where(filter=_eq("status", status.value))
        .where(filter=firestore.FieldFilter("updated_at", "<", before))
        .order_by("updated_at")
        .limit(limit)
    )


async def overdue_ids(tasks: Any, *, now: datetime, limit: int) -> list[str]:
    """Ids of up to ``limit`` unfinished tasks whose deadline passed, earliest deadline first."""
    found: list[tuple[datetime, str]] = []
    for status in ops.OVERDUE_STATUSES:
        query = (
            tasks.where(filter=_eq("status", status.value))
            .where(filter=firestore.FieldFilter("deadline", "<=", now))
            .order_by("deadline")
            .limit(limit)
        )
        found += [(s.get("deadline"), s.id) async for s in query.stream()]
    return [task_id for _, task_id in sorted(found)[:limit]]


async def has_refs(col: Collections, file_id: str) -> bool:
    return bool(await col.files.document(file_id).collection("refs").limit(1).get())


async def delete_task_tree(col: Collections, client: Any, task: Task) -> set[str]:
    """Delete a task with everything keyed by it; return the blob keys it and its records used."""
    by_task = _eq("task_id", task.task_id)
    responses = [s async for s in col.responses.where(filter=by_task).stream()]
    evaluations = [s async for s in col.evaluations.where(filter=by_task).stream()]
    result = await col.results.document(task.task_id).get()
    uses = [(key, "input") for key in task.blob_keys]
    for snap in responses:
        response = codec.decode(MinerResponse, snap.to_dict())
        uses += [(key, f"response.{response.hotkey}") for key in ops.response_blobs(response)]
    if result.exists:
        uses += [(key, "result") for key in ops.result_blobs(codec.decode(FinalResult, result.to_dict()))]
    webhooks = [s async for s in col.webhooks.where(filter=by_task).stream()]
    refs = [s.reference for s in responses + evaluations + webhooks]
    refs += [col.results.document(task.task_id), col.first_responses.document(task.task_id)]
    refs += [col.blob_ref(key, task.task_id, source) for key, source in uses]
    if task.idempotency_key is not None:
        refs.append(col.idempotency.document(codec.doc_id(task.owner, task.idempotency_key)))
    refs.append(col.tasks.document(task.task_id))  # last: a crash midway leaves the task to retry
    for start in range(0, len(refs), BATCH_WRITES):
        batch = client.batch()
        for ref in refs[start : start + BATCH_WRITES]:
            batch.delete(ref)
        await batch.commit()
    return {key for key, _ in uses}
