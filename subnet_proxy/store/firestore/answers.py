"""The Firestore store's ``AnswerStore``: responses, evaluations and the final result of a task.

"Exactly once" records (responses, evaluations) are ``create`` writes with deterministic ids: the
second writer gets AlreadyExists and reads the first's. A first valid answer and its first-answer
marker are created in one atomic write, so the marker never names a response that was not stored;
an answer conditional on the task's status (``only_if``) is written in a transaction that reads
the task.
"""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.async_transaction import async_transactional

from subnet_proxy.store import ops
from subnet_proxy.store.base import AnswerStore, StoreError, TaskNotFound
from subnet_proxy.store.firestore import codec
from subnet_proxy.store.firestore.core import TX_ATTEMPTS, FirestoreCore
from subnet_proxy.tasks import Evaluation, FinalResult, MinerResponse, TaskStatus, utcnow


class FirestoreAnswers(FirestoreCore, AnswerStore):
    """The ``miner_responses``, ``first_responses``, ``evaluations``, ``validators`` and
    ``final_results`` collections."""

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

    async def get_final_result(self, task_id: str) -> FinalResult | None:
        snap = await self._col.results.document(task_id).get()
        return codec.decode(FinalResult, snap.to_dict()) if snap.exists else None

    async def _require_task(self, task_id: str) -> None:
        if not (await self._task_ref(task_id).get(field_paths=["status"])).exists:
            raise TaskNotFound(task_id)

    async def _get_all(self, *refs: Any) -> list[Any]:
        """Several documents in one round trip, in the order asked (get_all yields in any order)."""
        snaps = {s.reference.path: s async for s in self._client.get_all(list(refs))}
        return [snaps[ref.path] for ref in refs]
