"""Transcription: an audio file in, its transcript (and optional timed segments) out.

The input audio lives in the BlobStore (the client's upload, checked and stored by the server) and
travels base64 in ``TranscriptionSynapse``. Synthetic challenges are spoken by the validator's own
TTS, then mildly augmented (gain, background noise, speed) and encoded in a random container at a
random common sample rate, so the same text never yields the same bytes twice; what remains
recognisable is the validator's one shipped voice, and a miner that could tell it apart would
still have to transcribe it.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from pathlib import Path
from typing import Any

from protocol import (
    MAX_TRANSCRIPT_CHARS,
    TranscriptionSynapse,
    b64encode,
    decode_audio,
    encode_audio,
)
from protocol.synapses import MAX_SEGMENTS
from subnet_proxy.api.schemas import TaskAccepted
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.engines.pool import Engines
from subnet_proxy.kinds.base import (
    AudioProbe,
    AudioUpload,
    BadTaskInput,
    CliVerb,
    KindSpec,
    Output,
    RawAnswer,
    ResultMedia,
    Submission,
    Submitter,
)
from subnet_proxy.kinds.challenges import Challenge, ChallengeError, Corpus, augment, synthetic_task
from subnet_proxy.kinds.checks import check_text
from subnet_proxy.rewards.references import transcription_references
from subnet_proxy.rewards.text import word_error_rate
from subnet_proxy.rewards.transcription import reward_transcription
from subnet_proxy.tasks import Task, TaskInput, TaskKind

#: seconds of work allowed per second of audio on top of the base timeout (CPU reference engines,
#: Whisper tiny ~0.1x real time).
ASR_S_PER_AUDIO_S = 0.5
#: containers and sample rates a client might upload (the voice's own rate would mark a challenge).
AUDIO_FORMATS = ("wav", "flac", "ogg")
SAMPLE_RATES = (16_000, 22_050, 24_000, 44_100, 48_000)
#: sentences per challenge.
TRANSCRIPTION_SENTENCES = (1, 3)
#: a spoken challenge is kept only if the validator's own ASR hears it this well (Piper's takes vary:
#: now and then one swallows words, and its ground truth would then no longer be what was said).
SELF_CHECK_MAX_WER = 0.25
SELF_CHECK_TRIES = 3


async def synapse_inputs(task: Task, blobs: BlobStore) -> dict[str, Any]:
    data = task.input
    if not data.audio_blob or not data.audio_format:
        raise BadTaskInput("transcription task without audio")
    audio = await blobs.get(data.audio_blob)
    return {"audio_b64": b64encode(audio), "audio_format": data.audio_format, "language": data.language}


def answer_of(synapse: TranscriptionSynapse) -> RawAnswer:
    return RawAnswer(text=synapse.transcript, segments=synapse.segments)


async def check_answer(raw: RawAnswer, probe: AudioProbe) -> Output:
    return check_text(TaskKind.TRANSCRIPTION, raw, limit=MAX_TRANSCRIPT_CHARS, segments=True)


def extra_timeout_s(task_input: TaskInput) -> float:
    return ASR_S_PER_AUDIO_S * (task_input.audio_seconds or 0.0)


async def transcription_challenge(engines: Engines, corpus: Corpus, rng: random.Random, *, owner: str) -> Challenge:
    """Speak a fresh composition and keep it only once the validator's own ASR hears the ground truth
    in the very bytes miners will get (SELF_CHECK_MAX_WER): the truth must be checkable."""
    heard_wer = 1.0
    for _ in range(SELF_CHECK_TRIES):
        text = " ".join(corpus.random_sentences(rng, rng.randint(*TRANSCRIPTION_SENTENCES)))
        rate = rng.choice(SAMPLE_RATES)
        speech = await engines.synthesize(text, sample_rate=rate)
        samples = augment(speech.samples, rate, rng)
        fmt = rng.choice(AUDIO_FORMATS)
        data = encode_audio(samples, rate, fmt)
        heard_wer = word_error_rate(text, (await engines.transcribe(decode_audio(data))).text)
        if heard_wer <= SELF_CHECK_MAX_WER:
            key = hashlib.sha256(data).hexdigest()
            task_input = TaskInput(audio_blob=key, audio_format=fmt, audio_seconds=round(len(samples) / rate, 3),
                                   language=rng.choice((None, "en")))
            return Challenge(task=synthetic_task(TaskKind.TRANSCRIPTION, owner, task_input, text), blobs={key: data})
    raise ChallengeError(f"no spoken take passed the hearing check in {SELF_CHECK_TRIES} tries "
                         f"(last WER {heard_wer:.2f})")


def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--language")


async def _cli_submit(client: Submitter, path: str, args: argparse.Namespace) -> TaskAccepted:
    return await client.submit_audio(path, args.file, language=args.language, idempotency_key=args.idempotency_key,
                                     callback_url=args.callback_url)


SPEC: KindSpec[TranscriptionSynapse] = KindSpec(
    kind=TaskKind.TRANSCRIPTION,
    synapse=TranscriptionSynapse,
    synapse_inputs=synapse_inputs,
    answer_of=answer_of,
    check_answer=check_answer,
    # JSON escaping can take 6 bytes a character, and each segment carries its timing.
    max_output_bytes=6 * MAX_TRANSCRIPT_CHARS + 200 * MAX_SEGMENTS,
    extra_timeout_s=extra_timeout_s,
    submission=Submission(
        "Submit audio for transcription", AudioUpload(),
        description="The audio is decoded before the task is accepted: non-audio bytes (415), empty or "
                    "corrupt audio (400), audio over the duration or size limit (413) are refused. "
                    "Send `Idempotency-Key` to make a retried submit return the same task."),
    result=ResultMedia.TEXT,
    cli=CliVerb("transcription", "Transcribe an audio file.", _cli_arguments, _cli_submit),
    reward=reward_transcription,
    references=transcription_references,
    challenge=transcription_challenge,
    challenge_weight=0.4,
)
