"""Conformance: waiting for new work wakes on a create or a release, and times out otherwise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from subnet_proxy.store import TaskStore
from subnet_proxy.tasks import TaskStatus
from tests.store.factories import make_task

#: generous bound for "woke promptly": the embedded poll is 0.05 s in tests, a listener is faster
PROMPT_S = 2.0


async def test_wait_times_out_without_new_work(task_store: TaskStore) -> None:
    await task_store.ping()
    started = time.monotonic()
    assert await task_store.wait_for_task(0.3) is False
    assert time.monotonic() - started >= 0.29


async def test_wait_wakes_on_a_create(task_store: TaskStore) -> None:
    waiter = asyncio.create_task(task_store.wait_for_task(10))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    started = time.monotonic()
    await task_store.create_task(make_task(1))
    assert await asyncio.wait_for(waiter, PROMPT_S) is True
    assert time.monotonic() - started < PROMPT_S


async def test_a_create_before_the_wait_is_not_missed(task_store: TaskStore) -> None:
    """A task created between an empty claim and the wait must still wake the claimer."""
    assert await task_store.claim_tasks("v1", limit=1, lease_s=60) == []
    await task_store.create_task(make_task(1))
    assert await task_store.wait_for_task(PROMPT_S) is True
    assert len(await task_store.claim_tasks("v1", limit=1, lease_s=60)) == 1


async def test_wait_wakes_on_a_release(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    await task_store.claim_tasks("v1", limit=1, lease_s=60)
    while await task_store.wait_for_task(0.2):  # let the create's wake-up pass
        pass
    waiter = asyncio.create_task(task_store.wait_for_task(10))
    await asyncio.sleep(0.1)
    await task_store.release_task(task.task_id, "v1")
    assert await asyncio.wait_for(waiter, PROMPT_S) is True


async def test_wait_wakes_on_a_create_by_another_store_object(open_store: Callable[[], TaskStore]) -> None:
    """Another process (here: another store object on the same database) creates the task."""
    validator, server = open_store(), open_store()
    await validator.ping()
    await server.ping()
    waiter = asyncio.create_task(validator.wait_for_task(10))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await server.create_task(make_task(1))
    assert await asyncio.wait_for(waiter, PROMPT_S) is True
    [claimed] = await validator.claim_tasks("v1", limit=1, lease_s=60)
    assert claimed.status is TaskStatus.DISTRIBUTED
