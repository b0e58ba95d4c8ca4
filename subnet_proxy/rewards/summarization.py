"""Summarization reward: faithful to the source, covering what matters, readable, within the bound, not a copy.

Nothing here compares the answer with any one engine's summary (the validator's LexRank summary
used to be the coverage reference, which paid the reference miner for resembling itself). Every term
compares the answer with the *source*, through MiniLM sentence embeddings computed by the validator
and the source's own words:

* **faithfulness**: each summary sentence must be close to some source sentence (an invented claim
  or another document's content is close to none), and its content words must come from the source;
* **coverage**: the source's sentences, weighted by how central they are (similarity to the whole
  text), must find a match in the summary, and the summary as a whole must point where the source does;
* **prose** (``prose.py``): keyword salad and shuffled words are not summaries;
* **length**: the protocol's ``summary_word_bound``, the same number the miner was sent;
* **not the source**: returning the source, or most of it, is refused (an extract of a few
  sentences is fine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from protocol import summary_word_bound, summary_words
from subnet_proxy.rewards.base import Judged, clip01, finalize, invalid
from subnet_proxy.rewards.prose import FUNCTION_WORDS, prose_term
from subnet_proxy.rewards.text import reused_share, words
from subnet_proxy.tasks import MinerResponse, MinerReward, Task

#: over the bound the length term falls linearly, reaching 0 at this multiple of it.
ZERO_LENGTH_RATIO = 1.5
MIN_SUMMARY_WORDS = 3
MAX_REUSED_SHARE = 0.5
MAX_COMPRESSION = 0.8
#: a summary sentence's best cosine with a source sentence, mapped onto [0, 1]: another text's
#: sentences reach 0.15-0.3, paraphrases of the source 0.55 and more.
SUPPORT_FLOOR = 0.30
SUPPORT_FULL = 0.55
#: share of the summary's content words found in the source: a paraphrase keeps over half of them,
#: another document's summary hardly any.
LEXICAL_FLOOR = 0.20
LEXICAL_FULL = 0.50
#: cosine of the summary's and the source's mean embeddings: unrelated texts near 0.1-0.3.
TOPIC_FLOOR = 0.20
TOPIC_FULL = 0.70
#: centrality-weighted mean of each source sentence's best cosine with a summary sentence.
RECALL_FLOOR = 0.15
RECALL_FULL = 0.50
FAITHFULNESS_WEIGHT = 0.4
COVERAGE_WEIGHT = 0.6


@dataclass(frozen=True, slots=True)
class SummarizationReferences:
    """Unit sentence embeddings (MiniLM) of the source and of each hotkey's summary.

    Rows follow ``text.sentences`` of the source and of each answer; ``source_vectors`` has one row per
    source sentence (none: nothing to judge).
    """

    source_vectors: np.ndarray
    summary_vectors: Mapping[str, np.ndarray] = field(default_factory=dict)


def _mapped(value: float, floor: float, full: float) -> float:
    return clip01((value - floor) / (full - floor))


def _mean_direction(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def length_term(n_words: int, bound: int) -> float:
    if n_words <= bound:
        return 1.0
    return clip01((ZERO_LENGTH_RATIO - n_words / bound) / (ZERO_LENGTH_RATIO - 1.0))


def lexical_support(source: str, summary: str) -> float:
    """Share of the summary's content words (not function words) that occur in the source."""
    content = [w for w in words(summary) if w not in FUNCTION_WORDS]
    if not content:
        return 0.0
    vocabulary = set(words(source))
    return sum(w in vocabulary for w in content) / len(content)


def faithfulness_term(similarity: np.ndarray, lexical: float) -> tuple[float, dict[str, float]]:
    """Mean per-sentence support (a sentence no source sentence backs counts 0) times lexical support."""
    support = float(np.mean([_mapped(s, SUPPORT_FLOOR, SUPPORT_FULL) for s in similarity.max(axis=1)]))
    return support * _mapped(lexical, LEXICAL_FLOOR, LEXICAL_FULL), {"support": support, "lexical": lexical}


def coverage_term(similarity: np.ndarray, source: np.ndarray, summary: np.ndarray) -> tuple[float, dict[str, float]]:
    """Half topic (whole summary vs whole source), half recall of the source's central sentences."""
    centre = _mean_direction(source)
    weights = np.clip(source @ centre, 0.0, None)
    best = similarity.max(axis=0)
    recall = float((weights * best).sum() / weights.sum()) if weights.sum() > 0 else float(best.mean())
    topic = float(_mean_direction(summary) @ centre)
    term = 0.5 * _mapped(topic, TOPIC_FLOOR, TOPIC_FULL) + 0.5 * _mapped(recall, RECALL_FLOOR, RECALL_FULL)
    return term, {"topic": topic, "recall": recall}


def judge_summary(source: str, bound: int, response: MinerResponse, references: SummarizationReferences) -> Judged:
    summary = response.text or ""
    n_words = summary_words(summary)
    if len(words(summary)) < MIN_SUMMARY_WORDS:
        return invalid("empty")
    if n_words > ZERO_LENGTH_RATIO * bound:
        return invalid("oversize")
    reused = reused_share(source, summary)
    compression = n_words / max(1, summary_words(source))
    if reused >= MAX_REUSED_SHARE or compression >= MAX_COMPRESSION:
        return invalid("verbatim_source", reused=reused, compression=compression)
    vectors = references.summary_vectors.get(response.hotkey)
    if vectors is None or not len(vectors) or not len(references.source_vectors):
        return invalid("unembedded")
    similarity = vectors @ references.source_vectors.T  # [summary sentences, source sentences]
    faithful, faith_parts = faithfulness_term(similarity, lexical_support(source, summary))
    coverage, cover_parts = coverage_term(similarity, references.source_vectors, vectors)
    prose, prose_parts = prose_term(summary)
    length = length_term(n_words, bound)
    quality = length * prose * (FAITHFULNESS_WEIGHT * faithful + COVERAGE_WEIGHT * coverage)
    return Judged(valid=True, quality=quality, breakdown={
        "faithfulness": faithful, "coverage": coverage, "prose": prose, "length": length, "reused": reused,
        **faith_parts, **cover_parts, **prose_parts,
    })


def reward_summarization(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
                         references: SummarizationReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order). ``ground_truth`` is unused: the source is the truth."""
    source = task.input.text or ""
    bound = summary_word_bound(source, task.input.max_words)
    judged = [judge_summary(source, bound, r, references) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
