"""Conformance: miner responses (once per miner, one first valid answer), evaluations, final results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from subnet_proxy.store import TaskNotAccepting, TaskNotFound, TaskStore
from subnet_proxy.tasks import Evaluation, FinalResult, IllegalTransition, MinerReward, TaskKind, TaskStatus
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


OUT_WITH_MINERS = frozenset({TaskStatus.DISTRIBUTED})


async def test_a_conditional_answer_is_refused_unless_the_task_accepts_it(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    with pytest.raises(TaskNotAccepting) as refused:
        await task_store.record_response(make_response(task.task_id, "hk1"), only_if=OUT_WITH_MINERS)
    assert refused.value.task_id == task.task_id and refused.value.status is TaskStatus.PENDING
    assert await task_store.list_responses(task.task_id) == []

    await task_store.claim_tasks("v", limit=1, lease_s=60)
    stored, created = await task_store.record_response(make_response(task.task_id, "hk1"), only_if=OUT_WITH_MINERS)
    assert created and stored.is_first
    await task_store.transition(task.task_id, TaskStatus.FAILED, claimer="v", error=("x", "failed meanwhile"))
    for hotkey in ("hk2", "hk1"):  # a new answer, and a repeat: the status is checked first
        with pytest.raises(TaskNotAccepting) as refused:
            await task_store.record_response(make_response(task.task_id, hotkey), only_if=OUT_WITH_MINERS)
        assert refused.value.status is TaskStatus.FAILED
    assert await task_store.list_responses(task.task_id) == [stored]
    with pytest.raises(TaskNotFound):
        await task_store.record_response(make_response("missing", "hk1"), only_if=OUT_WITH_MINERS)


async def test_answers_racing_the_end_of_a_task_land_before_it_or_not_at_all(
    open_store: Callable[[], TaskStore],
) -> None:
    """Answers written concurrently with the move to DONE, from several store objects: every one is
    either stored (and the task was still distributed) or refused with the status that refused it."""
    stores = [open_store() for _ in range(3)]
    task, _ = await stores[0].create_task(make_task(1))
    await stores[0].claim_tasks("v", limit=1, lease_s=60)
    answers = [
        stores[i % len(stores)].record_response(make_response(task.task_id, f"hk{i}", uid=i), only_if=OUT_WITH_MINERS)
        for i in range(8)
    ]
    done = stores[1].transition(task.task_id, TaskStatus.DONE, claimer="v")
    *outcomes, finished = await asyncio.gather(*answers, done, return_exceptions=True)
    assert getattr(finished, "status", None) is TaskStatus.DONE, finished
    stored = {o[0].hotkey for o in outcomes if isinstance(o, tuple)}
    refused = [o for o in outcomes if isinstance(o, TaskNotAccepting)]
    assert len(stored) + len(refused) == 8, outcomes
    assert all(r.status is TaskStatus.DONE for r in refused)
    assert {r.hotkey for r in await stores[2].list_responses(task.task_id)} == stored


async def test_a_miner_racing_itself_never_leaves_the_first_mark_on_an_invalid_answer(
    open_store: Callable[[], TaskStore],
) -> None:
    """The same hotkey sends a valid and an invalid answer at once: whichever is stored, the first
    answer is either absent (the invalid one won) or that stored valid answer, never a mismatch."""
    stores = [open_store() for _ in range(2)]
    for n in range(6):
        task, _ = await stores[0].create_task(make_task(n))
        valid = make_response(task.task_id, "hk1", uid=1)
        invalid = make_response(task.task_id, "hk1", uid=1, state="invalid")
        pair = (invalid, valid) if n % 2 else (valid, invalid)
        await asyncio.gather(*(store.record_response(r) for store, r in zip(stores, pair, strict=True)))
        [kept] = await stores[0].list_responses(task.task_id)
        first = await stores[1].first_response(task.task_id)
        assert first == (kept if kept.valid else None), (kept, first)
        assert kept.is_first is kept.valid


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


async def test_an_approval_writes_its_result_once(task_store: TaskStore) -> None:
    """The result goes with the move to APPROVED: a second approval (a validator that lost the quorum
    race) is refused and writes nothing; a result goes with no other move, nor to another task."""
    task, _ = await task_store.create_task(make_task(1))
    await task_store.claim_tasks("v", limit=1, lease_s=60)
    await task_store.transition(task.task_id, TaskStatus.DONE, claimer="v")
    winner = FinalResult(task_id=task.task_id, kind=TaskKind.SUMMARIZATION, hotkey="hk1", uid=1, score=0.7, text="a")
    loser = winner.model_copy(update={"hotkey": "hk2", "uid": 2, "text": "b"})
    with pytest.raises(ValueError):
        await task_store.transition(task.task_id, TaskStatus.FAILED, result=winner)
    with pytest.raises(ValueError):
        await task_store.transition("other", TaskStatus.APPROVED, result=winner)
    assert await task_store.get_final_result(task.task_id) is None
    approved = await task_store.transition(task.task_id, TaskStatus.APPROVED, result=winner)
    assert approved.status is TaskStatus.APPROVED
    with pytest.raises(IllegalTransition):
        await task_store.transition(task.task_id, TaskStatus.APPROVED, result=loser)
    assert await task_store.get_final_result(task.task_id) == winner
