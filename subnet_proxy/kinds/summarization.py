"""Summarization: a source text (and optional word bound) in, its summary out.

Synthetic challenges are passages of two or three corpus topics; they have no ground truth (a summary
is judged against the source). Like clients, half of them name a word bound (a share of the source's
length) and half leave it to the protocol's default rule: a challenge that always named one would be
told apart from client tasks by the bound every synapse carries.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

from protocol import MAX_SUMMARY_CHARS, SummarizationSynapse
from subnet_proxy.api.schemas import SummarizationRequest, TaskAccepted
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.engines.pool import Engines
from subnet_proxy.kinds.base import (
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
from subnet_proxy.rewards.references import summarization_references
from subnet_proxy.rewards.summarization import reward_summarization
from subnet_proxy.tasks import Task, TaskInput, TaskKind

#: seconds of work allowed per source character on top of the base timeout.
SUMMARY_S_PER_CHAR = 0.0001
SUMMARY_TOPICS = (2, 3)
SUMMARY_SENTENCES_PER_TOPIC = (4, 7)
#: summary bound as a share of the source's words, when a challenge names one.
SUMMARY_BOUND_SHARE = (0.15, 0.3)
#: how often a challenge names its bound instead of leaving it to ``protocol.summary_word_bound``.
NAMED_BOUND_SHARE = 0.5


async def synapse_inputs(task: Task, blobs: BlobStore) -> dict[str, Any]:
    return {"text": task.input.text or "", "max_words": task.input.max_words}


def answer_of(synapse: SummarizationSynapse) -> RawAnswer:
    return RawAnswer(text=synapse.summary)


async def check_answer(raw: RawAnswer, probe: AudioProbe) -> Output:
    return check_text(TaskKind.SUMMARIZATION, raw, limit=MAX_SUMMARY_CHARS)


def extra_timeout_s(task_input: TaskInput) -> float:
    return SUMMARY_S_PER_CHAR * len(task_input.text or "")


def request_input(body: SummarizationRequest) -> TaskInput:
    return TaskInput(text=body.text, max_words=body.max_words)


async def summarization_challenge(engines: Engines, corpus: Corpus, rng: random.Random, *,
                                  owner: str) -> Challenge:
    source = corpus.random_passage(rng, rng.randint(*SUMMARY_TOPICS), SUMMARY_SENTENCES_PER_TOPIC)
    named = rng.random() < NAMED_BOUND_SHARE
    bound = max(10, int(len(source.split()) * rng.uniform(*SUMMARY_BOUND_SHARE))) if named else None
    task_input = TaskInput(text=source, max_words=bound)
    return Challenge(task=synthetic_task(TaskKind.SUMMARIZATION, owner, task_input, None), blobs={})


def _text_arg(value: str) -> str:
    """Text given inline, as ``@file``, or ``-`` for standard input."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value


def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text")
    parser.add_argument("--max-words", type=int)


async def _cli_submit(client: Submitter, path: str, args: argparse.Namespace) -> TaskAccepted:
    body = SummarizationRequest(text=_text_arg(args.text), max_words=args.max_words, callback_url=args.callback_url)
    return await client.submit(path, body, idempotency_key=args.idempotency_key)


SPEC: KindSpec[SummarizationSynapse] = KindSpec(
    kind=TaskKind.SUMMARIZATION,
    synapse=SummarizationSynapse,
    synapse_inputs=synapse_inputs,
    answer_of=answer_of,
    check_answer=check_answer,
    max_output_bytes=6 * MAX_SUMMARY_CHARS + 4096,  # JSON escaping can take 6 bytes a character
    extra_timeout_s=extra_timeout_s,
    submission=Submission("Submit text to summarize", JsonBody(SummarizationRequest, request_input)),
    result=ResultMedia.TEXT,
    cli=CliVerb("summarize", "Summarize a text (inline, @file or -).", _cli_arguments, _cli_submit,
                aliases=("summarization",)),
    reward=reward_summarization,
    references=summarization_references,
    challenge=summarization_challenge,
    challenge_weight=0.3,
)
