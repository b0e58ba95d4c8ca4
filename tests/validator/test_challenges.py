"""Synthetic challenges: drawn from the shipped corpus, spoken and augmented, with checkable ground truth."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from protocol import decode_audio
from subnet_proxy.blobs.base import blob_key
from subnet_proxy.engines.base import Transcript
from subnet_proxy.kinds.challenges import ChallengeError, Corpus, CorpusError, augment
from subnet_proxy.kinds.summarization import summarization_challenge
from subnet_proxy.kinds.transcription import SELF_CHECK_TRIES, transcription_challenge
from subnet_proxy.kinds.tts import tts_challenge
from subnet_proxy.rewards.text import word_error_rate
from subnet_proxy.tasks import TaskInput, TaskKind


def test_shipped_corpus_has_hundreds_of_sentences_in_topics() -> None:
    corpus = Corpus.load()
    assert len(corpus.sentences) == 300 and len(corpus.topics) == 25
    assert len(set(corpus.sentences)) == 300
    assert not any(ch.isdigit() for s in corpus.sentences for ch in s)


def test_corpus_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read"):
        Corpus.load(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# only a comment\n")
    with pytest.raises(CorpusError, match="no sentences"):
        Corpus.load(tmp_path / "empty.txt")
    (tmp_path / "orphan.txt").write_text("A sentence before any topic.\n")
    with pytest.raises(CorpusError, match="before the first"):
        Corpus.load(tmp_path / "orphan.txt")


def test_passages_keep_topic_order_and_vary() -> None:
    corpus = Corpus.load()
    rng = random.Random(1)
    passages = [corpus.random_passage(rng, 2, (4, 7)) for _ in range(50)]
    assert len(set(passages)) == 50
    for passage in passages[:10]:
        paragraphs = passage.split("\n\n")
        assert len(paragraphs) == 2
        for paragraph in paragraphs:  # one topic each, its sentences in their original order
            topic = next(t for t in corpus.topics if paragraph.startswith(tuple(t)))
            positions = [i for i, sentence in enumerate(topic) if sentence in paragraph]
            assert 4 <= len(positions) <= 7
            assert paragraph == " ".join(topic[i] for i in positions)


def test_augmentation_keeps_the_signal_but_never_the_bytes() -> None:
    rate = 16_000
    t = np.arange(rate) / rate
    clean = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    a, b = augment(clean, rate, random.Random(1)), augment(clean, rate, random.Random(2))
    assert not np.array_equal(a, b)
    for out in (a, b):
        assert 0.9 * rate < out.size < 1.1 * rate and np.abs(out).max() <= 1.0
        assert np.abs(out).max() > 0.1


async def test_text_challenges_look_like_client_tasks(engines) -> None:
    rng = random.Random(5)
    tts = (await tts_challenge(engines, Corpus.load(), rng, owner="synthetic:hk")).task
    summary = (await summarization_challenge(engines, Corpus.load(), rng, owner="synthetic:hk")).task
    assert tts.kind is TaskKind.TTS and tts.synthetic and tts.ground_truth == tts.input.text
    assert summary.kind is TaskKind.SUMMARIZATION and summary.synthetic and summary.ground_truth is None
    bounds = [(await summarization_challenge(engines, Corpus.load(), random.Random(seed), owner="synthetic:hk")).task
              .input for seed in range(20)]
    named = [i for i in bounds if i.max_words is not None]
    assert 0 < len(named) < len(bounds)  # some name a bound, some leave it to the default rule, as clients do
    assert all(i.max_words < 0.4 * len((i.text or "").split()) for i in named)  # type: ignore[operator]
    for task in (tts, summary):  # only fields a client can set; nothing that marks it synthetic
        assert set(task.input.model_dump(exclude_none=True)) <= set(TaskInput.model_fields)
        assert task.owner == "synthetic:hk"


@pytest.mark.slow
async def test_transcription_challenge_is_spoken_truth(engines) -> None:
    corpus = Corpus.load()
    made = [await transcription_challenge(engines, corpus, random.Random(seed), owner="synthetic:hk")
            for seed in (21, 22, 23)]
    errors = []
    for challenge in made:
        task = challenge.task
        (key, data), = challenge.blobs.items()
        assert key == blob_key(data) == task.input.audio_blob
        audio = decode_audio(data)
        assert audio.format == task.input.audio_format
        assert audio.duration_s == pytest.approx(task.input.audio_seconds, abs=0.01)
        heard = (await engines.transcribe(audio)).text
        errors.append(word_error_rate(task.ground_truth or "", heard))
        assert errors[-1] < 0.5, (task.ground_truth, heard)
    # Whisper tiny.en averages ~0.07 WER on these (Piper's voice varies between takes; a take can cost a word or two).
    assert sum(errors) / len(errors) < 0.25, errors
    assert len({c.task.input.audio_blob for c in made}) == 3


class _Hearing:
    """The real TTS with a scripted ear: the first ``deaf`` transcriptions hear nothing."""

    def __init__(self, engines, deaf: int) -> None:
        self.engines, self.deaf, self.spoken = engines, deaf, []

    async def synthesize(self, text, **kw):
        self.spoken.append(text)
        return await self.engines.synthesize(text, **kw)

    async def transcribe(self, audio, language=None):
        self.deaf -= 1
        return Transcript(text="" if self.deaf >= 0 else self.spoken[-1], segments=(), language="en")


@pytest.mark.slow
async def test_a_take_the_validator_cannot_hear_is_never_issued(engines) -> None:
    ear = _Hearing(engines, deaf=1)
    challenge = await transcription_challenge(ear, Corpus.load(), random.Random(5), owner="synthetic:hk")
    assert len(ear.spoken) == 2 and challenge.task.ground_truth == ear.spoken[-1]

    never = _Hearing(engines, deaf=SELF_CHECK_TRIES)
    with pytest.raises(ChallengeError, match="hearing check"):
        await transcription_challenge(never, Corpus.load(), random.Random(5), owner="synthetic:hk")
    assert len(never.spoken) == SELF_CHECK_TRIES
