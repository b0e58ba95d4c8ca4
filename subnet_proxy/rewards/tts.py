"""TTS reward: the validator listens back. Round-trip WER of its own transcript of the audio vs the text.

Before any listening the audio must be a plausible reading of the text (decodes, sane rate,
plausible duration, not silent, not clipped: ``audio_checks``) and contain speech (Silero VAD).
Noise and silence fail those gates; a different sentence spoken well passes them but its round
trip shares few words with the text, so it scores near 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from subnet_proxy.rewards.audio_checks import AudioFacts, audio_problem
from subnet_proxy.rewards.base import Judged, clip01, finalize, invalid
from subnet_proxy.rewards.transcription import transcript_quality
from subnet_proxy.tasks import MinerResponse, MinerReward, Task

#: below this share of speech windows the clip "contains no speech".
MIN_SPEECH_RATIO = 0.1
#: at or above this share the speech term is full (pauses between sentences are normal).
FULL_SPEECH_RATIO = 0.4


@dataclass(frozen=True, slots=True)
class TTSReferences:
    """Per hotkey: facts about the returned audio, the VAD speech ratio, the validator's transcript of it.

    A hotkey missing from ``audio`` returned no audio; missing from ``speech_ratio`` or
    ``round_trip`` means the engines were not run on it (its audio failed the checks first).
    """

    audio: Mapping[str, AudioFacts] = field(default_factory=dict)
    speech_ratio: Mapping[str, float] = field(default_factory=dict)
    round_trip: Mapping[str, str] = field(default_factory=dict)


def speech_term(ratio: float) -> float:
    return clip01(ratio / FULL_SPEECH_RATIO)


def judge_speech(text: str, response: MinerResponse, references: TTSReferences) -> Judged:
    facts = references.audio.get(response.hotkey)
    if facts is None:
        return invalid("empty")
    problem = audio_problem(facts, text)
    if problem is not None:
        return invalid(problem)
    ratio = references.speech_ratio.get(response.hotkey)
    if ratio is None or ratio < MIN_SPEECH_RATIO:
        return invalid("no_speech", speech_ratio=ratio or 0.0)
    heard = references.round_trip.get(response.hotkey, "")
    accuracy, breakdown = transcript_quality(text, heard)
    speech = speech_term(ratio)
    return Judged(valid=True, quality=accuracy * speech, fingerprint="a:" + facts.digest,
                  breakdown={**breakdown, "speech_ratio": ratio, "speech": speech})


def reward_tts(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
               references: TTSReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order); the truth is the text the miners were asked to speak."""
    text = ground_truth or task.input.text or ""
    judged = [judge_speech(text, r, references) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
