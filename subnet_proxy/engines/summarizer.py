"""Extractive summarization: sumy's LexRank over sentences split by pysbd, within a word budget.

sumy's own tokenizer needs NLTK's punkt data, which cannot be downloaded here; pysbd splits
sentences with rules alone and a regex finds words. Sentences are picked by LexRank centrality until
the budget is spent and given back in document order. The budget is the caller's ``max_words`` (else
the protocol's ``summary_word_bound``, the limit validators judge against) but never more than
``MAX_SOURCE_SHARE`` of the source, so even a short text gets a real summary rather than itself.
Words are counted as the protocol counts them (``summary_words``: whitespace-separated tokens).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from protocol import summary_word_bound, summary_words
from subnet_proxy.engines.base import EngineInputError, Summarizer

#: the largest share of the source's words a summary may keep.
MAX_SOURCE_SHARE = 0.4
LANGUAGE = "english"
#: power-method iterations before giving up on convergence (sumy's loop has no bound).
MAX_POWER_ITERATIONS = 200
#: pysbd's cost grows with the square of its input; it is fed blocks of about this many characters.
SEGMENT_BLOCK_CHARS = 2_000
_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")


def _truncate(text: str, words: int) -> str:
    """The first ``words`` words of ``text``, ended as a sentence."""
    kept = " ".join(text.split()[:words]).rstrip(",;:-–—")
    return kept if kept.endswith((".", "!", "?")) else kept + "."


def _blocks(paragraph: str, size: int = SEGMENT_BLOCK_CHARS) -> list[str]:
    """Cut a long paragraph into pieces of at most ``size`` characters at sentence ends (else spaces).

    pysbd rescans the whole input for every abbreviation it meets: 8 s for 100k characters in one
    piece, well under a second in 2k pieces. A cut only adds a sentence break pysbd would have found.
    """
    pieces: list[str] = []
    rest = paragraph.strip()
    while len(rest) > size:
        window = rest[:size]
        ends = [m.end() for m in _SENTENCE_END.finditer(window)]
        cut = ends[-1] if ends else (window.rfind(" ") + 1 or size)
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


class _PysbdTokenizer:
    """The two calls sumy's document model makes, without NLTK data."""

    def __init__(self, segmenter: Any) -> None:
        self._segmenter = segmenter

    def to_sentences(self, paragraph: str) -> list[str]:
        return [s.strip() for block in _blocks(paragraph) for s in self._segmenter.segment(block) if s.strip()]

    @staticmethod
    def to_words(sentence: str) -> list[str]:
        return _WORD.findall(sentence)


class _WordBudget:
    """sumy's sentence selector: given sentences best-rated first, keep those that fit the budget.

    A sentence repeated in the source is kept once: repeating it adds words, not information.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget

    def __call__(self, infos: Sequence[Any]) -> list[Any]:
        chosen, left, seen = [], self._budget, set()
        for info in infos:
            text = str(info.sentence)
            size = summary_words(text)
            if size <= left and text not in seen:
                chosen.append(info)
                seen.add(text)
                left -= size
        return chosen


def _lexrank_class() -> type:
    """sumy's LexRank with its quadratic pure-Python loops replaced by the same math in numpy.

    sumy computes idf and the idf-modified-cosine matrix pair by pair in Python: 16 s for a 100k
    character text (the protocol's bound) on this machine, longer than a synapse timeout. The
    tf/idf definitions, threshold and degree normalization are sumy's own, vectorized.
    """
    from sumy.summarizers.lex_rank import LexRankSummarizer as SumyLexRank

    class FastLexRank(SumyLexRank):
        def _compute_idf(self, sentences: list[list[str]]) -> dict[str, float]:
            counts: dict[str, int] = {}
            for words in sentences:
                for term in set(words):
                    counts[term] = counts.get(term, 0) + 1
            return {term: math.log(len(sentences) / (1 + n)) for term, n in counts.items()}

        def _create_matrix(self, sentences: list[list[str]], threshold: float, tf_metrics: list[dict[str, float]],
                           idf_metrics: dict[str, float]) -> np.ndarray:
            vocabulary = {term: i for i, term in enumerate(idf_metrics)}
            weights = np.zeros((len(sentences), len(vocabulary)))
            for row, tf in enumerate(tf_metrics):
                for term, value in tf.items():
                    weights[row, vocabulary[term]] = value * idf_metrics[term]
            norms = np.linalg.norm(weights, axis=1)
            norms[norms == 0] = np.inf
            cosine = (weights @ weights.T) / np.outer(norms, norms)
            matrix = (cosine > threshold).astype(np.float64)
            degrees = matrix.sum(axis=1)
            degrees[degrees == 0] = 1
            return matrix / degrees[:, None]

        @staticmethod
        def power_method(matrix: np.ndarray, epsilon: float) -> np.ndarray:
            transposed = matrix.T
            p_vector = np.full(len(matrix), 1.0 / len(matrix))
            for _ in range(MAX_POWER_ITERATIONS):
                next_p = transposed @ p_vector
                norm = np.linalg.norm(next_p)
                if norm == 0:
                    break
                next_p /= norm
                done = np.linalg.norm(next_p - p_vector) <= epsilon
                p_vector = next_p
                if done:
                    break
            return p_vector

    return FastLexRank


class LexRankSummarizer(Summarizer):
    """sumy LexRank + pysbd behind the Summarizer interface; stateless per call, so thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._segmenter: Any = None
        self._lexrank: Any = None

    def load(self) -> None:
        with self._lock:
            if self._ready:
                return
            import pysbd
            from sumy.nlp.stemmers import Stemmer
            from sumy.utils import get_stop_words

            self._segmenter = pysbd.Segmenter(language="en", clean=False)
            self._lexrank = _lexrank_class()(Stemmer(LANGUAGE))
            self._lexrank.stop_words = get_stop_words(LANGUAGE)
            self._ready = True

    def summarize(self, text: str, max_words: int | None = None) -> str:
        self.load()
        if max_words is not None and max_words < 1:
            raise EngineInputError(f"max_words must be at least 1, got {max_words}")
        source_words = summary_words(text)
        if not _WORD.search(text):
            raise EngineInputError("text has no words to summarize")
        bound = summary_word_bound(text, max_words)
        budget = max(1, min(bound, math.floor(source_words * MAX_SOURCE_SHARE)))

        from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence

        tokenizer = _PysbdTokenizer(self._segmenter)
        # Blank lines part paragraphs; single line breaks are hard wrapping, which pysbd would read as ends.
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
        document = ObjectDocumentModel([
            Paragraph([Sentence(s, tokenizer) for s in tokenizer.to_sentences(p)]) for p in paragraphs
        ])
        sentences = document.sentences
        if len(sentences) > 1:
            picked = self._lexrank(document, _WordBudget(budget))
            if picked:
                return " ".join(str(s) for s in picked)
        # One sentence, or every sentence longer than the budget: the most central one, cut to fit.
        best = self._lexrank(document, 1) if len(sentences) > 1 else sentences
        return _truncate(str(best[0]) if best else text, budget)
