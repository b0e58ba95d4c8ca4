"""Text checks shared by the reward functions: normalisation, word/character error rates, n-gram reuse.

Normalising before comparing means a transcript is judged on its words, not on casing or
punctuation style, and identical answers count as one vote in a consensus whatever their commas.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import jiwer

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_NON_WORD = re.compile(r"[^\w']+")
_EDGE_QUOTES = re.compile(r"(^'+|'+$)")
#: a sentence ends at . ! or ? (and any closing quote or bracket) followed by white space.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]\u201d\u2019]))\s+")


def normalize(text: str | None) -> str:
    """Lower-case words separated by single spaces: NFKC, punctuation dropped, inner apostrophes kept."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    words = (_EDGE_QUOTES.sub("", word) for word in _NON_WORD.sub(" ", text).replace("_", " ").split())
    return " ".join(word for word in words if word)


def words(text: str | None) -> list[str]:
    return normalize(text).split()


def sentences(text: str | None) -> list[str]:
    """The text's sentences, by punctuation (no model: the reward and its references must split alike).

    Pieces without a word are dropped; a text without sentence punctuation is one sentence.
    """
    if not text:
        return []
    return [piece for piece in _SENTENCE_END.split(" ".join(text.split())) if normalize(piece)]


def _error_rate(metric: Callable[[str, str], float], reference: str, hypothesis: str) -> float:
    """``metric`` on normalised texts, clipped to [0, 1]; an empty side counts as entirely wrong."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref and not hyp:
        return 0.0
    if not ref or not hyp:
        return 1.0
    return min(1.0, float(metric(ref, hyp)))


def word_error_rate(reference: str, hypothesis: str) -> float:
    return _error_rate(jiwer.wer, reference, hypothesis)


def char_error_rate(reference: str, hypothesis: str) -> float:
    return _error_rate(jiwer.cer, reference, hypothesis)


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def reused_share(source: str, answer: str, *, n: int = 6) -> float:
    """Share of the source's word n-grams that the answer repeats verbatim (0 = none, 1 = all of it).

    An extractive summary repeats a few source sentences, a small share; returning the source
    (or most of it) repeats nearly all of them.
    """
    source_grams = ngrams(words(source), n)
    if not source_grams:
        return 1.0 if normalize(source) and normalize(source) in normalize(answer) else 0.0
    return len(source_grams & ngrams(words(answer), n)) / len(source_grams)
