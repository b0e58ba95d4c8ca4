"""Retention on every registered backend pair: overdue tasks expire, old finished tasks and the blobs
only they used are deleted, shared and fresh ones stay; and the cleanup script does it from the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from subnet_proxy.blobs import BlobStore, LocalBlobStore
from subnet_proxy.config import RetentionSettings
from subnet_proxy.retention import run_retention
from subnet_proxy.store import SQLiteTaskStore, TaskStore
from subnet_proxy.tasks import FinalResult, TaskInput, TaskKind, TaskStatus, utcnow
from tests.store.conftest import BLOB_BACKENDS, TASK_STORE_BACKENDS
from tests.store.factories import make_response, make_task

ROOT = Path(__file__).resolve().parent.parent
POLICY = RetentionSettings(done_days=7, failed_days=3)


@dataclass
class Stores:
    tasks: TaskStore
    blobs: BlobStore


@pytest.fixture(
    params=[
        pytest.param((t, b), marks=t_marks + b_marks, id=f"{t}-{b}")
        for t, (_, t_marks) in TASK_STORE_BACKENDS.items()
        for b, (_, b_marks) in BLOB_BACKENDS.items()
    ]
)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    task_backend, blob_backend = request.param
    async with TASK_STORE_BACKENDS[task_backend][0](tmp_path) as make, BLOB_BACKENDS[blob_backend][0](tmp_path) as bh:
        task_store = make()
        yield Stores(tasks=task_store, blobs=bh.store)
        await task_store.close()
        await bh.store.close()


async def _approved(store: TaskStore, n: int, audio: str, output: str | None = None) -> str:
    task, _ = await store.create_task(make_task(n, kind=TaskKind.TTS, input=TaskInput(audio_blob=audio, text="hi")))
    [claimed] = await store.claim_tasks("v1", limit=1, lease_s=60)
    assert claimed.task_id == task.task_id
    await store.record_response(make_response(task.task_id, "hk1", output_blob=output))
    await store.transition(task.task_id, TaskStatus.DONE, claimer="v1")
    await store.set_final_result(
        FinalResult(task_id=task.task_id, kind=TaskKind.TTS, hotkey="hk1", uid=0, score=1.0, output_blob=output)
    )
    await store.transition(task.task_id, TaskStatus.APPROVED)
    return task.task_id


async def test_retention_deletes_old_rows_and_unshared_blobs(stores: Stores) -> None:
    tasks, blobs = stores.tasks, stores.blobs
    shared, output, failed_input, pending_input = [
        (await blobs.put(f"blob {name}".encode(), content_type="audio/wav")).key
        for name in ("shared", "output", "failed", "pending")
    ]
    old_approved = await _approved(tasks, 1, shared, output)
    failed, _ = await tasks.create_task(make_task(2, input=TaskInput(audio_blob=failed_input)))
    await tasks.transition(failed.task_id, TaskStatus.FAILED, error=("bad_input", "unreadable audio"))
    await asyncio.sleep(0.01)
    mid = utcnow()
    await asyncio.sleep(0.01)
    fresh_approved = await _approved(tasks, 3, shared)
    fresh_failed, _ = await tasks.create_task(make_task(4))
    await tasks.transition(fresh_failed.task_id, TaskStatus.FAILED)
    overdue, _ = await tasks.create_task(make_task(5, deadline=mid + timedelta(days=1)))
    pending, _ = await tasks.create_task(make_task(6, input=TaskInput(audio_blob=pending_input)))

    # a week after ``mid``: approved tasks finished before ``mid`` are due, failed ones of any age here
    now = mid + timedelta(days=7)
    report = await run_retention(tasks, blobs, POLICY, now=now)

    assert report.expired == [overdue.task_id]
    assert report.purged[TaskStatus.APPROVED] == [old_approved]
    assert sorted(report.purged[TaskStatus.FAILED]) == sorted([failed.task_id, fresh_failed.task_id])
    assert report.purged[TaskStatus.EXPIRED] == []  # expired just now: kept for failed_days
    assert report.purged_count == 3
    assert sorted(report.blobs_deleted) == sorted([output, failed_input])
    assert report.blobs_kept == [shared]
    for key in (output, failed_input):
        assert await blobs.stat(key) is None
    assert await blobs.get(shared) == b"blob shared"
    assert await blobs.get(pending_input) == b"blob pending"
    counts = await tasks.count_by_status()
    expected = {status: 0 for status in TaskStatus}
    expected.update({TaskStatus.APPROVED: 1, TaskStatus.EXPIRED: 1, TaskStatus.PENDING: 1})
    assert counts == expected
    assert (await tasks.get_task(fresh_approved)).status is TaskStatus.APPROVED
    assert (await tasks.get_task(pending.task_id)).status is TaskStatus.PENDING

    again = await run_retention(tasks, blobs, POLICY, now=now)
    assert again.expired == [] and again.purged_count == 0 and again.blobs_deleted == []

    # once the fresh ones age too, the shared blob goes with the last task using it
    later = await run_retention(tasks, blobs, POLICY, now=now + timedelta(days=8))
    assert later.purged[TaskStatus.APPROVED] == [fresh_approved]
    assert later.purged[TaskStatus.EXPIRED] == [overdue.task_id]
    assert later.blobs_deleted == [shared]
    assert await blobs.get(pending_input) == b"blob pending"


async def test_retention_works_in_batches(stores: Stores) -> None:
    ids = []
    for n in range(7):
        task, _ = await stores.tasks.create_task(make_task(n))
        await stores.tasks.transition(task.task_id, TaskStatus.FAILED)
        ids.append(task.task_id)
    report = await run_retention(stores.tasks, stores.blobs, POLICY, now=utcnow() + timedelta(days=4), batch=3)
    assert sorted(report.purged[TaskStatus.FAILED]) == sorted(ids)
    assert (await stores.tasks.count_by_status())[TaskStatus.FAILED] == 0


def test_cleanup_script_deletes_from_the_configured_data_dir(tmp_path: Path) -> None:
    async def seed() -> tuple[str, str, str]:
        store, blobs = SQLiteTaskStore(tmp_path / "tasks.db"), LocalBlobStore(tmp_path / "blobs")
        key = (await blobs.put(b"old audio", content_type="audio/wav")).key
        old, _ = await store.create_task(make_task(1, input=TaskInput(audio_blob=key)))
        await store.transition(old.task_id, TaskStatus.FAILED)
        kept, _ = await store.create_task(make_task(2))
        await store.close()
        return old.task_id, kept.task_id, key

    old_id, kept_id, key = asyncio.run(seed())
    # failed_days of ~0.1 s: the failed task is old by the time the script runs
    time.sleep(0.2)
    args = ["--neuron.data_dir", str(tmp_path), "--retention.failed_days", "0.000001", "--json"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cleanup.py"), *args], capture_output=True, text=True, check=True
    )
    printed = json.loads(done.stdout)
    assert printed["purged"]["failed"] == [old_id]
    assert printed["blobs_deleted"] == [key]

    async def check() -> None:
        store = SQLiteTaskStore(tmp_path / "tasks.db")
        assert [t.task_id for t in (await store.list_tasks()).tasks] == [kept_id]
        await store.close()
        assert await LocalBlobStore(tmp_path / "blobs").stat(key) is None

    asyncio.run(check())

    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cleanup.py"), "--retention.done_days", "-1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--retention.done_days" in bad.stderr
