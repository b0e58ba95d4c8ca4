"""Is a text readable English prose? Two closed-class checks that need no language model.

Keyword salad and shuffled words keep a source's vocabulary (so similarity measures like them) but
are not prose. English rests on a closed set of function words, and that set betrays both:

* **function-word share**: running English prose is 35-55% function words (articles, prepositions,
  pronouns, auxiliaries), terse summary prose still about 20%; a list of keywords has almost none;
* **impossible neighbours**: some function words cannot follow others. An article is followed by
  a noun phrase, never by another article, a preposition, a conjunction or an auxiliary ("the of",
  "a and", "the is"), and never ends a sentence; a preposition is not followed by a conjunction or
  another preposition ("of and", "in on"). Written English (the test prose, LexRank extracts and
  hand-written abstracts alike) has almost none of these (0-0.5% of function words); the same
  words shuffled have 17-50%.

Both are measured on normalised words; sentence breaks come from the raw text's punctuation.
"""

from __future__ import annotations

from subnet_proxy.rewards.base import clip01
from subnet_proxy.rewards.text import normalize

_DETERMINERS = frozenset("the a an this these those every its their his her our my your whose".split())
_PREPOSITIONS = frozenset(
    "of in on at by for with from to into onto upon over under above below across after before behind between "
    "during through toward towards until within without against along among around since than via".split())
_CONJUNCTIONS = frozenset("and or but nor".split())
_AUXILIARIES = frozenset(
    "is are was were be been am has have had will would can could may might must shall should do does did".split())
_PRONOUNS = frozenset("it he she they we i you them him us".split())
#: words that count as function words for the share (the closed classes above and their kin).
FUNCTION_WORDS = _DETERMINERS | _PREPOSITIONS | _CONJUNCTIONS | _AUXILIARIES | _PRONOUNS | frozenset(
    "each some any no all both either neither one that which who whom what when where why how if because as so "
    "not there here then than also very too more most much many such only own same other another just being "
    "me my mine our ours your yours hers theirs out up off down about while although though yet".split())
_AFTER_DETERMINER = _DETERMINERS | _PREPOSITIONS | _CONJUNCTIONS | _AUXILIARIES | _PRONOUNS
_SENTENCE_BREAK = (".", "!", "?", ";", ":", ",")

#: function-word share mapped onto [0, 1]: keyword lists sit at 0-0.09, terse headline-like prose
#: at about 0.22, ordinary prose at 0.33-0.55.
FUNCTION_SHARE_FLOOR = 0.10
FUNCTION_SHARE_FULL = 0.20
#: impossible neighbours per function word (smoothed by this many clean ones): free up to the allowance
#: (an odd construction in real prose), the term reaching 0 at the maximum.
FAULT_ALLOWANCE = 0.02
MAX_FAULT_RATE = 0.10
FAULT_SMOOTHING = 3


def _tokens(text: str) -> tuple[list[str], list[bool]]:
    """Normalised words, and for each whether punctuation in the raw text ends a clause after it."""
    tokens: list[str] = []
    breaks: list[bool] = []
    for raw in text.split():
        parts = normalize(raw).split()
        if parts:
            tokens.extend(parts)
            breaks.extend([False] * (len(parts) - 1) + [raw.rstrip("\"')]»”’").endswith(_SENTENCE_BREAK)])
    return tokens, breaks


def _faulty(word: str, following: str | None, clause_ends: bool) -> bool | None:
    """True if ``following`` cannot come after ``word``; None when ``word`` is not a checked word."""
    if word in _DETERMINERS:
        return clause_ends or following is None or following in _AFTER_DETERMINER
    if word in _PREPOSITIONS:  # stranded prepositions ("came from.") are English; "to" precedes verbs
        return following in _PREPOSITIONS or following in _CONJUNCTIONS or (
            following in _AUXILIARIES and word != "to")
    if word in _CONJUNCTIONS:
        return following is None or following in _CONJUNCTIONS
    return None


def fault_rate(text: str) -> float:
    """Impossible neighbours per checked function word, smoothed toward 0 for short texts."""
    tokens, breaks = _tokens(text)
    faults = checked = 0
    for i, word in enumerate(tokens):
        verdict = _faulty(word, tokens[i + 1] if i + 1 < len(tokens) else None, breaks[i])
        if verdict is not None:
            checked += 1
            faults += verdict
    return faults / (checked + FAULT_SMOOTHING)


def function_share(text: str) -> float:
    tokens = normalize(text).split()
    return sum(word in FUNCTION_WORDS for word in tokens) / len(tokens) if tokens else 0.0


def prose_term(text: str) -> tuple[float, dict[str, float]]:
    """(term in [0, 1], breakdown): 1 for ordinary prose, 0 for keyword lists or shuffled words."""
    share = function_share(text)
    faults = fault_rate(text)
    share_term = clip01((share - FUNCTION_SHARE_FLOOR) / (FUNCTION_SHARE_FULL - FUNCTION_SHARE_FLOOR))
    order_term = clip01(1.0 - max(0.0, faults - FAULT_ALLOWANCE) / (MAX_FAULT_RATE - FAULT_ALLOWANCE))
    return share_term * order_term, {"function_share": share, "fault_rate": faults}
