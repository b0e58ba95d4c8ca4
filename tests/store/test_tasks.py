"""Conformance: creating, reading, listing and moving tasks along the lifecycle, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from subnet_proxy.store import InvalidCursor, LeaseLost, TaskNotFound, TaskStore
from subnet_proxy.tasks import IllegalTransition, TaskInput, TaskKind, TaskStatus
from tests.store.factories import make_task


async def test_create_then_get_returns_the_same_task(task_store: TaskStore) -> None:
    task = make_task(input=TaskInput(text="hello", max_words=5))
    stored, created = await task_store.create_task(task)
    assert created is True
    assert stored == task
    assert await task_store.get_task(task.task_id) == task


async def test_get_unknown_task_raises_task_not_found(task_store: TaskStore) -> None:
    with pytest.raises(TaskNotFound) as info:
        await task_store.get_task("nope")
    assert info.value.task_id == "nope"


async def test_create_is_idempotent_per_owner_and_key(task_store: TaskStore) -> None:
    first, created = await task_store.create_task(make_task(1, idempotency_key="k1"))
    again, created_again = await task_store.create_task(make_task(2, idempotency_key="k1"))
    assert (created, created_again) == (True, False)
    assert again.task_id == first.task_id
    other_owner, created_other = await task_store.create_task(make_task(3, owner="client-b", idempotency_key="k1"))
    assert created_other is True and other_owner.task_id != first.task_id
    no_key, created_no_key = await task_store.create_task(make_task(4))
    assert created_no_key is True
    listed = [t.task_id for t in (await task_store.list_tasks(limit=10)).tasks]
    assert listed == [first.task_id, other_owner.task_id, no_key.task_id]


async def test_concurrent_creates_each_get_their_own_answer(task_store: TaskStore) -> None:
    """Creates arriving together (the embedded store commits them as one group): new tasks are created,
    a repeated Idempotency-Key (already stored, or sent twice in the same burst) and a repeated task id
    return the one stored task, and a refused task raises to its own caller only."""
    existing, _ = await task_store.create_task(make_task(0, idempotency_key="stored"))
    fresh = [make_task(n) for n in range(1, 21)]
    burst = [make_task(21, idempotency_key="burst"), make_task(22, idempotency_key="burst")]
    results = await asyncio.gather(
        *(task_store.create_task(task) for task in fresh),
        task_store.create_task(make_task(23, idempotency_key="stored")),
        task_store.create_task(existing.model_copy(update={"owner": "someone-else"})),
        *(task_store.create_task(task) for task in burst),
        task_store.create_task(make_task(24, status=TaskStatus.DONE)),
        return_exceptions=True,
    )
    created = results[:20]
    assert created == [(task, True) for task in fresh]
    assert results[20] == (existing, False) and results[21] == (existing, False)
    (first, first_created), (second, second_created) = (r for r in results[22:24] if isinstance(r, tuple))
    assert sorted([first_created, second_created]) == [False, True], "a key sent twice makes exactly one task"
    assert first == second and first.task_id in {t.task_id for t in burst}
    assert isinstance(results[24], ValueError)
    for task in fresh:
        assert await task_store.get_task(task.task_id) == task
    assert (await task_store.count_by_status())[TaskStatus.PENDING] == 22
    assert (await task_store.count_by_status())[TaskStatus.DONE] == 0


async def test_create_same_task_id_twice_keeps_the_first(task_store: TaskStore) -> None:
    task = make_task(1)
    await task_store.create_task(task)
    again, created = await task_store.create_task(task.model_copy(update={"owner": "someone-else"}))
    assert created is False and again.owner == "client-a"


async def test_create_refuses_a_task_that_is_not_pending(task_store: TaskStore) -> None:
    with pytest.raises(ValueError, match="pending"):
        await task_store.create_task(make_task(1, status=TaskStatus.DONE))
    assert (await task_store.count_by_status())[TaskStatus.DONE] == 0


async def test_list_pages_through_every_task_oldest_first(task_store: TaskStore) -> None:
    tasks = [make_task(n) for n in range(11)]
    for task in reversed(tasks):  # insertion order must not matter, creation time does
        await task_store.create_task(task)
    seen, cursor, pages = [], None, 0
    while True:
        page = await task_store.list_tasks(limit=4, cursor=cursor)
        pages += 1
        seen += [t.task_id for t in page.tasks]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == [t.task_id for t in tasks]


async def test_list_filters_by_status_and_owner(task_store: TaskStore) -> None:
    for n in range(6):
        await task_store.create_task(make_task(n, owner="a" if n % 2 else "b"))
    await task_store.claim_tasks("v1", limit=2, lease_s=60)
    pending_a = await task_store.list_tasks(status=TaskStatus.PENDING, owner="a")
    assert [t.owner for t in pending_a.tasks] == ["a", "a"]
    assert all(t.status is TaskStatus.PENDING for t in pending_a.tasks)
    distributed = await task_store.list_tasks(status=TaskStatus.DISTRIBUTED)
    assert len(distributed.tasks) == 2 and distributed.next_cursor is None


async def test_list_with_a_cursor_it_did_not_make_raises(task_store: TaskStore) -> None:
    for bad in ("garbage", "", "eyJ4IjogMX0"):
        with pytest.raises(InvalidCursor):
            await task_store.list_tasks(cursor=bad)


async def test_a_clients_own_listing_pages_newest_first_with_filters(task_store: TaskStore) -> None:
    mine = [make_task(n, owner="a", kind=TaskKind.TTS if n % 3 == 0 else TaskKind.SUMMARIZATION)
            for n in range(10)]
    for task in [*mine, *(make_task(n, owner="b") for n in range(10, 14))]:
        await task_store.create_task(task)
    # two created at the same instant: the task id breaks the tie, and paging splits them exactly
    twins = [make_task(20, owner="a"), make_task(20, owner="a")]
    for task in twins:
        await task_store.create_task(task)
    newest = [*sorted((t.task_id for t in twins), reverse=True), *(t.task_id for t in reversed(mine))]
    seen, cursor = [], None
    while True:
        page = await task_store.list_tasks(owner="a", limit=3, cursor=cursor, newest_first=True)
        seen += [t.task_id for t in page.tasks]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == newest
    tts = await task_store.list_tasks(owner="a", kind=TaskKind.TTS, newest_first=True)
    assert [t.task_id for t in tts.tasks] == [t.task_id for t in reversed(mine) if t.kind is TaskKind.TTS]
    await task_store.claim_tasks("v1", limit=1, lease_s=60)  # the oldest: mine[0]
    distributed = await task_store.list_tasks(owner="a", status=TaskStatus.DISTRIBUTED, kind=TaskKind.TTS,
                                              newest_first=True)
    assert [t.task_id for t in distributed.tasks] == [mine[0].task_id]


async def test_a_cursor_is_refused_by_a_listing_it_was_not_made_for(task_store: TaskStore) -> None:
    for n in range(4):
        await task_store.create_task(make_task(n, owner="a"))
    newest = (await task_store.list_tasks(owner="a", limit=1, newest_first=True)).next_cursor
    oldest = (await task_store.list_tasks(owner="a", limit=1)).next_cursor
    assert newest is not None and oldest is not None
    with pytest.raises(InvalidCursor):
        await task_store.list_tasks(owner="b", limit=1, cursor=newest, newest_first=True)  # another owner's
    with pytest.raises(InvalidCursor):
        await task_store.list_tasks(owner="a", limit=1, cursor=newest, kind=TaskKind.TTS, newest_first=True)
    with pytest.raises(InvalidCursor):
        await task_store.list_tasks(owner="a", limit=1, cursor=oldest, newest_first=True)  # the other order
    with pytest.raises(InvalidCursor):
        await task_store.list_tasks(owner="a", limit=1, cursor=newest)


async def test_a_transition_only_if_refuses_a_task_in_another_status(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    await task_store.claim_tasks("v1", limit=1, lease_s=60)
    await task_store.transition(task.task_id, TaskStatus.DONE, claimer="v1")
    with pytest.raises(IllegalTransition):  # DONE -> FAILED is legal, but not what the caller asked for
        await task_store.transition(task.task_id, TaskStatus.FAILED, error=("cancelled", "by the client"),
                                    only_if=frozenset({TaskStatus.PENDING, TaskStatus.DISTRIBUTED}))
    assert (await task_store.get_task(task.task_id)).status is TaskStatus.DONE
    other, _ = await task_store.create_task(make_task(2))
    failed = await task_store.transition(other.task_id, TaskStatus.FAILED, error=("cancelled", "by the client"),
                                         only_if=frozenset({TaskStatus.PENDING}))
    assert failed.status is TaskStatus.FAILED and failed.error is not None and failed.error.code == "cancelled"


async def test_lifecycle_transitions_are_stamped_in_the_timeline(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    [claimed] = await task_store.claim_tasks("v1", limit=1, lease_s=60)
    assert claimed.lease_owner == "v1" and claimed.lease_expires_at is not None
    done = await task_store.transition(task.task_id, TaskStatus.DONE, reason="all answered", claimer="v1")
    assert done.lease_owner is None and done.lease_expires_at is None
    approved = await task_store.transition(task.task_id, TaskStatus.APPROVED)
    stored = await task_store.get_task(task.task_id)
    assert stored == approved
    assert [step.status for step in stored.timeline] == [
        TaskStatus.PENDING,
        TaskStatus.DISTRIBUTED,
        TaskStatus.DONE,
        TaskStatus.APPROVED,
    ]
    assert stored.timeline[2].reason == "all answered"
    stamps = [step.at for step in stored.timeline]
    assert stamps == sorted(stamps)
    assert stored.updated_at == stamps[-1]


async def test_illegal_transition_raises_and_changes_nothing(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    with pytest.raises(IllegalTransition):
        await task_store.transition(task.task_id, TaskStatus.APPROVED)
    await task_store.transition(task.task_id, TaskStatus.FAILED, error=("no_miners", "nobody answered"))
    with pytest.raises(IllegalTransition):
        await task_store.transition(task.task_id, TaskStatus.PENDING)
    stored = await task_store.get_task(task.task_id)
    assert stored.status is TaskStatus.FAILED
    assert stored.error is not None and stored.error.code == "no_miners"
    assert len(stored.timeline) == 2


async def test_transition_checks_its_arguments(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    with pytest.raises(TaskNotFound):
        await task_store.transition("missing", TaskStatus.FAILED)
    with pytest.raises(ValueError, match="claim"):
        await task_store.transition(task.task_id, TaskStatus.DISTRIBUTED)
    await task_store.claim_tasks("v1", limit=1, lease_s=60)
    with pytest.raises(ValueError, match="error"):
        await task_store.transition(task.task_id, TaskStatus.DONE, error=("x", "y"), claimer="v1")
    assert (await task_store.get_task(task.task_id)).status is TaskStatus.DISTRIBUTED


async def test_transition_with_claimer_needs_the_lease(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    with pytest.raises(LeaseLost):  # pending: nobody holds a lease
        await task_store.transition(task.task_id, TaskStatus.FAILED, claimer="v1")
    await task_store.claim_tasks("v1", limit=1, lease_s=60)
    with pytest.raises(LeaseLost) as info:
        await task_store.transition(task.task_id, TaskStatus.DONE, claimer="v2")
    assert info.value.claimer == "v2"
    assert (await task_store.get_task(task.task_id)).status is TaskStatus.DISTRIBUTED


async def test_counts_include_every_status(task_store: TaskStore) -> None:
    assert await task_store.count_by_status() == {status: 0 for status in TaskStatus}
    for n in range(5):
        await task_store.create_task(make_task(n))
    await task_store.claim_tasks("v1", limit=2, lease_s=60)
    pending = (await task_store.list_tasks(status=TaskStatus.PENDING)).tasks
    await task_store.transition(pending[0].task_id, TaskStatus.FAILED)
    counts = await task_store.count_by_status()
    assert counts[TaskStatus.PENDING] == 2
    assert counts[TaskStatus.DISTRIBUTED] == 2
    assert counts[TaskStatus.FAILED] == 1
    assert sum(counts.values()) == 5


async def test_ping_answers(task_store: TaskStore) -> None:
    await task_store.ping()
