"""Task and request ids: unique, and task ids made by one rule whatever made the task."""

from __future__ import annotations

import os
import random
import re

from subnet_proxy import tasks
from subnet_proxy.kinds.challenges import Corpus
from subnet_proxy.kinds.summarization import summarization_challenge
from subnet_proxy.server.ids import IdSource
from subnet_proxy.tasks import Task, TaskIdSource, TaskInput, TaskKind, new_task_id
from tests.server.conftest import auth

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_request_ids_are_unique_and_uuid_shaped() -> None:
    a, b = IdSource(), IdSource()
    ids = [a.next() for _ in range(10_000)] + [b.next() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(HEX32.fullmatch(i) for i in ids)


def _shared_prefix(ids: list[str]) -> int:
    return len(os.path.commonprefix(ids))


def _as_counter(ids: list[str]) -> bool:
    """True when the ids' trailing 64 bits step by one (a prefix-plus-counter scheme)."""
    tails = [int(i[16:], 16) for i in ids]
    return all(b - a == 1 for a, b in zip(tails, tails[1:], strict=False))


async def test_client_and_synthetic_task_ids_cannot_be_told_apart(harness, engines, monkeypatch) -> None:
    """Miners see task ids: a client task's id and a synthetic challenge's id made in the same
    1/16 s window share its prefix and are random after it (no counter, nothing per source)."""
    monkeypatch.setattr(tasks.new_task_id, "_clock", lambda: 1234.5)  # one window for the whole test
    client_ids = []
    for n in range(8):
        resp = await harness.client.post("/api/v1/summarization", json={"text": f"Text number {n} to summarize."},
                                         headers=auth())
        assert resp.status == 202, await resp.text()
        client_ids.append((await resp.json())["task_id"])
    rng = random.Random(5)
    synthetic_ids = [(await summarization_challenge(engines, Corpus.load(), rng, owner="synthetic:v")).task.task_id
                     for _ in range(8)]
    plain_ids = [Task(kind=TaskKind.TTS, owner="o", input=TaskInput(text="hi")).task_id for _ in range(8)]

    for ids in (client_ids, synthetic_ids, plain_ids, client_ids[:4] + synthetic_ids[:4]):
        assert all(HEX32.fullmatch(i) for i in ids)
        assert len(set(ids)) == len(ids)
        assert {i[:8] for i in ids} == {client_ids[0][:8]}, ids
        # past the window prefix, 8 random ids all share a hex digit with odds 16**-7
        assert _shared_prefix([i[8:] for i in ids]) == 0, ids
        assert not _as_counter(ids), ids
    stored = [(await harness.store.get_task(i)).task_id for i in client_ids]
    assert stored == client_ids


def test_new_task_id_is_32_random_hex() -> None:
    ids = {new_task_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(HEX32.fullmatch(i) for i in ids)


def test_task_id_prefix_is_random_per_window() -> None:
    """Ids of one 1/16 s window share a random prefix (they sort together in an index); the next
    window draws a new one, neither rising with time nor repeating."""
    now = [100.0]
    source = TaskIdSource(clock=lambda: now[0])
    first = [source() for _ in range(50)]
    assert len({i[:8] for i in first}) == 1 and len({i[8:] for i in first}) == 50
    prefixes = [first[0][:8]]
    for _ in range(200):
        now[0] += 1 / TaskIdSource.WINDOWS_PER_S
        prefixes.append(source()[:8])
    assert len(set(prefixes)) == len(prefixes)  # 201 draws of 32 bits: a repeat has odds of 5e-6
    assert prefixes != sorted(prefixes)  # not a clock: rising 201 times in a row has odds 1/201!
