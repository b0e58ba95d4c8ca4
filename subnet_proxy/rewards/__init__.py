"""Reward functions that cannot be gamed: one pure module per task kind, shared checks, a registry.

``score_task`` (the validator loop's entry point) computes references with the engines and calls
the kind's pure reward function; ``REGISTRY`` is the table of task kinds.
"""

from __future__ import annotations

from subnet_proxy.rewards.base import PASS_QUALITY, SPEED_WEIGHT, Judged, finalize
from subnet_proxy.rewards.references import ScoringEngines
from subnet_proxy.rewards.registry import REGISTRY, TaskSpec, pick_challenge_kind, task_spec, task_timeout
from subnet_proxy.rewards.scorer import score_task
from subnet_proxy.rewards.summarization import SummarizationReferences, reward_summarization
from subnet_proxy.rewards.transcription import TranscriptionReferences, reward_transcription
from subnet_proxy.rewards.tts import TTSReferences, reward_tts

__all__ = [
    "PASS_QUALITY",
    "REGISTRY",
    "SPEED_WEIGHT",
    "Judged",
    "ScoringEngines",
    "SummarizationReferences",
    "TTSReferences",
    "TaskSpec",
    "TranscriptionReferences",
    "finalize",
    "pick_challenge_kind",
    "reward_summarization",
    "reward_transcription",
    "reward_tts",
    "score_task",
    "task_spec",
    "task_timeout",
]
