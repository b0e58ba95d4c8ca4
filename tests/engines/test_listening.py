"""Which window of audio each word of a transcript is read against (pure: no model)."""

from __future__ import annotations

from subnet_proxy.engines.base import TranscriptSegment
from subnet_proxy.engines.listening import WHISPER_WINDOW_S, WINDOW_PAD_S, listening_windows

SEGMENTS = (TranscriptSegment(0.5, 4.0, "one two three"), TranscriptSegment(5.0, 9.0, "four five"),
            TranscriptSegment(40.0, 44.0, "six seven eight"))
WORDS = [s.text.split() for s in SEGMENTS]


def test_segments_within_a_whisper_window_are_read_together_and_padded() -> None:
    windows = listening_windows(SEGMENTS, WORDS, "one two three four five six seven eight".split(), duration_s=44.5)
    assert [(w.start, w.end, w.words) for w in windows] == [
        (0.0, 9.0 + WINDOW_PAD_S, (0, 1, 2, 3, 4)), (40.0 - WINDOW_PAD_S, 44.5, (5, 6, 7))]


def test_changed_added_and_dropped_words_follow_the_words_they_replace() -> None:
    hypothesis = "won two tree four five and more six eight".split()
    windows = listening_windows(SEGMENTS, WORDS, hypothesis, duration_s=45.0)
    assert [w.words for w in windows] == [(0, 1, 2, 3, 4, 5, 6), (7, 8)]
    assert sorted(i for w in windows for i in w.words) == list(range(len(hypothesis)))


def test_a_window_never_exceeds_what_whisper_hears() -> None:
    long = (TranscriptSegment(0.0, 29.9, "a b c"),)
    (window,) = listening_windows(long, [["a", "b", "c"]], ["a", "b", "c"], duration_s=60.0)
    assert window.end - window.start <= WHISPER_WINDOW_S


def test_nothing_heard_means_no_window() -> None:
    assert listening_windows((), [], ["a"], duration_s=3.0) == []
    assert listening_windows(SEGMENTS, WORDS, [], duration_s=45.0) == []
