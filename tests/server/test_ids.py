"""Task and request ids: unique, and task ids made by one rule whatever made the task."""

from __future__ import annotations

import os
import random
import re

from subnet_proxy.server.ids import IdSource
from subnet_proxy.tasks import Task, TaskInput, TaskKind, new_task_id
from subnet_proxy.validator.challenges import Corpus, summarization_challenge
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


async def test_client_and_synthetic_task_ids_cannot_be_told_apart(harness, engines) -> None:
    """Miners see task ids: a client task's id and a synthetic challenge's id have the same shape,
    and neither carries a per-process prefix or a counter that would group one source together."""
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
        # 8 random ids all share their first hex digit with odds 16**-7; a per-process prefix shares 16.
        assert _shared_prefix(ids) == 0, ids
        assert not _as_counter(ids), ids
    stored = [(await harness.store.get_task(i)).task_id for i in client_ids]
    assert stored == client_ids


def test_new_task_id_is_32_random_hex() -> None:
    ids = {new_task_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(HEX32.fullmatch(i) for i in ids)
