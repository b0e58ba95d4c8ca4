"""Real ASR, TTS and summarization engines running the models shipped in PyPI wheels.

``base`` holds the interfaces and errors, ``pool`` the bounded worker pool and the async
``Engines`` facade, ``asr``/``tts``/``summarizer`` the implementations. ``build_engines`` wires the
configured ones together; nothing loads until first use or ``await engines.load()``.
"""

from __future__ import annotations

from subnet_proxy.config import EngineSettings
from subnet_proxy.engines.asr import WhisperTranscriber
from subnet_proxy.engines.base import (
    EngineError,
    EngineInputError,
    ModelLoadError,
    Speech,
    Summarizer,
    Synthesizer,
    Transcriber,
    Transcript,
    TranscriptSegment,
)
from subnet_proxy.engines.pool import Engines, WorkerPool
from subnet_proxy.engines.summarizer import LexRankSummarizer
from subnet_proxy.engines.tts import PiperSynthesizer


def build_engines(settings: EngineSettings) -> Engines:
    """The configured transcriber, synthesizer and summarizer behind one bounded worker pool."""
    return Engines(transcriber=WhisperTranscriber(settings), synthesizer=PiperSynthesizer(settings),
                   summarizer=LexRankSummarizer(), workers=settings.workers, nice=settings.nice)


__all__ = [
    "EngineError",
    "EngineInputError",
    "Engines",
    "LexRankSummarizer",
    "ModelLoadError",
    "PiperSynthesizer",
    "Speech",
    "Summarizer",
    "Synthesizer",
    "Transcriber",
    "Transcript",
    "TranscriptSegment",
    "WhisperTranscriber",
    "WorkerPool",
    "build_engines",
]
