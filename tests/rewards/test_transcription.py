"""Transcription reward: truth for synthetic tasks, an anchored consensus for client tasks."""

from __future__ import annotations

import pytest

from subnet_proxy.rewards.transcription import (
    TranscriptionReferences,
    consensus_reference,
    reward_transcription,
)
from subnet_proxy.tasks import TaskKind
from tests.rewards.conftest import by_hotkey, make_task, response

TRUTH = "The keeper kept a careful log of the weather and of every passing vessel."
CLOSE = "the keeper kept a careful log of the weather and every passing vessel"  # one word dropped
JUNK = "buy cheap tokens now and win a prize every single day of the week"
TASK = make_task(TaskKind.TRANSCRIPTION, audio_blob="0" * 64, audio_format="wav", audio_seconds=5.0)


def score(ground_truth: str | None, own: str | None, texts: dict[str, str | None]) -> dict:
    responses = [response(TASK, hotkey, uid=i, order=i, text=text) for i, (hotkey, text) in enumerate(texts.items())]
    rewards = reward_transcription(TASK, ground_truth, responses, TranscriptionReferences(own), timeout_s=10.0)
    return by_hotkey(rewards)


def test_synthetic_task_is_judged_against_the_ground_truth() -> None:
    rewards = score(TRUTH, None, {"exact": TRUTH.upper(), "close": CLOSE, "junk": JUNK, "empty": "   "})
    assert rewards["exact"].breakdown["wer"] == 0.0
    assert rewards["exact"].reward > rewards["close"].reward > 0.7
    assert rewards["junk"].reward < 0.1
    assert rewards["empty"].reward == 0.0 and "rejected_empty" in rewards["empty"].breakdown


def test_cer_breaks_a_wer_tie() -> None:
    near_miss = TRUTH.replace("vessel", "vessels")
    far_miss = TRUTH.replace("vessel", "zebra")
    rewards = score(TRUTH, None, {"near": near_miss, "far": far_miss})
    assert rewards["near"].breakdown["wer"] == rewards["far"].breakdown["wer"]
    assert rewards["near"].reward > rewards["far"].reward


def test_oversize_transcript_scores_zero() -> None:
    rewards = score(TRUTH, None, {"padded": (TRUTH + " ") * 5})
    assert rewards["padded"].reward == 0.0 and "rejected_oversize" in rewards["padded"].breakdown


def test_consensus_picks_the_central_agreeing_transcript() -> None:
    assert consensus_reference(TRUTH, [TRUTH, TRUTH, CLOSE]) == consensus_reference(TRUTH, []) != CLOSE
    assert consensus_reference(CLOSE, [TRUTH, TRUTH.lower()]) == consensus_reference(TRUTH, [])


def test_one_outlier_cannot_become_the_reference() -> None:
    outlier = "the keeper kept a careful log of the weather"  # agrees loosely with the validator's own
    rewards = score(None, CLOSE, {"honest1": TRUTH, "honest2": CLOSE + " too", "outlier": outlier})
    assert rewards["outlier"].reward < rewards["honest1"].reward
    assert rewards["outlier"].reward < rewards["honest2"].reward


def test_a_colluding_junk_majority_cannot_win() -> None:
    colluders = {f"junk{i}": JUNK + " " + "x" * i for i in range(5)}  # distinct texts dodge the duplicate rule
    rewards = score(None, CLOSE, {"honest": TRUTH, **colluders})
    assert rewards["honest"].reward > 0.8
    assert all(rewards[h].reward < 0.1 for h in colluders)


def test_identical_junk_majority_is_also_credited_once_and_still_loses() -> None:
    rewards = score(None, CLOSE, {"junk0": JUNK, "junk1": JUNK, "junk2": JUNK, "honest": TRUTH})
    assert rewards["honest"].reward > 0.8
    assert rewards["junk1"].breakdown.get("rejected_duplicate") == 1.0
    assert rewards["junk0"].reward < 0.1


def test_without_the_validator_transcript_nobody_is_credited() -> None:
    rewards = score(None, None, {"a": TRUTH, "b": TRUTH + " x"})
    assert all(r.reward == 0.0 and "rejected_no_reference" in r.breakdown for r in rewards.values())


@pytest.mark.parametrize("own", ["", "   ", "..."])
def test_an_empty_validator_transcript_is_no_anchor(own: str) -> None:
    assert consensus_reference(own, [TRUTH, TRUTH]) is None
