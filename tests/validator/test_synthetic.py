"""Synthetic challenges: their pace, and that they enter the store exactly like client tasks."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from protocol import decode_audio
from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.tasks import Task, TaskInput, TaskKind, TaskStatus
from subnet_proxy.validator.synthetic import SyntheticLoop

SEED = 2  # draws all three kinds within six challenges




@pytest.fixture
async def parts(tmp_path):
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    yield store, blobs
    await store.close()
    await blobs.close()


def client_task() -> Task:
    return Task(kind=TaskKind.SUMMARIZATION, owner="client", input=TaskInput(text="Some text to summarize."))


def loop(parts, engines, *, rate: float, idle_s: float = 3600.0, seed: int = 1, ttl_s: float = 3600.0) -> SyntheticLoop:
    store, blobs = parts
    return SyntheticLoop(store, blobs, engines, owner="synthetic:5Validator", rate=rate, idle_s=idle_s,
                         ttl_s=ttl_s, rng=random.Random(seed))


async def test_client_traffic_earns_challenges_at_the_rate(parts, engines):
    synthetic = loop(parts, engines, rate=0.5)
    assert not synthetic.due
    synthetic.note_task(client_task())
    assert not synthetic.due
    synthetic.note_task(client_task().model_copy(update={"synthetic": True}))  # challenges earn nothing
    assert not synthetic.due
    synthetic.note_task(client_task())
    assert synthetic.due


async def test_an_idle_validator_still_issues_one_per_idle_period(parts, engines):
    synthetic = loop(parts, engines, rate=0.1, idle_s=0.01)
    await asyncio.sleep(0.02)
    assert synthetic.due
    assert not loop(parts, engines, rate=0.0, idle_s=0.01).due  # rate 0: never


@pytest.mark.slow
async def test_challenges_of_every_kind_are_stored_like_client_tasks(parts, engines):
    store, blobs = parts
    synthetic = loop(parts, engines, rate=1.0, seed=SEED)
    kinds: Counter[TaskKind] = Counter()
    for _ in range(6):
        task = await synthetic.issue()
        stored = await store.get_task(task.task_id)
        kinds[stored.kind] += 1
        assert stored.status is TaskStatus.PENDING and stored.synthetic
        assert stored.owner == "synthetic:5Validator"
        if stored.kind is TaskKind.TRANSCRIPTION:
            audio = decode_audio(await blobs.get(stored.input.audio_blob or ""))
            assert audio.duration_s > 0.5 and stored.ground_truth
        elif stored.kind is TaskKind.TTS:
            assert stored.ground_truth == stored.input.text
        else:
            assert stored.input.text and stored.input.max_words
    assert set(kinds) == set(TaskKind)
    claimed = await store.claim_tasks("validator", limit=10, lease_s=5)
    assert len(claimed) == 6  # the same queue, the same claim as client tasks


async def test_a_challenge_has_a_deadline_so_one_that_never_finishes_is_expired(parts, engines):
    """Without a deadline a challenge nobody can finish (no serving miner, no quorum) stays for ever:
    retention expires only tasks that have one."""
    store, _ = parts
    synthetic = loop(parts, engines, rate=1.0, seed=SEED, ttl_s=0.2)
    task = await synthetic.issue()
    stored = await store.get_task(task.task_id)
    assert stored.deadline is not None and stored.deadline > stored.created_at
    await asyncio.sleep(0.3)
    assert await store.expire_overdue() == [task.task_id]
    expired = await store.get_task(task.task_id)
    assert expired.status is TaskStatus.EXPIRED and expired.error is not None and expired.error.code == "deadline"
