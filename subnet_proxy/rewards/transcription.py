"""Transcription reward: 1 - WER against checkable truth, CER as a tie-breaker.

Synthetic tasks compare with the ground truth the validator spoke itself. Client tasks have no
truth, so the reference is a consensus anchored on the validator's own ASR: the candidates are
the validator's transcript plus the miners' transcripts that roughly agree with it, and the
reference is their medoid (least total pairwise WER). One outlier cannot become the reference
(it is never central), and a colluding majority of junk cannot either (it does not agree with
the validator's own transcript, so it is never a candidate).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from subnet_proxy.rewards.base import Judged, finalize, invalid
from subnet_proxy.rewards.text import char_error_rate, normalize, word_error_rate
from subnet_proxy.tasks import MinerResponse, MinerReward, Task

#: a miner transcript within this WER of the validator's own may help choose the reference.
AGREEMENT_WER = 0.5
#: how much CER can shave off (it only separates answers of equal WER).
CER_WEIGHT = 0.05
#: a transcript longer than this many times the reference (plus a few words) is oversize.
MAX_LENGTH_RATIO = 3.0
LENGTH_SLACK_WORDS = 10


@dataclass(frozen=True, slots=True)
class TranscriptionReferences:
    """What the validator computed itself: its own transcript of the task's audio (None if it failed)."""

    validator_transcript: str | None


def _distance(a: str, b: str) -> float:
    return (word_error_rate(a, b) + word_error_rate(b, a)) / 2.0


def consensus_reference(validator_transcript: str | None, transcripts: Sequence[str | None]) -> str | None:
    """The medoid of the validator's transcript and the miner transcripts that agree with it.

    Miners' votes count with multiplicity (agreeing miners outvote the validator's small model);
    a vote only counts if it is within AGREEMENT_WER of the validator's own transcript.

    None when the validator has no transcript of its own: without that anchor a junk majority
    could define the truth, so the task earns nobody credit.
    """
    own = normalize(validator_transcript)
    if not own:
        return None
    votes: Counter[str] = Counter({own: 1})
    for text in transcripts:
        norm = normalize(text)
        if norm and word_error_rate(own, norm) <= AGREEMENT_WER:
            votes[norm] += 1
    candidates = list(votes)  # the validator's own first, so it wins ties
    totals = [sum(votes[other] * _distance(c, other) for other in candidates) for c in candidates]
    return candidates[min(range(len(candidates)), key=lambda i: (totals[i], i))]


def transcript_quality(reference: str, hypothesis: str) -> tuple[float, dict[str, float]]:
    """(quality, breakdown): (1 - WER) shaved by at most CER_WEIGHT of the CER."""
    wer = word_error_rate(reference, hypothesis)
    cer = char_error_rate(reference, hypothesis)
    quality = (1.0 - wer) * (1.0 - CER_WEIGHT * cer)
    return quality, {"wer": wer, "cer": cer}


def judge_transcript(reference: str, response: MinerResponse) -> Judged:
    text = normalize(response.text)
    if not text:
        return invalid("empty")
    if len(text.split()) > MAX_LENGTH_RATIO * len(reference.split()) + LENGTH_SLACK_WORDS:
        return invalid("oversize")
    quality, breakdown = transcript_quality(reference, text)
    return Judged(valid=True, quality=quality, fingerprint="t:" + text, breakdown=breakdown)


def reward_transcription(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
                         references: TranscriptionReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order)."""
    if ground_truth is not None:
        reference: str | None = normalize(ground_truth)
    else:
        valid_texts = [r.text for r in responses if r.valid]
        reference = consensus_reference(references.validator_transcript, valid_texts)
    if not reference:
        judged = [invalid("no_reference") for _ in responses]
    else:
        judged = [judge_transcript(reference, r) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
