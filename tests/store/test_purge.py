"""Conformance: deadlines expire tasks, purge deletes old rows, shared blobs stay referenced."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from subnet_proxy.store import TaskNotFound, TaskStore
from subnet_proxy.tasks import (
    Evaluation,
    FinalResult,
    MinerReward,
    TaskInput,
    TaskKind,
    TaskStatus,
    utcnow,
)
from tests.store.factories import make_response, make_task

KEY_A, KEY_B, KEY_C, KEY_D = (c * 64 for c in "abcd")


async def _finished(store: TaskStore, n: int, blob: str, *, output: str | None = None) -> str:
    """A task through to APPROVED with an input blob, one response (optionally with an output blob),
    an evaluation and a final result."""
    task, _ = await store.create_task(make_task(n, kind=TaskKind.TRANSCRIPTION, input=TaskInput(audio_blob=blob)))
    await store.claim_tasks("v1", limit=1, lease_s=60)
    await store.record_response(make_response(task.task_id, "hk1", uid=1, output_blob=output))
    await store.transition(task.task_id, TaskStatus.DONE, claimer="v1")
    await store.record_evaluation(
        Evaluation(task_id=task.task_id, validator_hotkey="val", rewards=[MinerReward(uid=1, hotkey="hk1", reward=1)])
    )
    await store.set_final_result(
        FinalResult(task_id=task.task_id, kind=TaskKind.TRANSCRIPTION, hotkey="hk1", uid=1, score=1, output_blob=output)
    )
    await store.transition(task.task_id, TaskStatus.APPROVED)
    return task.task_id


async def test_purge_deletes_old_tasks_with_everything_they_own(task_store: TaskStore) -> None:
    old = await _finished(task_store, 1, KEY_A, output=KEY_B)
    cutoff = utcnow()
    fresh = await _finished(task_store, 2, KEY_C)
    pending, _ = await task_store.create_task(make_task(3, input=TaskInput(audio_blob=KEY_D)))
    report = await task_store.purge(status=TaskStatus.APPROVED, older_than=cutoff)
    assert report.task_ids == [old]
    assert report.blob_keys == {KEY_A, KEY_B}
    with pytest.raises(TaskNotFound):
        await task_store.get_task(old)
    assert await task_store.list_responses(old) == []
    assert await task_store.list_evaluations(old) == []
    assert await task_store.get_final_result(old) is None
    assert (await task_store.get_task(fresh)).status is TaskStatus.APPROVED
    assert await task_store.blobs_in_use([KEY_A, KEY_B, KEY_C, KEY_D]) == {KEY_C, KEY_D}
    assert (await task_store.get_task(pending.task_id)).status is TaskStatus.PENDING


async def test_purge_only_touches_the_given_status_and_respects_the_limit(task_store: TaskStore) -> None:
    ids = [(await task_store.create_task(make_task(n)))[0].task_id for n in range(5)]
    for task_id in ids[:4]:
        await task_store.transition(task_id, TaskStatus.FAILED, error=("bad_input", "unreadable"))
    later = utcnow() + timedelta(seconds=1)
    assert (await task_store.purge(status=TaskStatus.EXPIRED, older_than=later)).task_ids == []
    first = await task_store.purge(status=TaskStatus.FAILED, older_than=later, limit=3)
    second = await task_store.purge(status=TaskStatus.FAILED, older_than=later, limit=3)
    assert len(first.task_ids) == 3 and len(second.task_ids) == 1
    assert set(first.task_ids + second.task_ids) == set(ids[:4])
    counts = await task_store.count_by_status()
    assert counts[TaskStatus.FAILED] == 0 and counts[TaskStatus.PENDING] == 1


async def test_a_blob_shared_by_two_tasks_stays_in_use_until_both_are_gone(task_store: TaskStore) -> None:
    first = await _finished(task_store, 1, KEY_A)
    cutoff = utcnow()
    await _finished(task_store, 2, KEY_A)
    report = await task_store.purge(status=TaskStatus.APPROVED, older_than=cutoff)
    assert report.task_ids == [first] and report.blob_keys == {KEY_A}
    assert await task_store.blobs_in_use([KEY_A]) == {KEY_A}
    await task_store.purge(status=TaskStatus.APPROVED, older_than=utcnow() + timedelta(seconds=1))
    assert await task_store.blobs_in_use([KEY_A]) == set()
    assert await task_store.blobs_in_use([]) == set()


async def test_a_replaced_final_result_releases_its_old_blob(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    result = FinalResult(task_id=task.task_id, kind=TaskKind.TTS, hotkey="hk1", uid=1, score=0.5, output_blob=KEY_A)
    await task_store.set_final_result(result)
    assert await task_store.blobs_in_use([KEY_A]) == {KEY_A}
    await task_store.set_final_result(result.model_copy(update={"output_blob": KEY_B}))
    assert await task_store.blobs_in_use([KEY_A, KEY_B]) == {KEY_B}


async def test_expire_overdue_ends_unfinished_tasks_past_their_deadline(task_store: TaskStore) -> None:
    now = utcnow()
    past, future = now - timedelta(seconds=5), now + timedelta(hours=1)
    done, _ = await task_store.create_task(make_task(1, deadline=past))
    leased, _ = await task_store.create_task(make_task(2, deadline=past))
    pending, _ = await task_store.create_task(make_task(3, deadline=past))
    failed, _ = await task_store.create_task(make_task(4, deadline=past))
    on_time, _ = await task_store.create_task(make_task(5, deadline=future))
    no_deadline, _ = await task_store.create_task(make_task(6))
    claimed = await task_store.claim_tasks("v1", limit=2, lease_s=600, now=now)
    assert [t.task_id for t in claimed] == [done.task_id, leased.task_id]
    await task_store.transition(done.task_id, TaskStatus.DONE, claimer="v1")
    await task_store.transition(failed.task_id, TaskStatus.FAILED)

    expired = await task_store.expire_overdue(now=now)
    assert sorted(expired) == sorted([pending.task_id, leased.task_id, done.task_id])
    for task_id in expired:
        task = await task_store.get_task(task_id)
        assert task.status is TaskStatus.EXPIRED
        assert task.error is not None and task.error.code == "deadline"
        assert task.lease_owner is None
        assert task.timeline[-1].status is TaskStatus.EXPIRED and task.timeline[-1].at == now
    assert (await task_store.get_task(failed.task_id)).status is TaskStatus.FAILED
    assert (await task_store.get_task(on_time.task_id)).status is TaskStatus.PENDING
    assert (await task_store.get_task(no_deadline.task_id)).status is TaskStatus.PENDING
    assert await task_store.expire_overdue(now=now) == []
    assert await task_store.expire_overdue(now=future + timedelta(seconds=1), limit=1) == [on_time.task_id]


async def test_bad_retention_arguments_are_refused(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1, deadline=utcnow() - timedelta(seconds=1)))
    with pytest.raises(ValueError, match="timezone"):
        await task_store.purge(status=TaskStatus.FAILED, older_than=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        await task_store.purge(status=TaskStatus.FAILED, older_than=utcnow(), limit=0)
    with pytest.raises(ValueError, match="timezone"):
        await task_store.expire_overdue(now=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        await task_store.expire_overdue(limit=0)
    assert (await task_store.get_task(task.task_id)).status is TaskStatus.PENDING
