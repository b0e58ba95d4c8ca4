"""Approval: when validator evaluations add up to a stake-weighted quorum, a task's final result is set.

Shared by the side-server (``POST /api/v1/validator/evaluation``) and the validator loop (its own
evaluation), so the rule exists once. The arithmetic is pure (``quorum_share``, ``choose_result``);
``record_evaluation`` is the thin I/O wrapper around the TaskStore.

Rules:
- only a DONE (or already APPROVED) task can be evaluated; each validator once per task;
- a reward may name only a miner that answered the task;
- the stake counted is the metagraph's, never the one the caller claims;
- the share is evaluating permitted stake / all permitted stake; with no stake on chain (fresh local
  chains) it is the share of permitted validators by count; with no metagraph (local mode) any one
  evaluation is a quorum;
- an answer can be the result only with positive support from a quorum: the validators that gave
  it a reward above 0 must hold at least ``quorum`` of the weight (the same weights as the quorum:
  permitted stake, heads when no stake, the evaluations themselves without a metagraph), and more
  than the validators that evaluated and did not support it (a reward of 0, or leaving it out:
  absent counts as no support). So a minority can never overturn the majority's rejection, at any
  quorum: 1 of 10,001 stake rating junk 1.0 where the rest scored it 0 approves nothing;
- the validators counted are those that take part (``members``: this validator, the peers that
  published a side-server URL on chain, and every validator that evaluated the task); a permitted
  validator that takes no part neither adds to nor withholds a quorum. ``members=None`` counts every
  permitted validator (validators sharing one store);
- a task DONE for ``--proxy.approval_grace_s`` without its quorum is decided on the evaluations it
  has (``settle_after_grace``: the quorum and support rules over the evaluators alone), with the
  reason in its timeline: a peer that is down, or that never evaluates, delays approval by the grace
  at most, and a validator evaluating alone approves at once;
- among the supported answers the result is the valid response with the highest stake-weighted
  mean reward (ties: the earliest), stored with the move to APPROVED in one store step: when two
  validators reach the quorum at once, the result of the one whose move succeeds stands. No
  supported answer: the task FAILS with ``no_acceptable_response`` (decided when the quorum of
  evaluations is in, as before: a split quorum fails rather than approving what most did not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import (
    Evaluation,
    FinalResult,
    IllegalTransition,
    MinerResponse,
    Task,
    TaskStatus,
)


class EvaluationRefused(ValueError):
    """The evaluation cannot be accepted; ``code`` says why (``task_not_ready``, ``unknown_miner``:
    a reward for a miner that did not answer the task, or a reward above 0 for an answer that was not
    valid, or two rewards for one miner)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    recorded: bool
    """False when this validator had already evaluated the task (the first evaluation stands)."""
    status: TaskStatus
    """The task's status after this evaluation."""
    stake_share: float
    evaluations: int
    result: FinalResult | None


#: the quorum when none is given (``--proxy.quorum``'s default).
DEFAULT_QUORUM = 0.5


def validator_weights(evaluations: Sequence[Evaluation],
                      snapshot: MetagraphSnapshot | None) -> dict[str, float]:
    """Each evaluating validator's share (0..1) of all validator weight: permitted stake from the
    metagraph, by count when no stake is on chain; without a metagraph (or permits) the evaluations
    share it among themselves (by their stake, else equally). Not counted: absent from the dict."""
    validators = {n.hotkey: n for n in snapshot.neurons if n.validator_permit} if snapshot else {}
    if not validators:
        by_stake = any(e.stake > 0 for e in evaluations)
        own = {e.validator_hotkey: max(e.stake, 0.0) if by_stake else 1.0 for e in evaluations}
        whole = sum(own.values())
        return {h: w / whole for h, w in own.items()} if whole > 0 else {}
    evaluated = {e.validator_hotkey for e in evaluations} & validators.keys()
    total = sum(max(n.stake, 0.0) for n in validators.values())
    if total <= 0:
        return {h: 1 / len(validators) for h in evaluated}
    return {h: max(validators[h].stake, 0.0) / total for h in evaluated}


