"""Summarization reward: faithful, covering, readable, within the protocol's bound, not the source handed back.

Pure tests on controlled sentence vectors; the same rules on the real MiniLM embedder and fresh prose
(fair alternatives near the reference miner, every cheap trick far below it) are in
``tests/adversarial/test_summaries.py``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from protocol import summary_word_bound
from subnet_proxy.rewards.prose import fault_rate, function_share, prose_term
from subnet_proxy.rewards.summarization import (
    SummarizationReferences,
    length_term,
    lexical_support,
    reward_summarization,
)
from subnet_proxy.rewards.text import sentences, words
from subnet_proxy.tasks import TaskKind
from tests.prose import ALL, BEES
from tests.rewards.conftest import by_hotkey, make_task, response

SOURCE = BEES.text
SOURCE_SENTENCES = sentences(SOURCE)
GOOD = BEES.abstract
OFF_TOPIC = "The lighthouse stood on a bare rock at the mouth of the harbour. Its keeper wound the lamp nightly."


def _basis(i: int, dim: int = 64) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def _sentence(i: int) -> np.ndarray:
    """Source sentence i: the text's topic (axis 0) plus what only it says (axis i + 1), as real
    sentences of one text share a topic (cosine about 0.35 between any two here)."""
    v = 0.6 * _basis(0) + 0.8 * _basis(i + 1)
    return v / np.linalg.norm(v)


SOURCE_VECS = np.stack([_sentence(i) for i in range(len(SOURCE_SENTENCES))])


def about(*indices: int) -> np.ndarray:
    """One summary-sentence vector per index, each saying what that source sentence says."""
    return np.stack([_sentence(i) for i in indices])


def elsewhere(n: int) -> np.ndarray:
    """Vectors orthogonal to every source sentence (another document)."""
    return np.stack([_basis(60 - i) for i in range(n)])


def score(answers: dict[str, str], vectors: dict[str, np.ndarray], *, max_words: int | None = None) -> dict:
    task = make_task(TaskKind.SUMMARIZATION, text=SOURCE, max_words=max_words)
    references = SummarizationReferences(SOURCE_VECS, vectors)
    responses = [response(task, h, uid=i, order=i, text=t) for i, (h, t) in enumerate(answers.items())]
    return by_hotkey(reward_summarization(task, None, responses, references, timeout_s=10.0))


def test_a_faithful_covering_summary_beats_another_documents() -> None:
    spread = tuple(range(0, len(SOURCE_SENTENCES), max(1, len(SOURCE_SENTENCES) // len(sentences(GOOD)))))
    rewards = score({"good": GOOD, "off": OFF_TOPIC},
                    {"good": about(*spread[: len(sentences(GOOD))]), "off": elsewhere(2)})
    assert rewards["good"].breakdown["faithfulness"] == pytest.approx(1.0)
    assert rewards["good"].reward > 0.8, rewards["good"].breakdown
    assert rewards["off"].reward < 0.05
    assert rewards["off"].breakdown["support"] == 0.0


def test_an_invented_sentence_costs_faithfulness() -> None:
    invented = GOOD + " The queen was crowned in 1842 by the king of Sweden."
    n = len(sentences(invented))
    faithful = about(*range(n - 1))
    rewards = score({"invented": invented}, {"invented": np.vstack([faithful, elsewhere(1)])})
    assert rewards["invented"].breakdown["support"] == pytest.approx((n - 1) / n)


def test_lexical_support_counts_content_words_found_in_the_source() -> None:
    assert lexical_support(SOURCE, "The bees shiver in a cluster around the queen.") == 1.0
    assert lexical_support(SOURCE, "The ship sailed to the harbour at dawn.") == 0.0
    assert lexical_support(SOURCE, "the of and") == 0.0  # nothing but function words


def test_keyword_salad_and_shuffled_words_are_not_prose() -> None:
    for text in ALL:
        keywords = " ".join(dict.fromkeys(w for w in words(text.text) if len(w) >= 7))
        assert prose_term(keywords)[0] == 0.0, text.name
        for seed in range(3):
            shuffled = text.abstract.split()
            random.Random(seed).shuffle(shuffled)
            assert prose_term(" ".join(shuffled))[0] < 0.3, (text.name, seed, fault_rate(" ".join(shuffled)))
        assert prose_term(text.abstract)[0] == 1.0, text.name
        assert prose_term(text.text)[0] == 1.0, text.name


def test_prose_measures() -> None:
    assert function_share("honey bees cluster winter") == 0.0
    assert function_share("the bees of the hive") == pytest.approx(0.6)
    assert fault_rate("the of and the") > fault_rate("the bees and the hive")
    assert fault_rate("Bees came from.") == 0.0  # a stranded preposition is English; a sentence ending "the." is not
    assert fault_rate("Bees saw the.") > 0.0


def test_the_bound_is_the_protocols_and_over_it_costs() -> None:
    bound = summary_word_bound(SOURCE, None)
    assert bound == len(SOURCE.split()) // 4
    assert length_term(bound, bound) == 1.0
    assert length_term(int(bound * 1.2), bound) == pytest.approx(0.6, abs=0.02)
    padded = " ".join([GOOD] * (bound // len(GOOD.split()) + 1))
    assert len(padded.split()) > bound
    rewards = score({"long": padded}, {"long": about(*range(len(sentences(padded))))})
    assert rewards["long"].breakdown["length"] < 1.0
    assert "rejected_oversize" in score({"x": GOOD * 8}, {"x": about(0)}, max_words=10)["x"].breakdown


@pytest.mark.parametrize("max_words", [None, 400])
def test_the_source_handed_back_earns_nothing(max_words: int | None) -> None:
    most = " ".join(SOURCE_SENTENCES[:-2])
    vectors = {"source": SOURCE_VECS, "most": SOURCE_VECS[:-2]}
    rewards = score({"source": SOURCE, "most": most}, vectors, max_words=max_words)
    for hotkey in ("source", "most"):
        assert rewards[hotkey].reward == 0.0
        assert {"rejected_verbatim_source", "rejected_oversize"} & set(rewards[hotkey].breakdown)


def test_empty_tiny_or_unembedded_answers_are_invalid() -> None:
    rewards = score({"empty": "", "tiny": "Bees.", "lost": GOOD}, {})
    assert all(r.reward == 0.0 for r in rewards.values())
    assert "rejected_empty" in rewards["empty"].breakdown and "rejected_empty" in rewards["tiny"].breakdown
    assert "rejected_unembedded" in rewards["lost"].breakdown


def test_identical_summaries_from_two_hotkeys_both_earn() -> None:
    vectors = about(*range(len(sentences(GOOD))))
    rewards = score({"a": GOOD, "b": GOOD}, {"a": vectors, "b": vectors})
    assert rewards["a"].reward == rewards["b"].reward > 0.5
