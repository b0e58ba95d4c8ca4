"""Summarization reward: about the source (MiniLM similarity), covering what matters (ROUGE against the
validator's own summary), within the length bound, and not the source handed back.

An extractive summary repeats a few source sentences, which is fine; returning the source or most
of it (``reused_share`` of its 6-grams at or above ``MAX_REUSED_SHARE``, or hardly shorter than the
source) earns nothing, whatever the bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from rouge_score import rouge_scorer

from subnet_proxy.rewards.base import Judged, clip01, finalize, invalid
from subnet_proxy.rewards.text import normalize, reused_share, words
from subnet_proxy.tasks import MinerResponse, MinerReward, Task

#: the bound when the task sets none: a quarter of the source, at least this many words.
DEFAULT_MIN_BOUND_WORDS = 30
DEFAULT_BOUND_SHARE = 0.25
#: over the bound the length term falls linearly, reaching 0 at this multiple of it.
ZERO_LENGTH_RATIO = 1.5
MIN_SUMMARY_WORDS = 3
MAX_REUSED_SHARE = 0.5
MAX_COMPRESSION = 0.8
#: cosine similarities mapped linearly onto [0, 1]: unrelated English text sits near 0.1,
#: a faithful summary of the source near 0.8.
COSINE_FLOOR = 0.15
COSINE_FULL = 0.75
SEMANTIC_WEIGHT = 0.5
COVERAGE_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class SummarizationReferences:
    """The validator's own summary, the source's embedding, and each hotkey's summary embedding (unit vectors)."""

    reference_summary: str
    source_embedding: np.ndarray
    summary_embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)


@cache
def _rouge() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True, split_summaries=False)


def word_bound(source: str, max_words: int | None) -> int:
    return max_words if max_words else max(DEFAULT_MIN_BOUND_WORDS, int(len(words(source)) * DEFAULT_BOUND_SHARE))


def length_term(n_words: int, bound: int) -> float:
    if n_words <= bound:
        return 1.0
    return clip01((ZERO_LENGTH_RATIO - n_words / bound) / (ZERO_LENGTH_RATIO - 1.0))


def semantic_term(cosine: float) -> float:
    return clip01((cosine - COSINE_FLOOR) / (COSINE_FULL - COSINE_FLOOR))


def coverage_term(reference_summary: str, summary: str) -> float:
    """Mean of ROUGE-1 and ROUGE-L F1 against the validator's own summary."""
    scores = _rouge().score(reference_summary, summary)
    return (scores["rouge1"].fmeasure + scores["rougeL"].fmeasure) / 2.0


def judge_summary(source: str, bound: int, response: MinerResponse, references: SummarizationReferences) -> Judged:
    text = normalize(response.text)
    n_words = len(text.split())
    if n_words < MIN_SUMMARY_WORDS:
        return invalid("empty")
    if n_words > ZERO_LENGTH_RATIO * bound:
        return invalid("oversize")
    reused = reused_share(source, text)
    compression = n_words / max(1, len(words(source)))
    if reused >= MAX_REUSED_SHARE or compression >= MAX_COMPRESSION:
        return invalid("verbatim_source", reused=reused, compression=compression)
    vector = references.summary_embeddings.get(response.hotkey)
    cosine = float(np.dot(vector, references.source_embedding)) if vector is not None else 0.0
    semantic = semantic_term(cosine)
    coverage = coverage_term(references.reference_summary, response.text or "")
    length = length_term(n_words, bound)
    quality = length * (SEMANTIC_WEIGHT * semantic + COVERAGE_WEIGHT * coverage)
    return Judged(valid=True, quality=quality, fingerprint="s:" + text, breakdown={
        "cosine": cosine, "semantic": semantic, "coverage": coverage, "length": length, "reused": reused,
    })


def reward_summarization(task: Task, ground_truth: str | None, responses: Sequence[MinerResponse],
                         references: SummarizationReferences, *, timeout_s: float) -> list[MinerReward]:
    """One reward per response (same order). ``ground_truth`` is unused: the source is the truth."""
    source = task.input.text or ""
    bound = word_bound(source, task.input.max_words)
    judged = [judge_summary(source, bound, r, references) for r in responses]
    return finalize(responses, judged, timeout_s=timeout_s)
