"""Text to speech: a text (and optional voice) in, an encoded audio file out.

The answer's audio is probed on intake, whichever way it came (a file that does not decode is
refused there, not at scoring), stored in the BlobStore, and served to the client as audio bytes.
Synthetic challenges are plain corpus text whose ground truth is the text itself.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from protocol import TTS_VOICES, TTSSynapse
from protocol.synapses import MAX_AUDIO_B64_CHARS
from subnet_proxy.api.schemas import TaskAccepted, TTSRequest
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
from subnet_proxy.kinds.checks import check_audio
from subnet_proxy.rewards.references import tts_references
from subnet_proxy.rewards.tts import reward_tts
from subnet_proxy.tasks import Task, TaskInput, TaskKind

#: seconds of work allowed per character on top of the base timeout (Piper ~0.2x real time on CPU).
TTS_S_PER_CHAR = 0.02
#: sentences per challenge.
TTS_SENTENCES = (1, 2)


async def synapse_inputs(task: Task, blobs: BlobStore) -> dict[str, Any]:
    return {"text": task.input.text or "", "voice": task.input.voice}


def answer_of(synapse: TTSSynapse) -> RawAnswer:
    return RawAnswer(audio_b64=synapse.audio_b64)


async def check_answer(raw: RawAnswer, probe: AudioProbe) -> Output:
    return await check_audio("TTS", raw, probe)


def extra_timeout_s(task_input: TaskInput) -> float:
    return TTS_S_PER_CHAR * len(task_input.text or "")


def request_input(body: TTSRequest) -> TaskInput:
    return TaskInput(text=body.text, voice=body.voice)


async def tts_challenge(engines: Engines, corpus: Corpus, rng: random.Random, *, owner: str) -> Challenge:
    text = " ".join(corpus.random_sentences(rng, rng.randint(*TTS_SENTENCES)))
    return Challenge(task=synthetic_task(TaskKind.TTS, owner, TaskInput(text=text), text), blobs={})


def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text")
    parser.add_argument("--voice", choices=TTS_VOICES, help="a voice the subnet serves (default: its default)")


async def _cli_submit(client: Submitter, path: str, args: argparse.Namespace) -> TaskAccepted:
    return await client.submit(path, TTSRequest(text=args.text, voice=args.voice, callback_url=args.callback_url),
                               idempotency_key=args.idempotency_key)


SPEC: KindSpec[TTSSynapse] = KindSpec(
    kind=TaskKind.TTS,
    synapse=TTSSynapse,
    synapse_inputs=synapse_inputs,
    answer_of=answer_of,
    check_answer=check_answer,
    max_output_bytes=MAX_AUDIO_B64_CHARS + 4096,
    extra_timeout_s=extra_timeout_s,
    submission=Submission("Submit text to speak", JsonBody(TTSRequest, request_input)),
    result=ResultMedia.AUDIO,
    cli=CliVerb("tts", "Speak a text (writes audio; implies --wait).", _cli_arguments, _cli_submit),
    reward=reward_tts,
    references=tts_references,
    challenge=tts_challenge,
    challenge_weight=0.3,
)
