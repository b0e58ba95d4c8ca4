"""What the validator computes itself before judging: the engine half of scoring.

Reward functions stay pure; these async builders run the models (ASR, VAD, sentence embeddings)
in the engines' bounded worker pool, never on the event loop, and hand the results to
them as a references object. Answers that already fail a cheap check (bad audio, no speech) are
not sent to the expensive models, identical audio is listened to once, each file goes through VAD
once (its speech span is what ASR reads), and the ASR of scoring decodes deterministically
(temperature 0: the same audio gives the same reference on every run) through ``TranscriptBatcher``,
which transcribes a task's files, and other tasks' waiting clips, in one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from protocol import DecodedAudio, decode_audio, summary_word_bound, summary_words
from subnet_proxy.blobs.base import BlobError, BlobStore
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines.base import WHISPER_SAMPLE_RATE, EngineError, Transcript
from subnet_proxy.engines.batcher import TranscriptBatcher
from subnet_proxy.engines.embeddings import SentenceEmbedder
from subnet_proxy.engines.pool import Engines
from subnet_proxy.engines.resample import resample
from subnet_proxy.engines.vad import SpeechActivity, SpeechDetector
from subnet_proxy.languages import language_supported
from subnet_proxy.rewards.audio_checks import AudioFacts, audio_problem, inspect_audio
from subnet_proxy.rewards.summarization import ZERO_LENGTH_RATIO, SummarizationReferences
from subnet_proxy.rewards.text import normalize, sentences, words
from subnet_proxy.rewards.transcription import TranscriptionReferences, oversize
from subnet_proxy.rewards.tts import MIN_SPEECH_RATIO, TTSReferences
from subnet_proxy.tasks import MinerResponse, Task

#: seconds kept before the first and after the last speech when a clip is trimmed for ASR (as much as
#: faster-whisper's own VAD keeps around speech).
SPEECH_PAD_S = 0.4


@dataclass(frozen=True, slots=True)
class ScoringEngines:
    """The validator's models for scoring: D's engines plus sentence embeddings and speech detection.

    Everything runs in ``engines.pool`` so scoring shares the validator's bound on model calls; the
    ASR of scoring goes through ``listener``, which runs the clips asked for together in one call.
    """

    engines: Engines
    embedder: SentenceEmbedder
    speech: SpeechDetector
    listener: TranscriptBatcher

    @classmethod
    def build(cls, engines: Engines, settings: EngineSettings) -> "ScoringEngines":
        """Load the scoring-only models (the embedding model from ``settings.embedding_model``)."""
        return cls(engines=engines, embedder=SentenceEmbedder.load(settings.embedding_model),
                   speech=SpeechDetector.load(), listener=TranscriptBatcher(engines.transcriber, engines.pool))


def speech_clip(speech: SpeechDetector, audio: DecodedAudio) -> tuple[SpeechActivity, np.ndarray]:
    """Speech activity (one VAD pass) and the 16 kHz clip ASR reads: from ``SPEECH_PAD_S`` before the
    first speech to as long after the last (empty when there is no speech)."""
    activity = speech.activity(audio.samples, audio.sample_rate)
    if activity.speech_s <= 0:
        return activity, np.zeros(0, dtype=np.float32)
    rate, size = audio.sample_rate, len(audio.samples)
    start = max(0, int((activity.leading_s - SPEECH_PAD_S) * rate))
    end = min(size, size - int((activity.trailing_s - SPEECH_PAD_S) * rate))
    return activity, resample(audio.samples[start:end], rate, WHISPER_SAMPLE_RATE)


async def _transcribe(scoring: ScoringEngines, clips: Sequence[np.ndarray], language: str | None) -> list[str]:
    try:
        return await scoring.listener.transcribe(clips, language)
    except EngineError:
        return [""] * len(clips)  # nothing intelligible: judged as empty transcripts


async def _transcript(scoring: ScoringEngines, audio: DecodedAudio, language: str | None) -> Transcript | None:
    try:
        return await scoring.engines.reference_transcript(audio, language)
    except EngineError:
        return None  # nothing intelligible


async def _read_against_audio(scoring: ScoringEngines, audio: DecodedAudio, heard: Transcript,
                              responses: Sequence[MinerResponse]) -> dict[str, list[float]]:
    """Word probabilities of each distinct answer read against the audio ({} if the engine cannot)."""
    own = normalize(heard.text)
    texts = list(dict.fromkeys(text for r in responses if r.valid
                               and (text := normalize(r.text)) and not oversize(own, text)))
    if not texts:
        return {}
    try:
        read = await scoring.engines.word_probabilities(audio, heard, [words(s.text) for s in heard.segments],
                                                        [text.split() for text in texts])
    except EngineError:
        return {}
    return dict(zip(texts, read, strict=True)) if read is not None else {}


async def transcription_references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                                   scoring: ScoringEngines, blobs: BlobStore) -> TranscriptionReferences:
    """The validator's own transcript of the task's audio and each answer read against that audio
    (skipped when the ground truth is known, no answer is valid, or the language is one the validator
    cannot score)."""
    if ground_truth is not None or not task.input.audio_blob or not any(r.valid for r in responses):
        return TranscriptionReferences(validator_transcript=None)
    if not language_supported(task.input.language):  # refused at the door; one that got in is not judged
        return TranscriptionReferences(validator_transcript=None)
    try:
        data = await blobs.get(task.input.audio_blob)
        audio = await scoring.engines.pool.run(decode_audio, data)
    except (BlobError, ValueError):
        return TranscriptionReferences(validator_transcript=None)
    heard = await _transcript(scoring, audio, task.input.language)
    if heard is None or not normalize(heard.text):
        return TranscriptionReferences(validator_transcript="")
    return TranscriptionReferences(validator_transcript=heard.text,
                                   word_probabilities=await _read_against_audio(scoring, audio, heard, responses))


@dataclass(frozen=True, slots=True)
class _Heard:
    """What the validator learnt from one returned file (None: that engine was not run on it)."""

    facts: AudioFacts
    activity: SpeechActivity | None = None
    #: the speech to transcribe, when the file passed every check before the round trip.
    clip: np.ndarray | None = None


async def _listen(text: str, data: bytes, scoring: ScoringEngines) -> _Heard:
    """Facts and speech activity of one returned file, and its speech if it passes the checks."""
    facts, audio = await scoring.engines.pool.run(inspect_audio, data)
    if audio is None or audio_problem(facts, text) is not None:
        return _Heard(facts)
    activity, clip = await scoring.engines.pool.run(speech_clip, scoring.speech, audio)
    if activity.ratio < MIN_SPEECH_RATIO:
        return _Heard(facts, activity)
    return _Heard(facts, activity, clip)


async def tts_references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                         scoring: ScoringEngines, blobs: BlobStore) -> TTSReferences:
    """Per hotkey: audio facts, VAD speech ratio, and the validator's transcript of the returned audio.

    Each distinct file is checked once; the files that pass are transcribed together (one call)."""
    text = ground_truth or task.input.text or ""
    keys = {r.hotkey: r.output_blob for r in responses if r.valid and r.output_blob}
    unique = sorted(set(keys.values()))

    async def fetch_and_listen(key: str) -> _Heard | None:
        try:
            data = await blobs.get(key)
        except BlobError:
            return None
        return await _listen(text, data, scoring)

    heard = dict(zip(unique, await asyncio.gather(*(fetch_and_listen(k) for k in unique)), strict=True))
    clips = {key: h.clip for key, h in heard.items() if h is not None and h.clip is not None}
    said = dict(zip(clips, await _transcribe(scoring, list(clips.values()), "en"), strict=True))
    found = {hotkey: (result, said.get(key)) for hotkey, key in keys.items() if (result := heard[key]) is not None}
    return TTSReferences(
        audio={h: r.facts for h, (r, _) in found.items()},
        speech_ratio={h: r.activity.ratio for h, (r, _) in found.items() if r.activity is not None},
        round_trip={h: trip for h, (_, trip) in found.items() if trip is not None},
        edge_silence_s={h: (r.activity.leading_s, r.activity.trailing_s) for h, (r, _) in found.items()
                        if r.activity is not None},
    )


async def summarization_references(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                                   scoring: ScoringEngines, blobs: BlobStore) -> SummarizationReferences:
    """Sentence embeddings of the source and of every answer (one batch: the model sees each sentence once)."""
    limit = ZERO_LENGTH_RATIO * summary_word_bound(task.input.text or "", task.input.max_words)
    answers = {r.hotkey: sentences(r.text) for r in responses
               if r.valid and r.text and r.text.strip() and summary_words(r.text) <= limit}  # oversize: never embedded
    source = sentences(task.input.text)
    if not answers or not source:  # nothing to judge: spare the model
        return SummarizationReferences(source_vectors=np.zeros((0, 0), dtype=np.float32))
    # Each distinct sentence once: an extract repeats source sentences, and miners often share sentences.
    row_of = {sentence: row for row, sentence in enumerate(dict.fromkeys([*source, *chain(*answers.values())]))}
    vectors = await scoring.engines.pool.run(scoring.embedder.embed, list(row_of))
    return SummarizationReferences(
        source_vectors=vectors[[row_of[s] for s in source]],
        summary_vectors={hotkey: vectors[[row_of[s] for s in parts]] for hotkey, parts in answers.items()})
