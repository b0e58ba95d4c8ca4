"""What every role of the Firestore store shares: the client, the collections, and one task's transaction.

``FirestoreCore`` owns the AsyncClient, the prefixed collections (``queries.Collections``) and the
new-task signal, and the writes more than one role makes: a task changed in a transaction
(``_update_if``: renew, release, assign, transition, expire), a final result replaced with its blob
references (``_replace_result``: approval's move to APPROVED as ``set_final_result``), a blob
reference (``_add_refs``). The role modules (``records``, ``queue``, ``answers``, ``maintenance``)
add the operations on top of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from google.cloud import firestore
from google.cloud.firestore_v1.async_transaction import async_transactional

from subnet_proxy.config import StoreSettings
from subnet_proxy.firestore_client import async_client
from subnet_proxy.store import ops
from subnet_proxy.store.base import TaskNotFound
from subnet_proxy.store.firestore import codec, queries
from subnet_proxy.store.firestore.signal import NewTaskSignal, pending_query
from subnet_proxy.tasks import FinalResult, Task

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


class FirestoreCore:
    """The client state and shared writes of one store object on one Firestore database."""

    def __init__(self, settings: StoreSettings, *, client: firestore.AsyncClient | None = None) -> None:
        self._settings = settings
        self._client = client or async_client(settings)
        self._col = queries.Collections(self._client, settings.firestore_prefix)
        self._signal = NewTaskSignal(
            listen=settings.firestore_listen,
            make_listener_collection=self._listener_collection,
            oldest_pending=self._oldest_pending,
            poll_s=settings.poll_s,
        )

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

    def _replace_result(self, tx: Any, old: Any, result: FinalResult) -> None:
        """Write ``result`` over the stored one (snapshot ``old``, read in ``tx``) and move its blob refs."""
        if old.exists:
            for key in ops.result_blobs(codec.decode(FinalResult, old.to_dict())):
                tx.delete(self._col.blob_ref(key, result.task_id, "result"))
        tx.set(self._col.results.document(result.task_id), codec.encode_result(result))
        self._add_refs(tx, ops.result_blobs(result), result.task_id, "result")

    def _task_ref(self, task_id: str) -> Any:
        if not task_id or "/" in task_id:
            raise TaskNotFound(task_id)
        return self._col.tasks.document(task_id)

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
