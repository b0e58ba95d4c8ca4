"""Conformance: claiming under a lease, renewing, releasing, expiry, and many claimers at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from subnet_proxy.store import LeaseLost, TaskNotFound, TaskStore
from subnet_proxy.tasks import TaskKind, TaskStatus, utcnow
from tests.store.factories import make_task


async def test_claim_takes_the_oldest_pending_tasks_under_a_lease(task_store: TaskStore) -> None:
    for n in (3, 1, 2, 0):
        await task_store.create_task(make_task(n))
    now = utcnow()
    claimed = await task_store.claim_tasks("v1", limit=3, lease_s=30, now=now)
    assert [t.created_at for t in claimed] == sorted(t.created_at for t in claimed)
    assert len(claimed) == 3
    for task in claimed:
        assert task.status is TaskStatus.DISTRIBUTED
        assert task.lease_owner == "v1"
        assert task.lease_expires_at == now + timedelta(seconds=30)
        assert await task_store.get_task(task.task_id) == task
    rest = await task_store.claim_tasks("v2", limit=3, lease_s=30, now=now)
    assert len(rest) == 1 and rest[0].created_at > claimed[-1].created_at
    assert await task_store.claim_tasks("v3", limit=3, lease_s=30, now=now) == []


async def test_claim_filters_by_kind(task_store: TaskStore) -> None:
    await task_store.create_task(make_task(0, kind=TaskKind.TTS))
    asr, _ = await task_store.create_task(make_task(1, kind=TaskKind.TRANSCRIPTION))
    claimed = await task_store.claim_tasks("v1", limit=5, lease_s=30, kinds=[TaskKind.TRANSCRIPTION])
    assert [t.task_id for t in claimed] == [asr.task_id]
    assert await task_store.claim_tasks("v1", limit=5, lease_s=30, kinds=[]) == []


async def test_claim_filters_by_a_kind_the_store_never_heard_of(task_store: TaskStore) -> None:
    """Kinds are names a registry defines above the store: one added later filters like a built-in."""
    await task_store.create_task(make_task(0))
    custom, _ = await task_store.create_task(make_task(1, kind="reverse"))  # type: ignore[arg-type]
    claimed = await task_store.claim_tasks("v1", limit=5, lease_s=30, kinds=["reverse"])
    assert [(t.task_id, t.kind) for t in claimed] == [(custom.task_id, "reverse")]


async def test_an_expired_lease_makes_the_task_claimable_again(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    start = utcnow()
    await task_store.claim_tasks("dead", limit=1, lease_s=10, now=start)
    assert await task_store.claim_tasks("v2", limit=1, lease_s=10, now=start + timedelta(seconds=9)) == []
    later = start + timedelta(seconds=11)
    [again] = await task_store.claim_tasks("v2", limit=1, lease_s=10, now=later)
    assert again.task_id == task.task_id and again.lease_owner == "v2"
    assert [step.status for step in again.timeline] == [
        TaskStatus.PENDING,
        TaskStatus.DISTRIBUTED,
        TaskStatus.PENDING,
        TaskStatus.DISTRIBUTED,
    ]
    assert again.timeline[2].at == later
    # the dead claimer lost the task: it can no longer move it, renew or release it
    with pytest.raises(LeaseLost):
        await task_store.transition(task.task_id, TaskStatus.DONE, claimer="dead")
    with pytest.raises(LeaseLost):
        await task_store.renew_lease(task.task_id, "dead", lease_s=10)
    with pytest.raises(LeaseLost):
        await task_store.release_task(task.task_id, "dead")


async def test_a_claim_takes_lapsed_and_pending_tasks_oldest_first(task_store: TaskStore) -> None:
    """A lapsed lease and a pending task are one queue: the oldest goes first, whichever its status."""
    tasks = [(await task_store.create_task(make_task(n)))[0] for n in range(4)]
    start = utcnow()
    [first] = await task_store.claim_tasks("dead", limit=1, lease_s=10, now=start)
    assert first.task_id == tasks[0].task_id
    later = start + timedelta(seconds=11)
    claimed = await task_store.claim_tasks("v2", limit=2, lease_s=10, now=later)
    assert [t.task_id for t in claimed] == [tasks[0].task_id, tasks[1].task_id]
    rest = await task_store.claim_tasks("v3", limit=5, lease_s=10, now=later)
    assert [t.task_id for t in rest] == [tasks[2].task_id, tasks[3].task_id]


async def test_renew_extends_the_lease_of_its_holder(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    [claimed] = await task_store.claim_tasks("v1", limit=1, lease_s=1)
    renewed = await task_store.renew_lease(task.task_id, "v1", lease_s=600)
    assert renewed.lease_expires_at is not None and claimed.lease_expires_at is not None
    assert renewed.lease_expires_at > claimed.lease_expires_at + timedelta(seconds=500)
    assert renewed.timeline == claimed.timeline
    # the renewed lease holds against a claimer who comes after the first lease would have ended
    assert await task_store.claim_tasks("v2", limit=1, lease_s=1, now=utcnow() + timedelta(seconds=5)) == []
    with pytest.raises(TaskNotFound):
        await task_store.renew_lease("missing", "v1", lease_s=5)


async def test_release_gives_the_task_back(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    await task_store.claim_tasks("v1", limit=1, lease_s=60)
    released = await task_store.release_task(task.task_id, "v1", reason="shutdown")
    assert released.status is TaskStatus.PENDING and released.lease_owner is None
    assert released.timeline[-1].reason == "shutdown"
    with pytest.raises(LeaseLost):
        await task_store.release_task(task.task_id, "v1")
    [again] = await task_store.claim_tasks("v2", limit=1, lease_s=60)
    assert again.task_id == task.task_id


async def test_assign_miners_adds_each_miner_once_and_counts_attempts(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    with pytest.raises(LeaseLost):
        await task_store.assign_miners(task.task_id, "v1", [(1, "hk1")])
    await task_store.claim_tasks("v1", limit=1, lease_s=60)
    await task_store.assign_miners(task.task_id, "v1", [(1, "hk1"), (2, "hk2")])
    updated = await task_store.assign_miners(task.task_id, "v1", [(2, "hk2"), (3, "hk3")])
    assert updated.assigned == [(1, "hk1"), (2, "hk2"), (3, "hk3")]
    assert updated.attempts == 2
    assert await task_store.get_task(task.task_id) == updated
    with pytest.raises(LeaseLost):
        await task_store.assign_miners(task.task_id, "v2", [(4, "hk4")])


async def test_concurrent_claimers_take_each_task_exactly_once(open_store: Callable[[], TaskStore]) -> None:
    """Several store objects (as several validators would) claim 200 tasks in small batches at once."""
    setup = open_store()
    total = 200
    for n in range(total):
        await setup.create_task(make_task(n))
    claimers = [open_store() for _ in range(5)]
    for store in claimers:  # each open (its file, thread, connection) before the race, not during it
        await store.ping()

    async def drain(store: TaskStore, name: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim_tasks(name, limit=7, lease_s=300):
            assert all(t.lease_owner == name for t in batch)
            got += [t.task_id for t in batch]
            # a validator works on its batch before claiming again; without a pause the claimer that
            # holds SQLite's write lock could drain all 200 while the others' busy handlers sleep
            await asyncio.sleep(0.002)
        return got

    results = await asyncio.gather(*(drain(store, f"v{i}") for i, store in enumerate(claimers)))
    taken = Counter(task_id for got in results for task_id in got)
    assert len(taken) == total, "some task was never claimed"
    assert max(taken.values()) == 1, "some task was claimed twice"
    assert sum(1 for got in results if got) >= 2, "the claimers did not actually compete"
    counts = await setup.count_by_status()
    assert counts[TaskStatus.DISTRIBUTED] == total and counts[TaskStatus.PENDING] == 0
    for got, i in zip(results, range(len(claimers)), strict=True):
        for task_id in got[:3]:
            assert (await setup.get_task(task_id)).lease_owner == f"v{i}"


async def test_bad_claim_arguments_are_refused(task_store: TaskStore) -> None:
    await task_store.create_task(make_task(1))
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="limit"):
        await task_store.claim_tasks("v1", limit=0, lease_s=10)
    with pytest.raises(ValueError, match="lease_s"):
        await task_store.claim_tasks("v1", limit=1, lease_s=0)
    with pytest.raises(ValueError, match="timezone"):
        await task_store.claim_tasks("v1", limit=1, lease_s=10, now=naive)
    with pytest.raises(ValueError, match="limit"):
        await task_store.list_tasks(limit=0)
    assert (await task_store.count_by_status())[TaskStatus.PENDING] == 1
    [task] = await task_store.claim_tasks("v1", limit=1, lease_s=10)
    with pytest.raises(ValueError, match="lease_s"):
        await task_store.renew_lease(task.task_id, "v1", lease_s=-1)
