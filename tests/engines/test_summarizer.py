"""LexRank + pysbd summaries: within the word budget, drawn from the source, sane on odd inputs."""

from __future__ import annotations

import random

import pytest

from protocol import summary_word_bound
from subnet_proxy.engines import EngineInputError, LexRankSummarizer
from subnet_proxy.engines.summarizer import MAX_SOURCE_SHARE, _blocks

ARTICLE = """The history of the city goes back two thousand years. It was founded by traders who crossed the river.
Dr. Smith studied its walls in 1923 and found three layers of stone from three different ages.

Over the centuries the city grew into a major port on the river. Ships from many countries brought spices, silk
and news to the port. The port made the merchants rich, and the merchants built churches and schools in the city.

Today the city is known for its university and its old market. Tourists come every summer to walk along the city
walls. The river is still busy, although most ships now carry containers instead of spices."""


@pytest.fixture(scope="module")
def summarizer() -> LexRankSummarizer:
    return LexRankSummarizer()


@pytest.mark.parametrize("max_words", [5, 12, 25, 40, 2000, None])
def test_summary_honours_max_words(summarizer, max_words):
    summary = summarizer.summarize(ARTICLE, max_words)
    bound = min(summary_word_bound(ARTICLE, max_words), int(len(ARTICLE.split()) * MAX_SOURCE_SHARE))
    assert 1 <= len(summary.split()) <= bound


def test_summary_is_whole_source_sentences_in_order(summarizer):
    flat = " ".join(ARTICLE.split())
    sentences = [s.strip() for s in flat.replace("Dr. ", "Dr~ ").split(". ")]
    sentences = [s.replace("Dr~", "Dr.").rstrip(".") + "." for s in sentences]
    summary = summarizer.summarize(ARTICLE, 40)
    picked = [s for s in sentences if s in summary]
    assert len(picked) >= 2
    assert summary == " ".join(picked)  # whole sentences, in document order, nothing else


def test_summary_is_never_the_source_itself(summarizer):
    text = "The cat sat on the mat. The dog slept by the door. The bird sang in the tree."
    summary = summarizer.summarize(text, 100)
    assert len(summary.split()) <= len(text.split()) * MAX_SOURCE_SHARE
    assert summary in text


def test_repeated_sentences_are_kept_once(summarizer):
    text = "The storm reached the coast. Fishermen pulled their boats onto the beach. " * 50
    summary = summarizer.summarize(text, 30)
    assert summary == "The storm reached the coast. Fishermen pulled their boats onto the beach."


def test_one_long_sentence_is_cut_to_the_budget(summarizer):
    text = "this run-on text has no full stop and just keeps going on and on about nothing in particular at all"
    summary = summarizer.summarize(text, 6)
    assert summary == "this run-on text has no full."


@pytest.mark.parametrize("text", ["", "   ", "!!! ... ???", "— – …"])
def test_text_without_words_is_refused(summarizer, text):
    with pytest.raises(EngineInputError, match="no words"):
        summarizer.summarize(text, 10)


def test_bad_max_words_is_refused(summarizer):
    with pytest.raises(EngineInputError, match="max_words"):
        summarizer.summarize(ARTICLE, 0)


def test_largest_protocol_input_is_summarized(summarizer):
    rng = random.Random(7)
    vocabulary = "river port ship city wall market trader spice silk school church stone".split()
    sentences = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(6, 16))).capitalize() + "."
                 for _ in range(1_500)]
    text = " ".join(sentences)[:100_000]
    summary = summarizer.summarize(text, 200)
    assert 100 <= len(summary.split()) <= 200


def test_blocks_cut_at_sentence_ends_within_the_size():
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    blocks = _blocks(text, size=100)
    assert all(len(b) <= 100 for b in blocks)
    assert all(b.endswith(".") for b in blocks)
    assert " ".join(blocks) == text
