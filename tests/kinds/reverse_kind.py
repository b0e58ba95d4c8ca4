"""A toy fourth task kind, "reverse": a text in, the same text reversed out.

Everything the kind needs is here and nowhere else: its synapse (subclassing the protocol's base),
its request model, its answer check, its reward and references, its challenge and its CLI verb.
``tests/kinds/test_toy_kind.py`` registers it and runs a task of it end to end.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from protocol import AudioSynapse
from protocol.synapses import DELIVERY_FIELDS
from subnet_proxy.api.schemas import TaskAccepted
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.engines.pool import Engines
from subnet_proxy.kinds import (
    AudioProbe,
    CliVerb,
    JsonBody,
    KindSpec,
    Output,
    RawAnswer,
    ResultMedia,
    Submission,
    Submitter,
)
from subnet_proxy.kinds.challenges import Challenge, Corpus, synthetic_task
from subnet_proxy.kinds.checks import check_text
from subnet_proxy.rewards.base import Judged, finalize, invalid
from subnet_proxy.rewards.references import ScoringEngines
from subnet_proxy.tasks import MinerResponse, MinerReward, Task, TaskInput

KIND = "reverse"
MAX_CHARS = 1_000


class ReverseSynapse(AudioSynapse):
    """Input: a text; output: that text reversed."""

    text: str = Field(min_length=1, max_length=MAX_CHARS)
    reversed_text: str | None = Field(default=None, max_length=MAX_CHARS)

    required_hash_fields: ClassVar[tuple[str, ...]] = ("text", *DELIVERY_FIELDS)


class ReverseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_CHARS, description="Text to reverse.")


async def synapse_inputs(task: Task, blobs: BlobStore) -> dict[str, Any]:
    return {"text": task.input.text or ""}


def answer_of(synapse: ReverseSynapse) -> RawAnswer:
    return RawAnswer(text=synapse.reversed_text)


async def check_answer(raw: RawAnswer, probe: AudioProbe) -> Output:
    return check_text(KIND, raw, limit=MAX_CHARS)


async def references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                     scoring: ScoringEngines, blobs: BlobStore) -> str:
    return (task.input.text or "")[::-1]


def reward(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse], expected: str, *,
           timeout_s: float) -> list[MinerReward]:
    """Exactly the reversed text earns full quality; anything else nothing."""
    judged = [Judged(valid=True, quality=1.0) if r.text == expected else invalid("wrong")
              for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)


async def challenge(engines: Engines, corpus: Corpus, rng: random.Random, *, owner: str) -> Challenge:
    text = corpus.random_sentences(rng, 1)[0]
    return Challenge(task=synthetic_task(KIND, owner, TaskInput(text=text), text[::-1]), blobs={})


def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text")


async def _cli_submit(client: Submitter, path: str, args: argparse.Namespace) -> TaskAccepted:
    return await client.submit(path, ReverseRequest(text=args.text), idempotency_key=args.idempotency_key)


REVERSE: KindSpec[ReverseSynapse] = KindSpec(
    kind=KIND,
    synapse=ReverseSynapse,
    synapse_inputs=synapse_inputs,
    answer_of=answer_of,
    check_answer=check_answer,
    max_output_bytes=6 * MAX_CHARS + 1024,
    extra_timeout_s=lambda task_input: 0.0,
    submission=Submission("Submit text to reverse", JsonBody(ReverseRequest, lambda body: TaskInput(text=body.text))),
    result=ResultMedia.TEXT,
    cli=CliVerb("reverse", "Reverse a text.", _cli_arguments, _cli_submit),
    reward=reward,
    references=references,
    challenge=challenge,
    challenge_weight=0.0,
)
