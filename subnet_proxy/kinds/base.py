"""What a task kind is: ``KindSpec``, one row of the registry, and the types its fields speak.

``KindSpec`` is a frozen dataclass of plain values and functions rather than a base class to
subclass: a kind is a declaration (which synapse, which limits, which reward), and every function in
it is a module-level function of the kind's module, so a row reads as a table, can be compared and
copied (``dataclasses.replace`` swaps one field in a test), and holds no state of its own. Every
layer reads the fields it needs: the validator the synapse, the answer checks, the limits and the
reward; the side-server the submission, the answer checks and the result media; the CLI its verbs.
Kinds sit below the validator and the server and import neither: the server and CLI styles they
name (``JsonBody``/``AudioUpload``, ``ResultMedia``) are plain declarations both ends understand.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from protocol import AudioInfo, AudioSynapse
from protocol.synapses import Segment
from subnet_proxy.api.schemas import TaskAccepted
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.kinds.challenges import ChallengeFn
from subnet_proxy.rewards.references import ScoringEngines
from subnet_proxy.tasks import MinerResponse, MinerReward, Task, TaskInput


class BadTaskInput(ValueError):
    """The task's input cannot be turned into a synapse (missing blob, out of protocol bounds)."""


class AnswerRefused(ValueError):
    """A miner's answer failed its kind's checks. ``code`` is the HTTP error code a delivery gets;
    ``empty``: the answer carries no output at all (on a synapse: the miner may deliver it later)."""

    def __init__(self, code: str, message: str, *, empty: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.empty = empty


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """A miner's output fields as sent, before any check: from its synapse or its delivered answer."""

    text: str | None = None
    segments: Sequence[Segment] | None = None
    audio_b64: str | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """A miner's output once its kind accepted it: what is stored, the same whichever way it came.
    Audio is given by what it is (format and rate read from the bytes), never by what a miner claims."""

    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    audio: bytes | None = None
    audio_format: str | None = None
    sample_rate: int | None = None


#: checks an audio answer's bytes (bounded by samples) and says what they are; the side-server's runs
#: within the sender's decode budget, the dispatcher's in a worker thread (``checks.protocol_probe``).
AudioProbe = Callable[[bytes], Awaitable[AudioInfo]]


class RewardFn(Protocol):
    def __call__(self, task: Task, ground_truth: str | None, responses: Sequence[MinerResponse], references: Any,
                 *, timeout_s: float) -> list[MinerReward]: ...


class ReferencesFn(Protocol):
    async def __call__(self, task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                       scoring: ScoringEngines, blobs: BlobStore) -> Any: ...


S = TypeVar("S", bound=AudioSynapse)

#: a task's synapse input fields (the offer of ``task_id``/``delivery_url`` is added by the caller).
SynapseInputs = Callable[[Task, BlobStore], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class JsonBody:
    """Submitted as a JSON body: ``model`` validates it (and documents it in OpenAPI), ``to_input``
    makes the task's input from the validated request."""

    model: type[BaseModel]
    to_input: Callable[[Any], TaskInput]


@dataclass(frozen=True, slots=True)
class AudioUpload:
    """Submitted as an audio file (multipart field ``audio`` or JSON ``audio_b64``) with an optional
    ``language``: the server checks and stores the file, and the input names the blob."""


@dataclass(frozen=True, slots=True)
class Submission:
    """How a client submits the kind: ``POST /api/v1/<kind>`` with this body, documented thus."""

    summary: str
    body: JsonBody | AudioUpload
    description: str = ""


class ResultMedia(StrEnum):
    """How a result is served: TEXT as a JSON ``TextResult``, AUDIO as the output blob's bytes."""

    TEXT = "text"
    AUDIO = "audio"


class Submitter(Protocol):
    """The client calls a kind's CLI verb submits with (``client.ProxyClient`` is one)."""

    async def submit(self, path: str, body: BaseModel, *, idempotency_key: str | None = None) -> TaskAccepted: ...

    async def submit_audio(self, path: str, audio: bytes | Path, *, language: str | None = None,
                           idempotency_key: str | None = None, callback_url: str | None = None) -> TaskAccepted: ...


@dataclass(frozen=True, slots=True)
class CliVerb:
    """The kind's ``subnet-proxy submit`` subcommand: its names, its own arguments, and how it submits
    (``path``: the kind's submit endpoint). The CLI adds the common flags (--wait, -o, ...)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    submit: Callable[[Submitter, str, argparse.Namespace], Awaitable[TaskAccepted]]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KindSpec(Generic[S]):
    """Everything kind-specific about a task kind (one row of ``kinds.registry``), over its synapse ``S``."""

    #: the name on the wire, in URLs (``/api/v1/<kind>``) and in storage.
    kind: str
    #: the synapse miners receive, and how a task's input becomes its input fields.
    synapse: type[S]
    synapse_inputs: SynapseInputs
    #: the output fields of an answered synapse (a delivered answer's are read the same way).
    answer_of: Callable[[S], RawAnswer]
    #: the one check of an answer, whichever way it came (audio through the probe given); raises AnswerRefused.
    check_answer: Callable[[RawAnswer, AudioProbe], Awaitable[Output]]
    #: largest answer beyond the echoed request (the fan-out refuses bigger ones unread).
    max_output_bytes: int
    #: seconds added to the base dendrite timeout for this task's size.
    extra_timeout_s: Callable[[TaskInput], float]
    submission: Submission
    result: ResultMedia
    cli: CliVerb | None
    reward: RewardFn
    references: ReferencesFn
    #: the synthetic challenge generator, and how often it is drawn (relative; 0: never).
    challenge: ChallengeFn
    challenge_weight: float
