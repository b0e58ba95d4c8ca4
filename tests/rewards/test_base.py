"""The shared rules: validity, timeouts, identical answers each credited, a speed term that cannot flip ranks."""

from __future__ import annotations

import itertools

import pytest

from subnet_proxy.rewards.base import PASS_QUALITY, SPEED_WEIGHT, Judged, finalize, invalid, speed_multiplier
from subnet_proxy.tasks import TaskKind
from tests.rewards.conftest import by_hotkey, make_task, response

TASK = make_task(TaskKind.SUMMARIZATION, text="x")


def ok(quality: float, _answer: str = "") -> Judged:
    """A valid verdict; ``_answer`` only names which answer it stands for (identical answers share one)."""
    return Judged(valid=True, quality=quality)


def test_non_ok_late_and_invalid_answers_score_zero_with_the_reason() -> None:
    responses = [
        response(TASK, "timeout", state="timeout", latency=10.0),
        response(TASK, "error", state="error"),
        response(TASK, "late", latency=10.5),
        response(TASK, "nolatency", latency=1.0).model_copy(update={"latency_s": None}),
        response(TASK, "bad"),
        response(TASK, "good"),
    ]
    judged = [ok(1.0, "a"), ok(1.0, "b"), ok(1.0, "c"), ok(1.0, "d"), invalid("empty"), ok(1.0, "e")]
    rewards = by_hotkey(finalize(responses, judged, timeout_s=10.0))
    assert rewards["timeout"].breakdown == {"rejected_timeout": 1.0}
    assert rewards["error"].breakdown == {"rejected_error": 1.0}
    assert rewards["late"].breakdown == {"rejected_timeout": 1.0}
    assert rewards["nolatency"].breakdown == {"rejected_timeout": 1.0}
    assert rewards["bad"].breakdown == {"rejected_empty": 1.0}
    assert all(rewards[h].reward == 0.0 for h in ("timeout", "error", "late", "nolatency", "bad"))
    assert rewards["good"].reward == pytest.approx(1.0 - SPEED_WEIGHT * 0.1)


def test_identical_answers_from_several_hotkeys_each_earn_speed_orders_them() -> None:
    """Two honest miners with one deterministic model: both credited, the faster a little more."""
    responses = [response(TASK, "later", latency=2.0, order=5), response(TASK, "earlier", latency=1.0, order=1),
                 response(TASK, "other", latency=2.0, order=3)]
    rewards = by_hotkey(finalize(responses, [ok(0.9, "same"), ok(0.9, "same"), ok(0.9, "different")],
                                 timeout_s=10.0))
    assert rewards["earlier"].reward > rewards["later"].reward > 0.7
    assert "rejected_duplicate" not in rewards["later"].breakdown
    assert rewards["other"].reward == rewards["later"].reward


def test_a_late_answer_earns_nothing_and_blocks_no_one() -> None:
    responses = [response(TASK, "late", latency=11.0, order=0), response(TASK, "ontime", latency=1.0, order=1)]
    rewards = by_hotkey(finalize(responses, [ok(1.0, "x"), ok(1.0, "x")], timeout_s=10.0))
    assert rewards["late"].reward == 0.0
    assert rewards["ontime"].reward > 0.9


def test_speed_never_lifts_a_wrong_answer_above_a_right_one() -> None:
    grid = [i / 20 for i in range(21)]
    latencies = [0.0, 0.5, 3.0, 9.99, 10.0]
    for q_right, q_wrong in itertools.product(grid, grid):
        if q_right < PASS_QUALITY or q_wrong >= PASS_QUALITY:
            continue
        for slow, fast in itertools.product(latencies, latencies):
            right = response(TASK, "right", latency=slow)
            wrong = response(TASK, "wrong", latency=fast)
            rewards = by_hotkey(finalize([right, wrong], [ok(q_right, "r"), ok(q_wrong, "w")], timeout_s=10.0))
            assert rewards["right"].reward > rewards["wrong"].reward, (q_right, q_wrong, slow, fast)


def test_speed_is_a_bounded_multiplier() -> None:
    assert speed_multiplier(1.0, 0.0, 10.0) == 1.0
    assert speed_multiplier(1.0, 10.0, 10.0) == pytest.approx(1.0 - SPEED_WEIGHT)
    assert speed_multiplier(PASS_QUALITY - 0.01, 0.0, 10.0) == pytest.approx(1.0 - SPEED_WEIGHT)
    fast, slow = (finalize([response(TASK, "m", latency=lat)], [ok(0.8, "a")], timeout_s=10.0)[0]
                  for lat in (0.5, 9.0))
    assert fast.reward > slow.reward >= 0.8 * (1.0 - SPEED_WEIGHT)
    assert fast.breakdown["quality"] == slow.breakdown["quality"] == 0.8


def test_rewards_stay_in_unit_interval_and_order_is_kept() -> None:
    responses = [response(TASK, f"m{i}", uid=i, latency=0.1 * i, order=i) for i in range(5)]
    judged = [ok(q, str(i)) for i, q in enumerate([1.7, -0.3, float("nan"), 0.5, 1.0])]
    rewards = finalize(responses, judged, timeout_s=10.0)
    assert [r.uid for r in rewards] == [0, 1, 2, 3, 4]
    assert all(0.0 <= r.reward <= 1.0 for r in rewards)
    assert rewards[2].reward == 0.0


def test_mismatched_verdicts_are_refused() -> None:
    with pytest.raises(ValueError, match="2 responses but 1 verdicts"):
        finalize([response(TASK, "a"), response(TASK, "b")], [ok(1.0, "a")], timeout_s=10.0)


def test_non_finite_breakdown_terms_are_dropped_so_the_evaluation_can_be_stored() -> None:
    from subnet_proxy.tasks import Evaluation

    responses = [response(TASK, "nan"), response(TASK, "inf")]
    judged = [Judged(valid=True, quality=0.8, breakdown={"rouge": float("nan"), "len": 1.0}),
              Judged(valid=False, quality=0.0, reason="empty", breakdown={"sim": float("inf")})]
    rewards = by_hotkey(finalize(responses, judged, timeout_s=10.0))
    assert "rouge" not in rewards["nan"].breakdown and rewards["nan"].breakdown["len"] == 1.0
    assert rewards["inf"].breakdown == {"rejected_empty": 1.0}
    stored = Evaluation(task_id=TASK.task_id, validator_hotkey="v", rewards=list(rewards.values()))
    assert Evaluation.model_validate_json(stored.model_dump_json()) == stored


def test_models_refuse_non_finite_numbers() -> None:
    from pydantic import ValidationError

    from subnet_proxy.tasks import MinerReward

    with pytest.raises(ValidationError):
        type(response(TASK, "x")).model_validate({**response(TASK, "x").model_dump(), "latency_s": float("nan")})
    with pytest.raises(ValidationError):
        MinerReward(uid=1, hotkey="h", reward=0.5, breakdown={"x": float("inf")})
