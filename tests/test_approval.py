"""The approval rule: stake-weighted quorum, result choice, once per validator, on the real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from subnet_proxy.approval import EvaluationRefused, choose_result, mean_rewards, quorum_share, record_evaluation
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import (
    Evaluation,
    FinalResult,
    MinerResponse,
    MinerReward,
    Task,
    TaskInput,
    TaskKind,
    TaskStatus,
)


def neuron(uid: int, stake: float, permit: bool) -> Neuron:
    return Neuron(uid=uid, hotkey=f"hk{uid}", coldkey="ck", stake=stake, ip="127.0.0.1", port=1,
                  validator_permit=permit, last_update=0)


def snap(*neurons: Neuron) -> MetagraphSnapshot:
    return MetagraphSnapshot(netuid=1, block=1, neurons=tuple(neurons))


def ev(validator: str, stake: float = 0.0, **rewards: float) -> Evaluation:
    return Evaluation(task_id="t", validator_hotkey=validator, stake=stake,
                      rewards=[MinerReward(uid=int(k[1:]), hotkey=f"hk{k[1:]}", reward=v) for k, v in rewards.items()])


def test_quorum_share_by_stake_count_and_local_mode() -> None:
    graph = snap(neuron(0, 100, True), neuron(1, 300, True), neuron(2, 0, False))
    assert quorum_share([ev("hk1")], graph) == pytest.approx(0.75)
    assert quorum_share([ev("hk0"), ev("hk1")], graph) == pytest.approx(1.0)
    assert quorum_share([ev("hk2")], graph) == 0.0  # no permit: does not count
    zero_stake = snap(neuron(0, 0, True), neuron(1, 0, True))
    assert quorum_share([ev("hk0")], zero_stake) == pytest.approx(0.5)
    assert quorum_share([ev("anyone")], None) == 1.0 and quorum_share([], None) == 0.0


def test_mean_rewards_are_stake_weighted() -> None:
    means = mean_rewards([ev("a", 100, u3=1.0), ev("b", 300, u3=0.0, u4=0.5)])
    assert means[(3, "hk3")] == pytest.approx(0.25) and means[(4, "hk4")] == pytest.approx(0.5)


def test_choose_result_skips_invalid_and_keeps_earliest_on_ties() -> None:
    task = Task(task_id="t", kind=TaskKind.SUMMARIZATION, owner="o", input=TaskInput(text="x"))
    responses = [MinerResponse(task_id="t", hotkey="hk3", uid=3, state="invalid", text="bad"),
                 MinerResponse(task_id="t", hotkey="hk4", uid=4, state="ok", text="four"),
                 MinerResponse(task_id="t", hotkey="hk5", uid=5, state="ok", text="five")]
    result = choose_result(task, responses, [ev("a", 1, u3=1.0, u4=0.5, u5=0.5)])
    assert result is not None and result.uid == 4 and result.text == "four" and result.score == 0.5
    assert choose_result(task, responses[:1], [ev("a", 1, u3=1.0)]) is None


async def _done_task(store: SQLiteTaskStore, answers: dict[int, str]) -> Task:
    task = Task(kind=TaskKind.SUMMARIZATION, owner="o", input=TaskInput(text="x"))
    await store.create_task(task)
    await store.claim_tasks("v", limit=1, lease_s=60)
    await store.assign_miners(task.task_id, "v", [(uid, f"hk{uid}") for uid in answers])
    for uid, state in answers.items():
        await store.record_response(MinerResponse(task_id=task.task_id, hotkey=f"hk{uid}", uid=uid,
                                                  state=state, text=f"answer {uid}"))  # type: ignore[arg-type]
    return await store.transition(task.task_id, TaskStatus.DONE, claimer="v")


async def test_record_evaluation_on_the_store(tmp_path: Path) -> None:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    try:
        graph = snap(neuron(0, 100, True), neuron(1, 300, True), neuron(3, 0, False), neuron(4, 0, False))
        task = await _done_task(store, {3: "ok", 4: "ok"})
        first = Evaluation(task_id=task.task_id, validator_hotkey="hk0", stake=1e9,  # claimed stake is ignored
                           rewards=[MinerReward(uid=3, hotkey="hk3", reward=0.9)])
        outcome = await record_evaluation(store, first, graph, quorum=0.5)
        assert outcome.recorded and outcome.status is TaskStatus.DONE and outcome.stake_share == pytest.approx(0.25)
        assert (await store.list_evaluations(task.task_id))[0].stake == 100
        repeat = await record_evaluation(store, first, graph, quorum=0.5)
        assert not repeat.recorded and repeat.evaluations == 1
        second = Evaluation(task_id=task.task_id, validator_hotkey="hk1",
                            rewards=[MinerReward(uid=3, hotkey="hk3", reward=0.1),
                                     MinerReward(uid=4, hotkey="hk4", reward=0.6)])
        outcome = await record_evaluation(store, second, graph, quorum=0.5)
        assert outcome.status is TaskStatus.APPROVED and outcome.result is not None
        # uid 3: (0.9*100 + 0.1*300)/400 = 0.3; uid 4: 0.6 (only B scored it)
        assert outcome.result.uid == 4 and outcome.result.score == pytest.approx(0.6)
        assert (await store.get_task(task.task_id)).status is TaskStatus.APPROVED

        failing = await _done_task(store, {3: "invalid"})
        outcome = await record_evaluation(store, Evaluation(task_id=failing.task_id, validator_hotkey="hk1",
                                                            rewards=[MinerReward(uid=3, hotkey="hk3", reward=0.0)]),
                                          None, quorum=0.5)
        assert outcome.status is TaskStatus.FAILED and outcome.result is None
        assert (await store.get_task(failing.task_id)).error.code == "no_acceptable_response"

        # valid on the wire but worth nothing (noise for speech, unrelated text): never the result
        junk = await _done_task(store, {3: "ok", 4: "ok"})
        outcome = await record_evaluation(store, Evaluation(task_id=junk.task_id, validator_hotkey="hk1",
                                                            rewards=[MinerReward(uid=3, hotkey="hk3", reward=0.0),
                                                                     MinerReward(uid=4, hotkey="hk4", reward=0.0)]),
                                          None, quorum=0.5)
        assert outcome.status is TaskStatus.FAILED and outcome.result is None
        assert (await store.get_final_result(junk.task_id)) is None

        with pytest.raises(EvaluationRefused) as refused:
            await record_evaluation(store, Evaluation(task_id=task.task_id, validator_hotkey="hk9",
                                                      rewards=[MinerReward(uid=7, hotkey="hk7", reward=1.0)]),
                                    graph, quorum=0.5)
        assert refused.value.code == "unknown_miner"
    finally:
        await store.close()


class HeldDecision(WatchedStore):
    """A store view whose caller stops at its decision (a result or a move) until ``go`` is set."""

    def __init__(self, inner: SQLiteTaskStore) -> None:
        super().__init__(inner)
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def _hold(self) -> None:
        self.reached.set()
        await self.go.wait()

    async def set_final_result(self, result: FinalResult) -> None:
        await self._hold()
        await super().set_final_result(result)

    async def transition(self, task_id: str, target: TaskStatus, **kwargs: Any) -> Task:
        await self._hold()
        return await super().transition(task_id, target, **kwargs)


async def test_two_validators_reaching_quorum_at_once_leave_one_result(tmp_path: Path) -> None:
    """B reaches quorum on its own evaluation and is held at its decision; A then evaluates (seeing both,
    it picks another miner) and approves. B's late decision must not replace A's result."""
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    held = HeldDecision(store)
    try:
        graph = snap(neuron(0, 300, True), neuron(1, 100, True), neuron(3, 0, False), neuron(4, 0, False))
        task = await _done_task(store, {3: "ok", 4: "ok"})
        by_b = Evaluation(task_id=task.task_id, validator_hotkey="hk1",
                          rewards=[MinerReward(uid=3, hotkey="hk3", reward=0.1),
                                   MinerReward(uid=4, hotkey="hk4", reward=0.9)])
        by_a = Evaluation(task_id=task.task_id, validator_hotkey="hk0",
                          rewards=[MinerReward(uid=3, hotkey="hk3", reward=0.9),
                                   MinerReward(uid=4, hotkey="hk4", reward=0.1)])
        b = asyncio.create_task(record_evaluation(held, by_b, graph, quorum=0.25))
        await asyncio.wait_for(held.reached.wait(), 10)
        a = await record_evaluation(store, by_a, graph, quorum=0.25)
        assert a.status is TaskStatus.APPROVED and a.result is not None and a.result.uid == 3
        held.go.set()
        b_outcome = await b
        assert b_outcome.status is TaskStatus.APPROVED
        assert await store.get_final_result(task.task_id) == a.result == b_outcome.result
    finally:
        await store.close()
