"""Transcription reward: truth for synthetic tasks, the validator's own transcript (with its model's tolerance)
for client tasks; miners do not vote."""

from __future__ import annotations

import pytest

from subnet_proxy.rewards.text import normalize
from subnet_proxy.rewards.transcription import (
    OWN_MODEL_TOLERANCE_WER,
    TranscriptionReferences,
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


def _changed(text: str, every: int, mark: str) -> str:
    """``text`` with every ``every``-th word replaced (a plausible-but-wrong transcript)."""
    return " ".join(f"{mark}{i}" if i % every == every - 1 else w for i, w in enumerate(text.split()))


def test_a_transcript_better_than_the_validators_own_is_not_punished() -> None:
    own = "the keeper kept a careful lock of the whether and of every passing vessel"  # two words misheard
    rewards = score(None, own, {"reference_miner": own, "truth": TRUTH})
    assert rewards["truth"].breakdown["wer"] <= OWN_MODEL_TOLERANCE_WER
    assert rewards["reference_miner"].reward - rewards["truth"].reward <= 0.05


@pytest.mark.parametrize("colluders", [2, 3, 5])
@pytest.mark.parametrize("variants", [False, True])
def test_colluding_hotkeys_cannot_outvote_the_validator(colluders: int, variants: bool) -> None:
    """A third of the words changed, sent by several hotkeys (identical, or each slightly different)."""
    wrong = _changed(TRUTH, 3, "zz")
    texts = {f"c{i}": (wrong + f" x{i}" if variants else wrong) for i in range(colluders)}
    rewards = score(None, TRUTH, {"honest": TRUTH, **texts})
    assert all(rewards["honest"].reward - rewards[h].reward >= 0.1 for h in texts), rewards
    assert rewards["honest"].breakdown["wer"] == 0.0


def test_a_colluding_junk_majority_cannot_win() -> None:
    colluders = {f"junk{i}": JUNK + " " + "x" * i for i in range(5)}
    rewards = score(None, CLOSE, {"honest": TRUTH, **colluders})
    assert rewards["honest"].reward > 0.8
    assert all(rewards[h].reward < 0.1 for h in colluders)


def test_identical_answers_from_two_hotkeys_both_earn() -> None:
    """Two honest miners with one deterministic model send the same text: both are credited."""
    rewards = score(None, TRUTH, {"first": TRUTH, "second": TRUTH, "junk0": JUNK, "junk1": JUNK})
    assert rewards["first"].reward == rewards["second"].reward > 0.8
    assert rewards["junk0"].reward == rewards["junk1"].reward < 0.1


def test_without_the_validator_transcript_nobody_is_credited() -> None:
    rewards = score(None, None, {"a": TRUTH, "b": TRUTH + " x"})
    assert all(r.reward == 0.0 and "rejected_no_reference" in r.breakdown for r in rewards.values())


@pytest.mark.parametrize("own", ["", "   ", "..."])
def test_an_empty_validator_transcript_is_no_anchor(own: str) -> None:
    rewards = score(None, own, {"a": TRUTH})
    assert "rejected_no_reference" in rewards["a"].breakdown


# -- answers read against the audio (word probabilities from the validator's model) -------------------

def heard(own: str, probabilities: dict[str, list[float]], texts: dict[str, str]) -> dict:
    responses = [response(TASK, hotkey, uid=i, order=i, text=text) for i, (hotkey, text) in enumerate(texts.items())]
    references = TranscriptionReferences(own, word_probabilities=probabilities)
    return by_hotkey(reward_transcription(TASK, None, responses, references, timeout_s=10.0))


def test_an_answer_the_audio_supports_scores_full_however_far_from_the_validators_words() -> None:
    own = "the keeper kept a careful lock of the whether and every passing vessels"  # four words off
    truth = normalize(TRUTH)
    rewards = heard(own, {truth: [0.4] * len(truth.split()), own: [0.6] * len(own.split())},
                    {"truth": TRUTH, "reference_miner": own})
    assert rewards["truth"].breakdown["error"] == 0.0 and rewards["truth"].breakdown["unheard"] == 0
    assert abs(rewards["truth"].reward - rewards["reference_miner"].reward) <= 0.01


def test_unheard_words_and_left_out_words_both_cost() -> None:
    own = normalize(TRUTH)
    n = len(own.split())
    changed = normalize(_changed(TRUTH, 3, "zz"))
    half = " ".join(own.split()[: n // 2])
    probabilities = {own: [0.5] * n, half: [0.5] * (n // 2),
                     changed: [0.001 if i % 3 == 2 else 0.5 for i in range(n)]}
    rewards = heard(own, probabilities, {"honest": own, "changed": changed, "half": half})
    assert rewards["changed"].breakdown["unheard"] == n // 3 and rewards["changed"].breakdown["left_out"] == 0
    assert rewards["half"].breakdown["unheard"] == 0 and rewards["half"].breakdown["left_out"] == n - n // 2
    for cheat in ("changed", "half"):
        assert rewards["honest"].reward - rewards[cheat].reward >= 0.3, rewards


def test_an_answer_not_read_against_the_audio_falls_back_to_the_tolerance() -> None:
    own = normalize(TRUTH)
    rewards = heard(own, {}, {"close": CLOSE})
    assert "wer" in rewards["close"].breakdown and "unheard" not in rewards["close"].breakdown
