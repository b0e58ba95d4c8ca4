"""TTS reward: the validator listens back. Round-trip WER of its own transcript of the audio vs the text.

Before any listening the audio must be a plausible reading of the text (decodes, sane rate, a
duration around the text's expected speaking time, not silent, not clipped: ``audio_checks``) and
contain speech (Silero VAD). Noise and silence fail those gates; a different sentence spoken well
passes them but its round trip shares few words with the text, so it scores near 0.

Dead air costs in proportion: silence before the first and after the last speech beyond a natural
pause (``NATURAL_PAUSE_S`` each side) is a share of the clip that says nothing, and the quality
is multiplied by the share that is left. The round-trip ASR skips silence and the speech share
saturates early, so without this term 12 s of padding cost only a few hundredths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from subnet_proxy.rewards.audio_checks import NATURAL_PAUSE_S, AudioFacts, audio_problem
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
    #: seconds of silence before the first and after the last speech (VAD), where measured.
    edge_silence_s: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def speech_term(ratio: float) -> float:
    return clip01(ratio / FULL_SPEECH_RATIO)


def dead_air_term(leading_s: float, trailing_s: float, duration_s: float) -> tuple[float, float]:
    """(term, excess seconds): the share of the clip that is not silence beyond a natural pause at either end."""
    excess = max(0.0, leading_s - NATURAL_PAUSE_S) + max(0.0, trailing_s - NATURAL_PAUSE_S)
    return (clip01(1.0 - excess / duration_s) if duration_s > 0 else 0.0), excess


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
    leading, trailing = references.edge_silence_s.get(response.hotkey, (0.0, 0.0))
    dead_air, excess = dead_air_term(leading, trailing, facts.duration_s)
    return Judged(valid=True, quality=accuracy * speech * dead_air,
                  breakdown={**breakdown, "speech_ratio": ratio, "speech": speech, "dead_air": dead_air,
                             "dead_air_s": excess})


def reward_tts(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
               references: TTSReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order); the truth is the text the miners were asked to speak."""
    text = ground_truth or task.input.text or ""
    judged = [judge_speech(text, r, references) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