def taking_part(snapshot: MetagraphSnapshot | None, members: frozenset[str] | None,
                evaluations: Sequence[Evaluation]) -> MetagraphSnapshot | None:
    """The snapshot the quorum is counted on: validators outside ``members`` and the evaluators lose
    their permit (their stake no longer counts); ``members=None``: the snapshot as it is."""
    if snapshot is None or members is None:
        return snapshot
    counted = members | {e.validator_hotkey for e in evaluations}
    neurons = tuple(n if not n.validator_permit or n.hotkey in counted else replace(n, validator_permit=False)
                    for n in snapshot.neurons)
    return MetagraphSnapshot(netuid=snapshot.netuid, block=snapshot.block, neurons=neurons)


def quorum_share(evaluations: Sequence[Evaluation], snapshot: MetagraphSnapshot | None) -> float:
    """The share (0..1) of validator weight that has evaluated, by the rules in the module doc."""
    if snapshot is None or not any(n.validator_permit for n in snapshot.neurons):
        return 1.0 if evaluations else 0.0
    return min(sum(validator_weights(evaluations, snapshot).values()), 1.0)


def supported(evaluations: Sequence[Evaluation], snapshot: MetagraphSnapshot | None,
              quorum: float) -> set[tuple[int, str]]:
    """The (uid, hotkey) answers with positive support from a quorum that outweighs the counted
    evaluations that did not support them (see the module doc)."""
    weights = validator_weights(evaluations, snapshot)
    counted = sum(weights.values())
    support: dict[tuple[int, str], float] = {}
    for ev in evaluations:
        weight = weights.get(ev.validator_hotkey, 0.0)
        for r in {(r.uid, r.hotkey) for r in ev.rewards if r.reward > 0}:
            support[r] = support.get(r, 0.0) + weight
    tolerance = 1e-9  # shares are sums of float fractions
    return {key for key, share in support.items()
            if share >= quorum - tolerance and share > counted - share + tolerance}


def mean_rewards(evaluations: Sequence[Evaluation]) -> dict[tuple[int, str], float]:
    """Stake-weighted mean reward per (uid, hotkey); equal weights when every stake is zero. Stakes are
    taken relative to the largest, so tiny ones cannot underflow a weighted reward to 0 (found by the
    property tests: a sole stake of 5e-324 made every mean 0)."""
    top = max((e.stake for e in evaluations), default=0.0)
    sums: dict[tuple[int, str], float] = {}
    weights: dict[tuple[int, str], float] = {}
    for ev in evaluations:
        w = max(ev.stake, 0.0) / top if top > 0 else 1.0
        for r in ev.rewards:
            key = (r.uid, r.hotkey)
            sums[key] = sums.get(key, 0.0) + w * r.reward
            weights[key] = weights.get(key, 0.0) + w
    return {k: sums[k] / weights[k] for k in sums if weights[k] > 0}


def choose_result(
    task: Task, responses: Sequence[MinerResponse], evaluations: Sequence[Evaluation], *,
    snapshot: MetagraphSnapshot | None = None, quorum: float = DEFAULT_QUORUM,
) -> FinalResult | None:
    """The final result: the best-rewarded valid response among those a quorum supports, or None.

    A valid answer that every evaluation scored 0 (noise for speech, an unrelated text: rejected by
    the reward functions) is never handed to the client as the result, nor one only a minority
    rated (``supported``)."""
    means = mean_rewards(evaluations)
    backed = supported(evaluations, snapshot, quorum)
    best: tuple[float, MinerResponse] | None = None
    for resp in responses:  # received order, so a tie keeps the earliest
        if not resp.valid or (resp.uid, resp.hotkey) not in backed:
            continue
        score = means.get((resp.uid, resp.hotkey), 0.0)
        if score <= 0.0:
            continue
        if best is None or score > best[0]:
            best = (score, resp)
    if best is None:
        return None
    score, resp = best
    return FinalResult(
        task_id=task.task_id, kind=task.kind, hotkey=resp.hotkey, uid=resp.uid, score=score,
        text=resp.text, segments=resp.segments, output_blob=resp.output_blob,
        output_format=resp.output_format, output_sample_rate=resp.output_sample_rate,
    )


def check_rewards(evaluation: Evaluation, responses: Sequence[MinerResponse]) -> None:
    """EvaluationRefused unless every reward names a miner that answered, once, and only a valid
    answer earns more than 0 (the reward functions give 0 to the rest: more is a forged evaluation)."""
    by_miner = {(r.uid, r.hotkey): r for r in responses}
    named = [(r.uid, r.hotkey) for r in evaluation.rewards]
    strangers = [key for key in named if key not in by_miner]
    if strangers:
        raise EvaluationRefused("unknown_miner", f"rewards name miners that did not answer this task: {strangers}")
    if len(set(named)) != len(named):
        raise EvaluationRefused("unknown_miner", "a miner is named by more than one reward")
    unanswered = [key for key, r in zip(named, evaluation.rewards, strict=True)
                  if r.reward > 0 and not by_miner[key].valid]
    if unanswered:
        raise EvaluationRefused("unknown_miner", f"rewards above 0 for miners that gave no valid answer: {unanswered}")


