"""What the validator computes itself before judging: the engine half of scoring.

Reward functions stay pure; these async builders run the models (ASR, VAD, embeddings, the
summarizer) in the engines' bounded worker pool, never on the event loop, and hand the results to
them as a references object. Answers that already fail a cheap check (bad audio, no speech) are
not sent to the expensive models, and identical audio is listened to once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protocol import DecodedAudio, decode_audio
from subnet_proxy.blobs.base import BlobError, BlobStore
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines.base import EngineError
from subnet_proxy.engines.embeddings import SentenceEmbedder
from subnet_proxy.engines.pool import Engines
from subnet_proxy.engines.vad import SpeechDetector
from subnet_proxy.rewards.audio_checks import AudioFacts, audio_problem, inspect_audio
from subnet_proxy.rewards.summarization import SummarizationReferences
from subnet_proxy.rewards.transcription import TranscriptionReferences
from subnet_proxy.rewards.tts import MIN_SPEECH_RATIO, TTSReferences
from subnet_proxy.tasks import MinerResponse, Task


@dataclass(frozen=True, slots=True)
class ScoringEngines:
    """The validator's models for scoring: D's engines plus sentence embeddings and speech detection.

    Everything runs in ``engines.pool`` so scoring shares the validator's bound on model calls.
    """

    engines: Engines
    embedder: SentenceEmbedder
    speech: SpeechDetector

    @classmethod
    def build(cls, engines: Engines, settings: EngineSettings) -> "ScoringEngines":
        """Load the scoring-only models (the embedding model from ``settings.embedding_model``)."""
        return cls(engines=engines, embedder=SentenceEmbedder.load(settings.embedding_model),
                   speech=SpeechDetector.load())


async def _transcribe(scoring: ScoringEngines, audio: DecodedAudio, language: str | None) -> str:
    try:
        return (await scoring.engines.transcribe(audio, language)).text
    except EngineError:
        return ""  # nothing intelligible: judged as an empty transcript


async def transcription_references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                                   scoring: ScoringEngines, blobs: BlobStore) -> TranscriptionReferences:
    """The validator's own transcript of the task's audio (skipped when the ground truth is known or no
    answer is valid: there is nothing to compare it with)."""
    if ground_truth is not None or not task.input.audio_blob or not any(r.valid for r in responses):
        return TranscriptionReferences(validator_transcript=None)
    try:
        data = await blobs.get(task.input.audio_blob)
        audio = await scoring.engines.pool.run(decode_audio, data)
    except (BlobError, ValueError):
        return TranscriptionReferences(validator_transcript=None)
    return TranscriptionReferences(validator_transcript=await _transcribe(scoring, audio, task.input.language))


async def _listen(text: str, data: bytes, scoring: ScoringEngines) -> tuple[AudioFacts, float | None, str | None]:
    """Facts, speech ratio and round-trip transcript of one returned file (engines only if it passes the checks)."""
    facts, audio = await scoring.engines.pool.run(inspect_audio, data)
    if audio is None or audio_problem(facts, text) is not None:
        return facts, None, None
    activity = await scoring.engines.pool.run(scoring.speech.activity, audio.samples, audio.sample_rate)
    if activity.ratio < MIN_SPEECH_RATIO:
        return facts, activity.ratio, None
    return facts, activity.ratio, await _transcribe(scoring, audio, "en")


async def tts_references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                         scoring: ScoringEngines, blobs: BlobStore) -> TTSReferences:
    """Per hotkey: audio facts, VAD speech ratio, and the validator's transcript of the returned audio."""
    text = ground_truth or task.input.text or ""
    keys = {r.hotkey: r.output_blob for r in responses if r.valid and r.output_blob}
    unique = sorted(set(keys.values()))

    async def fetch_and_listen(key: str) -> tuple[AudioFacts, float | None, str | None] | None:
        try:
            data = await blobs.get(key)
        except BlobError:
            return None
        return await _listen(text, data, scoring)

    heard = dict(zip(unique, await asyncio.gather(*(fetch_and_listen(k) for k in unique)), strict=True))
    audio, ratios, round_trip = {}, {}, {}
    for hotkey, key in keys.items():
        result = heard[key]
        if result is None:
            continue
        audio[hotkey] = result[0]
        if result[1] is not None:
            ratios[hotkey] = result[1]
        if result[2] is not None:
            round_trip[hotkey] = result[2]
    return TTSReferences(audio=audio, speech_ratio=ratios, round_trip=round_trip)


async def summarization_references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                                   scoring: ScoringEngines, blobs: BlobStore) -> SummarizationReferences:
    """The validator's own summary, the source's embedding and every answer's embedding."""
    source = task.input.text or ""
    answers = {r.hotkey: r.text for r in responses if r.valid and r.text and r.text.strip()}
    if not answers:  # nothing to judge: spare the models
        return SummarizationReferences(reference_summary="", source_embedding=np.zeros(0, dtype=np.float32))
    try:
        reference = await scoring.engines.summarize(source, task.input.max_words)
    except EngineError:
        reference = ""
    pool = scoring.engines.pool
    source_vector = await pool.run(scoring.embedder.embed_document, source)
    vectors = await pool.run(scoring.embedder.embed, list(answers.values()))
    return SummarizationReferences(reference_summary=reference, source_embedding=source_vector,
                                   summary_embeddings=dict(zip(answers, vectors, strict=True)))
