"""Synthetic challenges, the shared part: the corpus, audio augmentation, and what a generator returns.

Challenges are tasks with a known answer that a miner cannot look up or tell apart. Each is a fresh
random composition of sentences from the corpus shipped in ``subnet_proxy/data/corpus.txt`` (300
sentences, 25 topics: more combinations than any miner could tabulate); each kind's module holds its
own generator (``KindSpec.challenge``: spoken and augmented audio for transcription, plain text for
TTS and summarization). A challenge carries its ground truth (never sent to miners) and uses exactly
the input fields a client task uses, so on the wire it looks like any other request.
"""

from __future__ import annotations

import importlib.resources
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from subnet_proxy.engines.pool import Engines
from subnet_proxy.engines.resample import resample
from subnet_proxy.tasks import Task, TaskInput

#: augmentation ranges: mild enough that a good ASR still hears every word.
GAIN_DB = (-6.0, 0.0)
SNR_DB = (22.0, 40.0)
SPEED = (0.92, 1.08)


class CorpusError(ValueError):
    """The corpus file is missing, empty or malformed."""


class ChallengeError(RuntimeError):
    """A generator could not make a checkable challenge (a spoken take failed the validator's own hearing)."""


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
    """A challenge generator (a kind's ``KindSpec.challenge``)."""

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


def synthetic_task(kind: str, owner: str, task_input: TaskInput, ground_truth: str | None) -> Task:
    return Task(kind=kind, owner=owner, input=task_input, ground_truth=ground_truth, synthetic=True)
