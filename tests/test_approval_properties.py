"""Property tests of the approval rule: a result needs positive support from a stake quorum, and a
minority can never overturn the majority's rejection, whatever the stakes and rewards."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from subnet_proxy.approval import choose_result, record_evaluation
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.tasks import Evaluation, MinerResponse, MinerReward, Task, TaskInput, TaskKind, TaskStatus

MINERS = (10, 11, 12)
TASK = Task(task_id="t" * 32, kind=TaskKind.TRANSCRIPTION, owner="o", input=TaskInput(audio_blob="b"))
RESPONSES = [MinerResponse(task_id=TASK.task_id, hotkey=f"m{uid}", uid=uid, state="ok", text=f"answer {uid}")
             for uid in MINERS]


def graph(stakes: list[float]) -> MetagraphSnapshot:
    validators = [Neuron(uid=i, hotkey=f"v{i}", coldkey="c", stake=s, ip="", port=0, validator_permit=True,
                         last_update=0) for i, s in enumerate(stakes)]
    miners = [Neuron(uid=uid, hotkey=f"m{uid}", coldkey="c", stake=0.0, ip="", port=0, validator_permit=False,
                     last_update=0) for uid in MINERS]
    return MetagraphSnapshot(netuid=1, block=1, neurons=(*validators, *miners))


def evaluation(validator: int, stake: float, rewards: dict[int, float]) -> Evaluation:
    return Evaluation(task_id=TASK.task_id, validator_hotkey=f"v{validator}", stake=stake,
                      rewards=[MinerReward(uid=uid, hotkey=f"m{uid}", reward=r) for uid, r in rewards.items()])


#: hypothesis settings for these properties: more cases than its default, no example database on disk
#: (a failure prints the ``@reproduce_failure`` blob that replays it), no deadline (CI machines are shared).
PROPERTY = settings(max_examples=400, deadline=None, database=None, print_blob=True)

#: a validator's stake: none, one unit (the attack's 1 of 10,001), small, or whale-sized.
stake = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 10.0), st.floats(0.0, 1e6))
#: a quorum: anything in (0, 1], with the usual settings drawn often.
quorum = st.one_of(st.sampled_from([0.5, 1.0, 0.25, 0.01]), st.floats(0.01, 1.0))
#: an evaluation's rewards: some of the miners (or none), each rejected (0) or rated.
rewards = st.dictionaries(st.sampled_from(MINERS), st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
#: rewards that support every miner they name (at least one).
support = st.dictionaries(st.sampled_from(MINERS), st.floats(0.01, 1.0), min_size=1)


@st.composite
def stakes(draw: st.DrawFn) -> list[float]:
    n = draw(st.integers(1, 8))
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter of cases: everyone holds the same
        return [draw(st.sampled_from([0.0, 1.0]))] * n  # (0: a fresh local chain, counted by heads)
    return draw(st.lists(stake, min_size=n, max_size=n))


@st.composite
def evaluated(draw: st.DrawFn) -> tuple[list[float], list[int], list[Evaluation]]:
    """Stakes, which validators evaluated (in order), and their evaluations."""
    chain = draw(stakes())
    evaluators = draw(st.lists(st.sampled_from(range(len(chain))), min_size=1, unique=True))
    return chain, evaluators, [evaluation(v, chain[v], draw(rewards)) for v in evaluators]


def weights_of(stakes: list[float]) -> list[float]:
    """The oracle: each validator's share, written out again from the rule (stake, else heads)."""
    total = sum(stakes)
    return [s / total for s in stakes] if total > 0 else [1 / len(stakes)] * len(stakes)


