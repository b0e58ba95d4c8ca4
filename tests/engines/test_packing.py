"""Packing short clips into one Whisper window: the plan, and handing each segment to its own clip."""

from __future__ import annotations

from subnet_proxy.engines.packing import GAP_S, WINDOW_S, assign_segments, clip_starts, plan_windows


def test_windows_take_clips_in_order_while_they_fit_and_a_long_clip_goes_alone():
    assert plan_windows([5.5] * 6) == [[0, 1, 2, 3], [4, 5]]  # 6.5 s each with the gap
    assert plan_windows([5.0] * 6) == [[0, 1, 2, 3, 4], [5]]  # exactly full
    assert plan_windows([4.0, 40.0, 3.0]) == [[0], [1], [2]]
    assert plan_windows([WINDOW_S - GAP_S, 1.0]) == [[0], [1]]
    assert plan_windows([]) == []


def test_segments_go_to_the_clip_that_holds_them():
    durations = [4.0, 3.0, 5.0]
    a, b, c = clip_starts(durations)
    segments = [(a, a + 2.0, " One."), (a + 2.0, b + 0.1, "Two."), (b + 0.1, c, "Three."), (c, c + 5.0, "Four.")]
    assert assign_segments(segments, durations) == ["One. Two.", "Three.", "Four."]


def test_a_segment_across_two_clips_or_a_clip_without_words_distrusts_the_window():
    durations = [4.0, 3.0]
    _, b = clip_starts(durations)
    assert assign_segments([(0.0, b + 1.5, "one and three"), (b + 1.5, b + 3.0, "end")], durations) is None
    assert assign_segments([(0.0, 4.0, "only the first")], durations) is None
    assert assign_segments([(0.0, 4.0, "one"), (b, b + 3.0, "  ")], durations) is None
    assert assign_segments([(0.0, 4.0, "one"), (4.1, 4.9, "in the gap"), (b, b + 3.0, "two")], durations) is None
