"""Transcription reward: 1 - WER against checkable truth, CER as a tie-breaker.

Synthetic tasks compare with the ground truth the validator spoke itself. Client tasks have no
truth; the reference is the validator's own transcript, and the miners' transcripts do not vote.
A vote per hotkey can be bought: three hotkeys sending one plausible-but-wrong transcript (or
near copies of it) outvoted the validator and the honest miner under the old medoid consensus. So
no number of agreeing miners moves the reference.

The validator's own model is small (Whisper tiny.en by default, about 5-20% of words wrong on ordinary
speech), so a transcript better than it differs from it too. Disagreement up to
``OWN_MODEL_TOLERANCE_WER`` is therefore no evidence of error and costs nothing; beyond it the
quality falls linearly, reaching 0 at ``ZERO_QUALITY_WER``. The honest reference miner (which
agrees with the validator) and a more accurate transcript then score alike, while a transcript with a
third of its words changed stays well below both. Validators with a GPU should run a larger model
(``--engine.asr_model large-v3``), whose transcripts leave less room between truth and reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from subnet_proxy.rewards.base import Judged, clip01, finalize, invalid
from subnet_proxy.rewards.text import char_error_rate, normalize, word_error_rate
from subnet_proxy.tasks import MinerResponse, MinerReward, Task

#: client tasks: disagreement with the validator's own transcript that costs nothing (its model's own error) ...
OWN_MODEL_TOLERANCE_WER = 0.2
#: ... and the disagreement at which the quality reaches 0.
ZERO_QUALITY_WER = 0.8
#: how much CER can shave off (it only separates answers of equal WER).
CER_WEIGHT = 0.05
#: a transcript longer than this many times the reference (plus a few words) is oversize.
MAX_LENGTH_RATIO = 3.0
LENGTH_SLACK_WORDS = 10


@dataclass(frozen=True, slots=True)
class TranscriptionReferences:
    """What the validator computed itself: its own transcript of the task's audio (None if it failed)."""

    validator_transcript: str | None


def transcript_quality(reference: str, hypothesis: str) -> tuple[float, dict[str, float]]:
    """(quality, breakdown): (1 - WER) shaved by at most CER_WEIGHT of the CER."""
    wer = word_error_rate(reference, hypothesis)
    cer = char_error_rate(reference, hypothesis)
    quality = (1.0 - wer) * (1.0 - CER_WEIGHT * cer)
    return quality, {"wer": wer, "cer": cer}


def tolerant_quality(own: str, hypothesis: str) -> tuple[float, dict[str, float]]:
    """(quality, breakdown) against the validator's own transcript: WER up to the tolerance is free."""
    wer = word_error_rate(own, hypothesis)
    cer = char_error_rate(own, hypothesis)
    excess = clip01((wer - OWN_MODEL_TOLERANCE_WER) / (ZERO_QUALITY_WER - OWN_MODEL_TOLERANCE_WER))
    return (1.0 - excess) * (1.0 - CER_WEIGHT * cer), {"wer": wer, "cer": cer}


def judge_transcript(reference: str, response: MinerResponse, *, truth: bool) -> Judged:
    """``truth``: ``reference`` is the ground truth (else the validator's own transcript)."""
    text = normalize(response.text)
    if not text:
        return invalid("empty")
    if len(text.split()) > MAX_LENGTH_RATIO * len(reference.split()) + LENGTH_SLACK_WORDS:
        return invalid("oversize")
    quality, breakdown = (transcript_quality if truth else tolerant_quality)(reference, text)
    return Judged(valid=True, quality=quality, breakdown=breakdown)


def reward_transcription(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
                         references: TranscriptionReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order)."""
    truth = ground_truth is not None
    reference = normalize(ground_truth if truth else references.validator_transcript)
    if not reference:  # without its own transcript the validator cannot judge: nobody is credited
        judged = [invalid("no_reference") for _ in responses]
    else:
        judged = [judge_transcript(reference, r, truth=truth) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
