"""Conformance: miner responses (once per miner, one first valid answer), evaluations, final results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from subnet_proxy.store import TaskNotFound, TaskStore
from subnet_proxy.tasks import Evaluation, FinalResult, MinerReward, TaskKind
from tests.store.factories import make_response, make_task


async def test_responses_are_recorded_once_per_miner(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    stored, created = await task_store.record_response(make_response(task.task_id, "hk1", uid=1, latency_s=0.5))
    assert created is True and stored.is_first is True and stored.latency_s == 0.5
    again, created_again = await task_store.record_response(
        make_response(task.task_id, "hk1", uid=1, text="a different answer")
    )
    assert created_again is False
    assert again == stored
    assert await task_store.list_responses(task.task_id) == [stored]


async def test_only_the_first_valid_response_is_first(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    assert await task_store.first_response(task.task_id) is None
    bad, _ = await task_store.record_response(make_response(task.task_id, "hk0", state="invalid"))
    timeout, _ = await task_store.record_response(make_response(task.task_id, "hk1", state="timeout"))
    assert not bad.is_first and not timeout.is_first
    assert await task_store.first_response(task.task_id) is None
    good, _ = await task_store.record_response(make_response(task.task_id, "hk2"))
    later, _ = await task_store.record_response(make_response(task.task_id, "hk3"))
    assert good.is_first and not later.is_first
    assert await task_store.first_response(task.task_id) == good
    assert [r.hotkey for r in await task_store.list_responses(task.task_id)] == ["hk0", "hk1", "hk2", "hk3"]


async def test_the_caller_cannot_mark_a_response_first(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    await task_store.record_response(make_response(task.task_id, "hk1"))
    forged, _ = await task_store.record_response(make_response(task.task_id, "hk2", is_first=True))
    assert forged.is_first is False
    invalid, _ = await task_store.record_response(make_response(task.task_id, "hk3", state="error", is_first=True))
    assert invalid.is_first is False


async def test_concurrent_valid_responses_make_exactly_one_first(open_store: Callable[[], TaskStore]) -> None:
    stores = [open_store() for _ in range(4)]
    task, _ = await stores[0].create_task(make_task(1))
    responses = [make_response(task.task_id, f"hk{i}", uid=i) for i in range(16)]
    results = await asyncio.gather(
        *(stores[i % len(stores)].record_response(r) for i, r in enumerate(responses))
    )
    assert all(created for _, created in results)
    firsts = [stored for stored, _ in results if stored.is_first]
    assert len(firsts) == 1
    listed = await stores[0].list_responses(task.task_id)
    assert len(listed) == 16
    assert [r.hotkey for r in listed if r.is_first] == [firsts[0].hotkey]
    assert await stores[1].first_response(task.task_id) == firsts[0]


async def test_response_to_an_unknown_task_raises(task_store: TaskStore) -> None:
    with pytest.raises(TaskNotFound):
        await task_store.record_response(make_response("missing", "hk1"))
    assert await task_store.list_responses("missing") == []


def _evaluation(task_id: str, validator: str, reward: float) -> Evaluation:
    return Evaluation(
        task_id=task_id,
        validator_hotkey=validator,
        stake=10.0,
        rewards=[MinerReward(uid=1, hotkey="hk1", reward=reward, breakdown={"wer": reward})],
    )


async def test_evaluations_are_recorded_once_per_validator(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    first = _evaluation(task.task_id, "val-a", 0.8)
    assert await task_store.record_evaluation(first) is True
    assert await task_store.record_evaluation(_evaluation(task.task_id, "val-a", 0.1)) is False
    second = _evaluation(task.task_id, "val-b", 0.6)
    assert await task_store.record_evaluation(second) is True
    assert await task_store.list_evaluations(task.task_id) == [first, second]
    with pytest.raises(TaskNotFound):
        await task_store.record_evaluation(_evaluation("missing", "val-a", 0.5))


async def test_final_result_is_set_replaced_and_read(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    assert await task_store.get_final_result(task.task_id) is None
    result = FinalResult(task_id=task.task_id, kind=TaskKind.SUMMARIZATION, hotkey="hk1", uid=1, score=0.7, text="s")
    await task_store.set_final_result(result)
    assert await task_store.get_final_result(task.task_id) == result
    better = result.model_copy(update={"hotkey": "hk2", "uid": 2, "score": 0.9, "text": "better"})
    await task_store.set_final_result(better)
    assert await task_store.get_final_result(task.task_id) == better
    with pytest.raises(TaskNotFound):
        await task_store.set_final_result(result.model_copy(update={"task_id": "missing"}))
