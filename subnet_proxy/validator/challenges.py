"""Synthetic challenges: tasks with a known answer that a miner cannot look up or tell apart.

Each challenge is a fresh random composition of sentences from the corpus shipped in
``subnet_proxy/data/corpus.txt`` (300 sentences, 25 topics: more combinations than any miner could
tabulate). Transcription challenges are spoken by the validator's own TTS, then mildly augmented
(gain, background noise, speed) and encoded in a random container at a random common sample rate,
so the same text never yields the same bytes twice. TTS and summarization challenges are plain
text. The task carries its ground truth (never sent to miners) and uses exactly the input fields a
client task uses, so on the wire it looks like any other request. What remains recognisable is the
validator's one shipped voice: a miner that could tell it apart would still have to transcribe it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from protocol import decode_audio, encode_audio
from subnet_proxy.engines.pool import Engines
from subnet_proxy.engines.resample import resample
from subnet_proxy.tasks import Task, TaskInput, TaskKind

#: augmentation ranges: mild enough that a good ASR still hears every word.
GAIN_DB = (-6.0, 0.0)
SNR_DB = (22.0, 40.0)
SPEED = (0.92, 1.08)
#: containers and sample rates a client might upload (the voice's own rate would mark a challenge).
AUDIO_FORMATS = ("wav", "flac", "ogg")
SAMPLE_RATES = (16_000, 22_050, 24_000, 44_100, 48_000)
#: sentences per challenge, by kind.
TRANSCRIPTION_SENTENCES = (1, 3)
TTS_SENTENCES = (1, 2)
SUMMARY_TOPICS = (2, 3)
SUMMARY_SENTENCES_PER_TOPIC = (4, 7)
#: summary bound as a share of the source's words.
SUMMARY_BOUND_SHARE = (0.15, 0.3)
#: a spoken challenge is kept only if the validator's own ASR hears it this well (Piper's takes vary:
#: now and then one swallows words, and its ground truth would then no longer be what was said).
SELF_CHECK_MAX_WER = 0.25
SELF_CHECK_TRIES = 3


class CorpusError(ValueError):
    """The corpus file is missing, empty or malformed."""


class ChallengeError(RuntimeError):
    """No take of a spoken challenge passed the validator's own hearing check."""


@dataclass(frozen=True, slots=True)
class Corpus:
    """Sentences grouped by topic (topics keep summarization sources coherent)."""

    topics: tuple[tuple[str, ...], ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Corpus":
        """Read a corpus file (default: the shipped one): ``## topic`` lines open topics, ``#`` lines are comments."""
        if path is None:
            text = importlib.resources.files("subnet_proxy").joinpath("data", "corpus.txt").read_text("utf-8")
        else:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise CorpusError(f"cannot read corpus {path}: {exc}") from exc
        topics: list[list[str]] = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("## "):
                topics.append([])
            elif line and not line.startswith("#"):
                if not topics:
                    raise CorpusError("corpus sentence before the first '## topic' line")
                topics[-1].append(line)
        kept = tuple(tuple(t) for t in topics if t)
        if not kept:
            raise CorpusError("corpus has no sentences")
        return cls(topics=kept)

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(s for topic in self.topics for s in topic)

    def random_sentences(self, rng: random.Random, count: int) -> list[str]:
        """``count`` distinct sentences from anywhere in the corpus, in random order."""
        return rng.sample(self.sentences, min(count, len(self.sentences)))

    def random_passage(self, rng: random.Random, topics: int, per_topic: tuple[int, int]) -> str:
        """Paragraphs from ``topics`` random topics, each a random in-order selection of its sentences."""
        paragraphs = []
        for topic in rng.sample(self.topics, min(topics, len(self.topics))):
            count = min(len(topic), rng.randint(*per_topic))
            picked = sorted(rng.sample(range(len(topic)), count))
            paragraphs.append(" ".join(topic[i] for i in picked))
        return "\n\n".join(paragraphs)


@dataclass(frozen=True, slots=True)
class Challenge:
    """A synthetic task and the input blobs (content key -> bytes) to store before it is dispatched."""

    task: Task
    blobs: dict[str, bytes]


class ChallengeFn(Protocol):
    """A challenge generator (the registry keeps one per task kind)."""

    async def __call__(self, engines: Engines, corpus: Corpus, rng: random.Random, *, owner: str) -> Challenge: ...


def augment(samples: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
    """Random speed (resampling), gain and white noise at a random SNR: same words, never the same bytes."""
    speed = rng.uniform(*SPEED)
    out = resample(samples, rate, max(1, int(round(rate / speed))))
    out = out * np.float32(10 ** (rng.uniform(*GAIN_DB) / 20))
    power = float(np.mean(np.square(out, dtype=np.float64))) or 1e-12
    noise_power = power / 10 ** (rng.uniform(*SNR_DB) / 10)
    noise = np.random.default_rng(rng.getrandbits(64)).normal(0.0, np.sqrt(noise_power), out.size)
    return np.clip(out + noise.astype(np.float32), -1.0, 1.0).astype(np.float32)


def _synthetic(kind: TaskKind, owner: str, task_input: TaskInput, ground_truth: str | None) -> Task:
    return Task(kind=kind, owner=owner, input=task_input, ground_truth=ground_truth, synthetic=True)


async def transcription_challenge(engines: Engines, corpus: Corpus, rng: random.Random, *, owner: str) -> Challenge:
    """Speak a fresh composition and keep it only once the validator's own ASR hears the ground truth
    in the very bytes miners will get (SELF_CHECK_MAX_WER): the truth must be checkable."""
    # Imported here: the rewards registry imports this module, and rewards.text is a leaf of it.
    from subnet_proxy.rewards.text import word_error_rate

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
            return Challenge(task=_synthetic(TaskKind.TRANSCRIPTION, owner, task_input, text), blobs={key: data})
    raise ChallengeError(f"no spoken take passed the hearing check in {SELF_CHECK_TRIES} tries "
                         f"(last WER {heard_wer:.2f})")


async def tts_challenge(engines: Engines, corpus: Corpus, rng: random.Random, *, owner: str) -> Challenge:
    text = " ".join(corpus.random_sentences(rng, rng.randint(*TTS_SENTENCES)))
    return Challenge(task=_synthetic(TaskKind.TTS, owner, TaskInput(text=text), text), blobs={})


async def summarization_challenge(engines: Engines, corpus: Corpus, rng: random.Random, *,
                                  owner: str) -> Challenge:
    source = corpus.random_passage(rng, rng.randint(*SUMMARY_TOPICS), SUMMARY_SENTENCES_PER_TOPIC)
    bound = max(10, int(len(source.split()) * rng.uniform(*SUMMARY_BOUND_SHARE)))
    return Challenge(task=_synthetic(TaskKind.SUMMARIZATION, owner, TaskInput(text=source, max_words=bound), None),
                     blobs={})