@PROPERTY
@given(evaluated(), quorum)
@example(([10_000.0, 1.0], [1], [evaluation(1, 1.0, {10: 1.0})]), 0.5)  # the reported attack, alone
@example(([10_000.0, 1.0], [0, 1], [evaluation(0, 10_000.0, {10: 0.0}), evaluation(1, 1.0, {10: 1.0})]), 0.01)
@example(([0.0, 0.0, 0.0], [0, 1], [evaluation(0, 0.0, {10: 1.0}), evaluation(1, 0.0, {11: 1.0})]), 0.5)
def test_a_chosen_result_always_has_positive_support_from_a_quorum(case, quorum):
    """Random stakes, evaluators, rewards and quorums: whatever is chosen was rated above 0 by
    validators holding at least the quorum and more than the evaluators who did not rate it so."""
    stakes, evaluators, evaluations = case
    result = choose_result(TASK, RESPONSES, evaluations, snapshot=graph(stakes), quorum=quorum)
    if result is None:
        return
    weights = weights_of(stakes)
    backing = sum(weights[v] for v, e in zip(evaluators, evaluations, strict=True)
                  if any(r.uid == result.uid and r.reward > 0 for r in e.rewards))
    against = sum(weights[v] for v in evaluators) - backing
    assert backing >= quorum - 1e-9, (stakes, evaluations, quorum)
    assert backing > against, (stakes, evaluations, quorum)
    assert result.score > 0


@st.composite
def split(draw: st.DrawFn) -> tuple[list[float], list[Evaluation]]:
    """A majority that scored every answer 0 (or left it out) and a minority, however it splits its
    smaller stake, that rates some answers highly; evaluations in any order."""
    majority = draw(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=4))
    minority = draw(st.integers(1, 4))
    per_minor = sum(majority) * draw(st.floats(0.0, 0.4999)) / minority
    rejected = draw(st.lists(st.sampled_from(MINERS), unique=True))
    evaluations = [evaluation(v, s, dict.fromkeys(rejected, 0.0)) for v, s in enumerate(majority)]
    evaluations += [evaluation(len(majority) + i, per_minor, draw(support)) for i in range(minority)]
    return [*majority, *[per_minor] * minority], draw(st.permutations(evaluations))


@PROPERTY
@given(split(), quorum)
@example(([10_000.0, 1.0], [evaluation(1, 1.0, {10: 1.0}), evaluation(0, 10_000.0, {10: 0.0})]), 0.5)
def test_a_minority_never_overturns_the_majoritys_rejection(case, quorum):
    """No result, at any quorum."""
    stakes, evaluations = case
    assert choose_result(TASK, RESPONSES, evaluations, snapshot=graph(stakes), quorum=quorum) is None


@PROPERTY
@given(stakes(), quorum, st.sampled_from(MINERS), support)
@example([5e-324], 0.5, 10, {10: 1.0})  # a weighted mean once underflowed to 0 here
def test_an_answer_every_validator_rates_is_the_result(stakes, quorum, miner, others):
    """The rule refuses nothing it should take: when every permitted validator rates one answer
    above 0, that answer (or one rated as well by all) is the result, whatever the stakes."""
    evaluations = [evaluation(v, s, {**others, miner: 0.5}) for v, s in enumerate(stakes)]
    result = choose_result(TASK, RESPONSES, evaluations, snapshot=graph(stakes), quorum=quorum)
    assert result is not None and result.score > 0
    assert result.uid in {miner, *others}


async def test_a_one_stake_validator_cannot_approve_what_the_majority_rejected(tmp_path: Path):
    """The reported attack: 1 of 10,001 stake posts reward 1.0 for one miner of a task every other
    evaluation scored 0; it must end FAILED, never APPROVED with the junk answer."""
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    try:
        snapshot = graph([10_000.0, 1.0])
        task = Task(kind=TaskKind.TRANSCRIPTION, owner="o", input=TaskInput(audio_blob="b"))
        await store.create_task(task)
        await store.claim_tasks("v0", limit=1, lease_s=60)
        await store.assign_miners(task.task_id, "v0", [(10, "m10")])
        await store.record_response(MinerResponse(task_id=task.task_id, hotkey="m10", uid=10, state="ok", text=""))
        await store.transition(task.task_id, TaskStatus.DONE, claimer="v0")
        minority = evaluation(1, 1.0, {10: 1.0}).model_copy(update={"task_id": task.task_id})
        majority = evaluation(0, 10_000.0, {10: 0.0}).model_copy(update={"task_id": task.task_id})
        first = await record_evaluation(store, minority, snapshot, quorum=0.5)
        assert first.status is TaskStatus.DONE  # 1/10,001 of the stake: no quorum yet
        outcome = await record_evaluation(store, majority, snapshot, quorum=0.5)
        assert outcome.status is TaskStatus.FAILED and outcome.result is None
    finally:
        await store.close()
