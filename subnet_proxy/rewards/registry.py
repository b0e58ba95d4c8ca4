"""The one table of task kinds: synapse, reward function, references builder, challenge generator, timeout.

In the spirit of SN1's ``task_registry``: adding a task kind is adding a row here, and no other
code branches on the kind. The validator loop asks this table which synapse to send, how long
to wait, how to build a synthetic challenge and how to score the answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from protocol import AudioSynapse, SummarizationSynapse, TranscriptionSynapse, TTSSynapse
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.rewards.references import (
    ScoringEngines,
    summarization_references,
    transcription_references,
    tts_references,
)
from subnet_proxy.rewards.summarization import reward_summarization
from subnet_proxy.rewards.transcription import reward_transcription
from subnet_proxy.rewards.tts import reward_tts
from subnet_proxy.tasks import MinerResponse, MinerReward, Task, TaskInput, TaskKind
from subnet_proxy.validator.challenges import (
    ChallengeFn,
    summarization_challenge,
    transcription_challenge,
    tts_challenge,
)


class RewardFn(Protocol):
    def __call__(self, task: Task, ground_truth: str | None, responses: Sequence[MinerResponse], references: Any,
                 *, timeout_s: float) -> list[MinerReward]: ...


class ReferencesFn(Protocol):
    async def __call__(self, task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                       scoring: ScoringEngines, blobs: BlobStore) -> Any: ...


#: seconds of work allowed per unit of input on top of the base timeout (the figures the dispatcher's
#: codec uses: CPU reference engines, Whisper tiny ~0.1x real time, Piper ~0.2x real time).
ASR_S_PER_AUDIO_S = 0.5
TTS_S_PER_CHAR = 0.02
SUMMARY_S_PER_CHAR = 0.0001
MAX_TIMEOUT_S = 600.0


def _transcription_extra_s(task_input: TaskInput) -> float:
    return ASR_S_PER_AUDIO_S * (task_input.audio_seconds or 0.0)


def _tts_extra_s(task_input: TaskInput) -> float:
    return TTS_S_PER_CHAR * len(task_input.text or "")


def _summarization_extra_s(task_input: TaskInput) -> float:
    return SUMMARY_S_PER_CHAR * len(task_input.text or "")


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """Everything kind-specific about a task kind."""

    kind: TaskKind
    synapse: type[AudioSynapse]
    reward: RewardFn
    references: ReferencesFn
    challenge: ChallengeFn
    #: seconds added to the base dendrite timeout for this task's size.
    extra_timeout_s: Callable[[TaskInput], float]
    #: relative frequency among synthetic challenges.
    challenge_weight: float


REGISTRY: Mapping[TaskKind, TaskSpec] = MappingProxyType({
    TaskKind.TRANSCRIPTION: TaskSpec(
        kind=TaskKind.TRANSCRIPTION, synapse=TranscriptionSynapse, reward=reward_transcription,
        references=transcription_references, challenge=transcription_challenge,
        extra_timeout_s=_transcription_extra_s, challenge_weight=0.4,
    ),
    TaskKind.TTS: TaskSpec(
        kind=TaskKind.TTS, synapse=TTSSynapse, reward=reward_tts, references=tts_references,
        challenge=tts_challenge, extra_timeout_s=_tts_extra_s, challenge_weight=0.3,
    ),
    TaskKind.SUMMARIZATION: TaskSpec(
        kind=TaskKind.SUMMARIZATION, synapse=SummarizationSynapse, reward=reward_summarization,
        references=summarization_references, challenge=summarization_challenge,
        extra_timeout_s=_summarization_extra_s, challenge_weight=0.3,
    ),
})


def task_spec(kind: TaskKind) -> TaskSpec:
    return REGISTRY[TaskKind(kind)]


def task_timeout(task: Task, base_s: float) -> float:
    """The dendrite timeout for this task: the base (``--neuron.timeout``) plus its size allowance."""
    return min(base_s + float(task_spec(task.kind).extra_timeout_s(task.input)), MAX_TIMEOUT_S)


def pick_challenge_kind(rng: random.Random) -> TaskKind:
    kinds = list(REGISTRY)
    return rng.choices(kinds, weights=[REGISTRY[k].challenge_weight for k in kinds])[0]
