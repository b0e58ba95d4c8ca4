"""The engine interfaces: speech to text, text to speech, summarization, and their errors.

The reference miner answers with these engines and the validator uses the same ones for its own
checks (round-trip transcription of TTS answers, reference transcripts and summaries, synthetic
challenge audio). Engines are synchronous and CPU/GPU bound; ``engines.pool.Engines`` runs them in a
bounded worker pool so no event loop ever blocks on a model.

Errors::

    EngineError                  any engine failure
     +-- ModelLoadError          a model file or package is missing or unreadable (names which)
     +-- EngineInputError        the input cannot be processed (empty text, no samples, bad language)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from protocol import DecodedAudio

#: the rate Whisper models expect; transcribers resample anything else to it.
WHISPER_SAMPLE_RATE = 16_000


class EngineError(Exception):
    """An engine could not do its job."""


class ModelLoadError(EngineError):
    """A model could not be loaded; ``source`` names the package or path that is missing or bad."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(f"{message} ({source})")
        self.source = source


class EngineInputError(EngineError):
    """The input is unusable for this engine (the caller's fault, not the model's)."""


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One timed piece of a transcript, in seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcript: the whole text, its ordered segments and the language spoken (ISO 639)."""

    text: str
    segments: tuple[TranscriptSegment, ...]
    language: str | None


class Speech(NamedTuple):
    """Synthesized mono float32 samples in [-1, 1] and their sample rate; unpacks as ``(samples, rate)``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate) if self.sample_rate else 0.0


class Transcriber(abc.ABC):
    """Speech to text."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model now (idempotent); raises ModelLoadError naming what is missing."""

    @abc.abstractmethod
    def transcribe(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        """Transcribe decoded mono audio; ``language`` None means detect (or the model's only one)."""

    def transcribe_many(self, clips: Sequence[np.ndarray], language: str | None = None) -> list[str]:
        """The texts of 16 kHz mono clips, for scoring: an engine may decode them together and should
        decode them deterministically; by default, one ``transcribe`` each."""
        return [self.transcribe(DecodedAudio(clip, WHISPER_SAMPLE_RATE, "pcm"), language).text if clip.size else ""
                for clip in clips]

    def reference_transcript(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        """The validator's own transcript of a client's audio, for scoring: timed segments (they place
        the answers' words for ``word_probabilities``; the finer the better, a word each at best),
        deterministic where the engine can be; by default ``transcribe``."""
        return self.transcribe(audio, language)

    def word_probabilities(self, audio: DecodedAudio, heard: Transcript, heard_words: Sequence[Sequence[str]],
                           hypotheses: Sequence[Sequence[str]]) -> list[list[float]] | None:
        """For each hypothesis (a list of words), the probability the model gives each word when made to
        read that hypothesis against the audio: how well the audio supports it, whatever the model's own
        transcript says. ``heard`` is this engine's transcript of ``audio`` (it places the words in time),
        ``heard_words[k]`` the words of its segment k spelled as the hypotheses are.

        None: this engine cannot read a given text against audio (the reward then falls back to a
        tolerance around the engine's own transcript).
        """
        return None


class Synthesizer(abc.ABC):
    """Text to speech."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load the voice now (idempotent); raises ModelLoadError naming what is missing."""

    @abc.abstractmethod
    def synthesize(self, text: str, voice: str | None = None, sample_rate: int | None = None) -> Speech:
        """Speak ``text``; ``voice`` None is the configured voice, ``sample_rate`` None the voice's own rate."""


class Summarizer(abc.ABC):
    """Text to a shorter text."""

    @abc.abstractmethod
    def load(self) -> None:
        """Prepare the summarizer (idempotent); raises ModelLoadError naming what is missing."""

    @abc.abstractmethod
    def summarize(self, text: str, max_words: int | None = None) -> str:
        """A summary of ``text`` of at most ``max_words`` words (None: the engine's default bound)."""
