"""Text normalisation and error rates: judged on words, not on casing or punctuation."""

from __future__ import annotations

import pytest

from subnet_proxy.rewards.text import char_error_rate, normalize, reused_share, word_error_rate


def test_normalize_drops_case_and_punctuation_but_keeps_inner_apostrophes() -> None:
    assert normalize("  Hello, WORLD!  It’s  'quoted'... ") == "hello world it's quoted"
    assert normalize(None) == ""
    assert normalize("?!...") == ""


@pytest.mark.parametrize(("ref", "hyp", "wer"), [
    ("the cat sat", "The cat, sat.", 0.0),
    ("the cat sat", "the dog sat", 1 / 3),
    ("the cat sat", "", 1.0),
    ("", "", 0.0),
    ("a b", "a b c d e f g h", 1.0),  # insertions past 100% are clipped
])
def test_word_error_rate(ref: str, hyp: str, wer: float) -> None:
    assert word_error_rate(ref, hyp) == pytest.approx(wer)


def test_char_error_rate_sees_what_wer_cannot() -> None:
    assert word_error_rate("flour", "flower") == word_error_rate("flour", "zebra") == 1.0
    assert char_error_rate("flour", "flower") < char_error_rate("flour", "zebra")


def test_reused_share_tells_extraction_from_copying() -> None:
    source = " ".join(f"sentence {i} has some words in it for the test." for i in range(10))
    one_sentence = "sentence 3 has some words in it for the test."
    assert reused_share(source, source) == 1.0
    assert reused_share(source, "a b c d e f g h") == 0.0
    assert 0.0 < reused_share(source, one_sentence) < 0.2
