"""Reward functions that cannot be gamed: one pure module per task kind, shared checks, the references.

Each kind's ``KindSpec`` (``subnet_proxy.kinds``) names its reward function and references builder;
``kinds.score_task`` (the validator loop's entry point) computes the references with the engines and
calls the kind's pure reward function.
"""

from __future__ import annotations

from subnet_proxy.rewards.base import PASS_QUALITY, SPEED_WEIGHT, Judged, finalize
from subnet_proxy.rewards.references import ScoringEngines
from subnet_proxy.rewards.summarization import SummarizationReferences, reward_summarization
from subnet_proxy.rewards.transcription import TranscriptionReferences, reward_transcription
from subnet_proxy.rewards.tts import TTSReferences, reward_tts

__all__ = [
    "PASS_QUALITY",
    "SPEED_WEIGHT",
    "Judged",
    "ScoringEngines",
    "SummarizationReferences",
    "TTSReferences",
    "TranscriptionReferences",
    "finalize",
    "reward_summarization",
    "reward_transcription",
    "reward_tts",
]