async def record_evaluation(
    store: TaskStore,
    evaluation: Evaluation,
    snapshot: MetagraphSnapshot | None,
    quorum: float,
    *,
    members: frozenset[str] | None = None,
) -> ApprovalOutcome:
    """Record one validator's evaluation and approve the task once the quorum of the validators
    taking part (``members``, see the module doc) is reached.

    Raises TaskNotFound (unknown task) and EvaluationRefused (task not DONE/APPROVED, or rewards
    ``check_rewards`` refuses).
    """
    task = await store.get_task(evaluation.task_id)
    if task.status not in (TaskStatus.DONE, TaskStatus.APPROVED):
        raise EvaluationRefused("task_not_ready", f"task is {task.status.value}; only done tasks can be evaluated")
    responses = await store.list_responses(task.task_id)
    check_rewards(evaluation, responses)
    if snapshot is not None:
        neuron = snapshot.by_hotkey(evaluation.validator_hotkey)
        evaluation = evaluation.model_copy(update={"stake": neuron.stake if neuron else 0.0})
    recorded = await store.record_evaluation(evaluation)
    evaluations = await store.list_evaluations(task.task_id)
    counted = taking_part(snapshot, members, evaluations)
    share = quorum_share(evaluations, counted)
    result: FinalResult | None = await store.get_final_result(task.task_id)
    if task.status is TaskStatus.DONE and share >= quorum:
        task, result = await _decide(store, task, choose_result(task, responses, evaluations,
                                                                snapshot=counted, quorum=quorum))
    return ApprovalOutcome(recorded=recorded, status=task.status, stake_share=share,
                           evaluations=len(evaluations), result=result)


def done_since(task: Task) -> datetime | None:
    """When the task last became DONE (its timeline), None when it never did."""
    return next((step.at for step in reversed(task.timeline) if step.status is TaskStatus.DONE), None)


async def settle_after_grace(store: TaskStore, task: Task, snapshot: MetagraphSnapshot | None, quorum: float, *,
                             grace_s: float, now: datetime) -> TaskStatus | None:
    """Decide a task DONE for ``grace_s`` or longer on the evaluations it has (see the module doc):
    the quorum and support rules over the evaluators alone. None when not due (not DONE, too
    recent, or no evaluation yet: its own validator's comes first)."""
    since = done_since(task)
    if task.status is not TaskStatus.DONE or since is None or (now - since).total_seconds() < grace_s:
        return None
    evaluations = await store.list_evaluations(task.task_id)
    if not evaluations:
        return None
    counted = taking_part(snapshot, frozenset(), evaluations)
    responses = await store.list_responses(task.task_id)
    result = choose_result(task, responses, evaluations, snapshot=counted, quorum=quorum)
    whole = quorum_share(evaluations, snapshot)
    reason = (f"approval grace: quorum not reached in {grace_s:.0f} s; decided on {len(evaluations)} "
              f"evaluation(s) holding {whole:.0%} of the validator stake")
    task, _ = await _decide(store, task, result, reason=reason)
    return task.status


async def _decide(store: TaskStore, task: Task, result: FinalResult | None, *,
                  reason: str | None = None) -> tuple[Task, FinalResult | None]:
    """Approve with the result in one atomic store step (so an APPROVED task always has one, written
    once: by the decision whose move succeeded); or fail with no valid answer. A concurrent decision
    by another evaluator wins quietly: its task and result are re-read, nothing is overwritten."""
    try:
        if result is None:
            task = await store.transition(task.task_id, TaskStatus.FAILED, reason=reason or "evaluated",
                                          error=("no_acceptable_response",
                                                 "no miner gave an answer the evaluation accepted"))
        else:
            task = await store.transition(task.task_id, TaskStatus.APPROVED, reason=reason or "quorum reached",
                                          result=result)
    except IllegalTransition:
        task = await store.get_task(task.task_id)
        result = await store.get_final_result(task.task_id)
    return task, result
