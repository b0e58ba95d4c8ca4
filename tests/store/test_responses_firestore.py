"""Firestore answers under faults injected on purpose: a failed write leaves no first-answer mark, and
the task's status is checked when the answer is committed, not only when it was first read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from subnet_proxy.store import TaskNotAccepting
from subnet_proxy.store.firestore import FirestoreTaskStore
from subnet_proxy.tasks import TaskStatus
from tests.store.emulators import clear_firestore, emulator_host, firestore_settings, unique_name
from tests.store.factories import make_response, make_task

pytestmark = pytest.mark.firestore


@pytest.fixture
async def stores() -> AsyncIterator[tuple[FirestoreTaskStore, FirestoreTaskStore]]:
    """Two store objects on one fresh emulator database (as two processes would have)."""
    emulator_host("FIRESTORE_EMULATOR_HOST")
    project = unique_name("answers")
    first, second = (FirestoreTaskStore(firestore_settings(project)) for _ in range(2))
    yield first, second
    await first.close()
    await second.close()
    await asyncio.to_thread(clear_firestore, project)


async def test_a_failed_answer_write_leaves_no_first_mark(
    stores: tuple[FirestoreTaskStore, FirestoreTaskStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = stores
    task, _ = await store.create_task(make_task(1))
    add_refs = store._add_refs

    def add_refs_then_fail(writes: Any, keys: Iterable[str], task_id: str, source: str) -> None:
        add_refs(writes, keys, task_id, source)
        # a write the server refuses at commit (an update of a missing document): the commit fails
        writes.update(store._col.tasks.document("no-such-task"), {"touched": True})

    monkeypatch.setattr(store, "_add_refs", add_refs_then_fail)
    with pytest.raises(gexc.NotFound):
        await store.record_response(make_response(task.task_id, "hk1"))
    monkeypatch.undo()

    assert await other.list_responses(task.task_id) == []
    assert not (await store._col.first_responses.document(task.task_id).get()).exists
    assert await other.first_response(task.task_id) is None
    good, created = await other.record_response(make_response(task.task_id, "hk2"))
    assert created and good.is_first
    assert await store.first_response(task.task_id) == good


async def test_the_status_is_checked_when_the_answer_is_written(
    stores: tuple[FirestoreTaskStore, FirestoreTaskStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task ends (another validator moves it to DONE) right after the store's first read of it."""
    store, other = stores
    task, _ = await store.create_task(make_task(1))
    await other.claim_tasks("v", limit=1, lease_s=60)
    read_all = store._get_all

    async def read_then_task_ends(*refs: Any) -> list[Any]:
        snaps = await read_all(*refs)
        await other.transition(task.task_id, TaskStatus.DONE, claimer="v")
        return snaps

    monkeypatch.setattr(store, "_get_all", read_then_task_ends)
    with pytest.raises(TaskNotAccepting) as refused:
        await store.record_response(make_response(task.task_id, "hk1"), only_if=frozenset({TaskStatus.DISTRIBUTED}))
    assert refused.value.status is TaskStatus.DONE
    assert await other.list_responses(task.task_id) == []
    assert await other.first_response(task.task_id) is None
