"""Transcription reward: 1 - WER against checkable truth, CER as a tie-breaker.

Synthetic tasks compare with the ground truth the validator spoke itself. Client tasks have no
truth, and the miners' transcripts do not vote: a vote per hotkey can be bought (three hotkeys
sending one plausible-but-wrong transcript outvoted the validator and the honest miner under the old
medoid consensus), so no number of agreeing miners moves the judgement.

The validator's own model is small (Whisper tiny.en by default, about 5-20% of words wrong on
ordinary speech), so a transcript better than it differs from it too, by more or less from one
reading to the next. Distance to the validator's own words therefore cannot tell a better transcript
from a worse one. The audio can: the validator makes its model read each answer against the audio
(``references``) and a word the model gives less than ``MIN_WORD_PROBABILITY`` there was not heard.
An answer's error is its unheard words plus the validator's words it left out (a transcript of half
the audio has no unheard word), as a share of the validator's word count. Up to ``HEARD_TOLERANCE``
costs nothing (the model's own noise on a correct transcript); beyond it the quality falls linearly
to 0 at ``ZERO_QUALITY_ERROR``. Measured on Piper speech (tests/adversarial): the exact text 0-6%,
every fifth word changed 22-31%, every third word changed or half the text 48-57%.

An engine that cannot read a text against audio leaves the reward with distance to the validator's
own words, forgiven up to ``OWN_MODEL_TOLERANCE_WER``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jiwer

from subnet_proxy.rewards.base import Judged, clip01, finalize, invalid
from subnet_proxy.rewards.text import char_error_rate, normalize, word_error_rate
from subnet_proxy.tasks import MinerResponse, MinerReward, Task

#: client tasks: a word the validator's model gives less than this, read against the audio, was not heard.
MIN_WORD_PROBABILITY = 0.03
#: share of the validator's word count missing or unheard that costs nothing ...
HEARD_TOLERANCE = 0.1
#: ... and the share at which the quality reaches 0.
ZERO_QUALITY_ERROR = 0.6
#: without word probabilities: disagreement with the validator's words that costs nothing ...
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
    """What the validator computed itself: its own transcript of the task's audio (None if it failed),
    and per answer (by normalised text) its words' probabilities read against the audio (absent: not read)."""

    validator_transcript: str | None
    word_probabilities: Mapping[str, Sequence[float]] = field(default_factory=dict)


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


def heard_quality(own: str, hypothesis: str, probabilities: Sequence[float]) -> tuple[float, dict[str, float]]:
    """(quality, breakdown) from the answer's words read against the audio (``probabilities``, one a word)
    and the validator's own words it left out; CER against the validator's words shaves as elsewhere."""
    unheard = sum(1 for p in probabilities if p < MIN_WORD_PROBABILITY)
    left_out = jiwer.process_words(own, hypothesis).deletions
    error = min(1.0, (unheard + left_out) / len(own.split()))
    cer = char_error_rate(own, hypothesis)
    excess = clip01((error - HEARD_TOLERANCE) / (ZERO_QUALITY_ERROR - HEARD_TOLERANCE))
    return (1.0 - excess) * (1.0 - CER_WEIGHT * cer), {"error": error, "unheard": float(unheard),
                                                       "left_out": float(left_out), "cer": cer}


def oversize(reference: str, text: str) -> bool:
    """More words than a transcript of the reference's audio could have (both normalised)."""
    return len(text.split()) > MAX_LENGTH_RATIO * len(reference.split()) + LENGTH_SLACK_WORDS


def judge_transcript(reference: str, response: MinerResponse, references: TranscriptionReferences, *,
                     truth: bool) -> Judged:
    """``truth``: ``reference`` is the ground truth (else the validator's own transcript)."""
    text = normalize(response.text)
    if not text:
        return invalid("empty")
    if oversize(reference, text):
        return invalid("oversize")
    if truth:
        quality, breakdown = transcript_quality(reference, text)
    elif (probabilities := references.word_probabilities.get(text)) is not None:
        quality, breakdown = heard_quality(reference, text, probabilities)
    else:
        quality, breakdown = tolerant_quality(reference, text)
    return Judged(valid=True, quality=quality, breakdown=breakdown)


def reward_transcription(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
                         references: TranscriptionReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order)."""
    truth = ground_truth is not None
    reference = normalize(ground_truth if truth else references.validator_transcript)
    if not reference:  # without its own transcript the validator cannot judge: nobody is credited
        judged = [invalid("no_reference") for _ in responses]
    else:
        judged = [judge_transcript(reference, r, references, truth=truth) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
