"""Conformance: the usage counters (per key, UTC day and kind) and their quota check, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import pytest

from subnet_proxy.store import TaskStore, Usage, UsageLimits, UsageRow
from tests.closing import opening
from tests.store.conftest import TASK_STORE_BACKENDS
from tests.store.factories import make_task

DAY = date(2026, 3, 1)
NEXT = date(2026, 3, 2)


@pytest.fixture(params=[pytest.param(name, marks=TASK_STORE_BACKENDS[name][1], id=name)
                        for name in ("sqlite", "firestore")])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], TaskStore]]:
    """Store objects on one database (the listener/poll variant of Firestore counts alike: one of it)."""
    opener, _ = TASK_STORE_BACKENDS[request.param]
    async with opener(tmp_path) as make, opening(make) as open_one:
        yield open_one


async def test_counters_add_up_per_key_day_and_kind(stores: Callable[[], TaskStore]) -> None:
    store = stores()
    for owner, kind, used, day in (("a", "transcription", Usage(1, 2.5, 0), DAY),
                                   ("a", "transcription", Usage(1, 1.5, 0), DAY), ("a", "tts", Usage(1, 0.0, 40), DAY),
                                   ("a", "tts", Usage(1, 0.0, 10), NEXT), ("b", "tts", Usage(1, 0.0, 7), DAY),
                                   ("b", "tts", -Usage(1, 0.0, 7), DAY)):  # the last: a replay gives its count back
        assert await store.count_usage(owner, kind, used, day=day) == (True, None)  # no limits: nothing read
    assert await store.usage(since=DAY, owner="a") == [
        UsageRow("a", DAY, "transcription", Usage(2, 4.0, 0)), UsageRow("a", DAY, "tts", Usage(1, 0.0, 40)),
        UsageRow("a", NEXT, "tts", Usage(1, 0.0, 10))]
    everyone = await stores().usage(since=NEXT)  # another store object (process) reads the same counters
    assert everyone == [UsageRow("a", NEXT, "tts", Usage(1, 0.0, 10))]
    assert {r.owner for r in await store.usage(since=DAY)} == {"a", "b"}
    assert await store.count_usage("a", "tts", Usage(1, 0.0, 5), day=DAY, limits=UsageLimits(tasks=4)) == (
        True, Usage(4, 4.0, 45))  # with limits: the day's totals over every kind, this one included


async def test_concurrent_counts_never_go_past_a_quota(stores: Callable[[], TaskStore]) -> None:
    """Twelve submissions at once from three store objects (three server instances) against a
    quota of five tasks: exactly five are counted; a cap on seconds refuses what would pass it."""
    objects = [stores() for _ in range(3)]
    limits = UsageLimits(tasks=5)
    outcomes = await asyncio.gather(*(objects[n % 3].count_usage("q", "tts", Usage(1, 0.0, 3), day=DAY, limits=limits)
                                      for n in range(12)))
    assert sum(counted for counted, _ in outcomes) == 5
    assert all(totals is not None and totals.tasks > 5 for counted, totals in outcomes if not counted)
    assert await objects[0].usage(since=DAY, owner="q") == [UsageRow("q", DAY, "tts", Usage(5, 0.0, 15))]
    seconds = UsageLimits(audio_s=10.0)
    assert (await objects[1].count_usage("q", "transcription", Usage(1, 8.0, 0), day=DAY, limits=seconds))[0]
    counted, totals = await objects[2].count_usage("q", "transcription", Usage(1, 2.5, 0), day=DAY, limits=seconds)
    assert not counted and totals == Usage(7, 10.5, 15) and seconds.exceeded(totals) == ["audio_s"]
    assert (await objects[0].count_usage("q", "transcription", Usage(1, 2.0, 0), day=DAY, limits=seconds))[0]


async def test_find_idempotent_names_the_task_a_key_made(stores: Callable[[], TaskStore]) -> None:
    store = stores()
    task, _ = await store.create_task(make_task(1, idempotency_key="k1"))
    assert await store.find_idempotent(task.owner, "k1") == task
    assert await store.find_idempotent(task.owner, "k2") is None
    assert await store.find_idempotent("someone-else", "k1") is None
