"""Many instances, one queue: separate processes, each with its own Firestore client, on one emulator.

What this proves beyond the in-process conformance suite: the claim's atomicity holds across
processes and gRPC channels (no shared Python state can hide a race), a claimer that dies mid-lease
loses its tasks back to the queue, and the snapshot listener wakes a waiter when another process
creates a task.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from subnet_proxy.store.firestore import FirestoreTaskStore
from subnet_proxy.tasks import TaskStatus, utcnow
from tests.store.emulators import clear_firestore, emulator_host, firestore_settings, unique_name
from tests.store.factories import make_task

pytestmark = [pytest.mark.firestore, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TASKS = 300


@pytest.fixture
async def project() -> AsyncIterator[str]:
    emulator_host("FIRESTORE_EMULATOR_HOST")
    name = unique_name("multiprocess")
    yield name
    await asyncio.to_thread(clear_firestore, name)


async def spawn(project: str, name: str, mode: str, lease_s: float) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.store.firestore_claimer", project, name, mode, str(lease_s),
        cwd=ROOT, env=os.environ.copy(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"ready", f"claimer {name} did not start: {line!r}"
    return proc


def go(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")


async def report(proc: asyncio.subprocess.Process) -> list[str]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    ids: list[str] = json.loads(line)
    return ids


async def seed(store: FirestoreTaskStore, count: int) -> set[str]:
    created = await asyncio.gather(*(store.create_task(make_task(n)) for n in range(count)))
    return {task.task_id for task, _ in created}


async def test_two_processes_claim_each_task_exactly_once(project: str) -> None:
    store = FirestoreTaskStore(firestore_settings(project))
    try:
        ids = await seed(store, TASKS)
        procs = [await spawn(project, f"proxy-{i}", "drain", 300) for i in range(2)]
        for proc in procs:
            go(proc)
        results = [await report(proc) for proc in procs]
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 30) == 0

        taken = Counter(task_id for got in results for task_id in got)
        assert max(taken.values()) == 1, f"{sum(n > 1 for n in taken.values())} tasks claimed twice"
        assert set(taken) == ids, f"lost tasks: {len(ids - set(taken))}"
        assert all(results), f"one process claimed nothing: {[len(r) for r in results]}"
        counts = await store.count_by_status()
        assert counts[TaskStatus.DISTRIBUTED] == TASKS and counts[TaskStatus.PENDING] == 0
        for i, got in enumerate(results):
            for task_id in got[:5]:
                assert (await store.get_task(task_id)).lease_owner == f"proxy-{i}"
    finally:
        await store.close()


async def test_a_killed_claimer_loses_its_tasks_back_to_the_queue(project: str) -> None:
    store = FirestoreTaskStore(firestore_settings(project))
    try:
        ids = await seed(store, 20)
        proc = await spawn(project, "doomed", "hold", 30)
        go(proc)
        held = await report(proc)
        assert set(held) == ids
        proc.kill()
        await proc.wait()

        # The lease still runs: nobody else may take the tasks.
        assert await store.claim_tasks("survivor", limit=50, lease_s=30) == []
        # Once it has run out (judged at a later "now"), every task comes back, exactly once.
        later = utcnow() + timedelta(seconds=31)
        back = await store.claim_tasks("survivor", limit=50, lease_s=30, now=later)
        assert {t.task_id for t in back} == ids
        task = await store.get_task(held[0])
        assert task.lease_owner == "survivor"
        assert [step.status for step in task.timeline] == [
            TaskStatus.PENDING, TaskStatus.DISTRIBUTED, TaskStatus.PENDING, TaskStatus.DISTRIBUTED,
        ]
        assert task.timeline[2].reason is not None and "doomed" in task.timeline[2].reason
        assert await store.claim_tasks("third", limit=50, lease_s=30, now=later) == []
    finally:
        await store.close()


@pytest.mark.parametrize("listen", [True, False], ids=["listener", "poll"])
async def test_a_create_in_another_process_wakes_a_waiter(project: str, listen: bool) -> None:
    store = FirestoreTaskStore(firestore_settings(project, firestore_listen=listen, poll_s=0.2))
    try:
        assert store.notification_mode == ("listener" if listen else "poll")
        assert await store.wait_for_task(0.5) is False  # empty queue: times out (and the listener is up)
        waiter = asyncio.create_task(store.wait_for_task(30))
        proc = await spawn(project, "server", "create", 30)
        assert not waiter.done()
        go(proc)
        created = await report(proc)
        assert await asyncio.wait_for(waiter, 5) is True
        assert [t.task_id for t in await store.claim_tasks("v", limit=5, lease_s=30)] == created
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        await store.close()
