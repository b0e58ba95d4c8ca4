"""Which stretch of audio each word of a transcript should be heard against.

Checking a miner's transcript against the audio (rather than against the validator's own words)
means reading it to the ASR model window by window: Whisper hears at most 30 s at a time. The
validator's own transcript has timed segments; its words place the miner's words in time through a
word alignment of the two texts, whatever the miner changed, dropped or added. Pure functions: the
model calls are in ``asr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from subnet_proxy.engines.base import TranscriptSegment

#: the longest stretch of the validator's segments read as one window (Whisper hears 30 s) ...
WINDOW_SPAN_S = 27.0
#: ... heard with this much audio either side, so a word near a segment's edge is not cut off.
WINDOW_PAD_S = 1.0
WHISPER_WINDOW_S = 30.0


@dataclass(frozen=True, slots=True)
class ListeningWindow:
    """A stretch of audio (seconds) and the indices of the hypothesis words heard against it, in order."""

    start: float
    end: float
    words: tuple[int, ...]


def _segment_groups(segments: Sequence[TranscriptSegment]) -> list[list[int]]:
    """Consecutive segments grouped so that each group spans at most WINDOW_SPAN_S."""
    groups: list[list[int]] = []
    for index, segment in enumerate(segments):
        if groups and segment.end - segments[groups[-1][0]].start <= WINDOW_SPAN_S:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _own_word_positions(hypothesis: Sequence[str], own: Sequence[str]) -> list[int]:
    """For each hypothesis word, the index of the own word it stands for (or follows, when inserted)."""
    positions: list[int] = []
    matcher = SequenceMatcher(None, list(own), list(hypothesis), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            positions.extend(i1 + (j - j1) * (i2 - i1) // (j2 - j1) for j in range(j1, j2))
        elif tag == "insert":
            positions.extend([max(i1 - 1, 0)] * (j2 - j1))
    return positions


def listening_windows(segments: Sequence[TranscriptSegment], segment_words: Sequence[Sequence[str]],
                      hypothesis: Sequence[str], *, duration_s: float) -> list[ListeningWindow]:
    """The windows that cover every hypothesis word (empty when the validator heard no words).

    ``segment_words[k]`` are the (normalised) words of ``segments[k]``, in the hypothesis's spelling.
    """
    own: list[str] = []
    group_of_word: list[int] = []
    groups = _segment_groups(segments)
    for group_index, group in enumerate(groups):
        for index in group:
            own.extend(segment_words[index])
            group_of_word.extend([group_index] * len(segment_words[index]))
    if not own or not hypothesis:
        return []
    by_group: dict[int, list[int]] = {}
    for word, position in enumerate(_own_word_positions(hypothesis, own)):
        by_group.setdefault(group_of_word[position], []).append(word)
    windows = []
    for group_index, words in sorted(by_group.items()):
        group = groups[group_index]
        start = max(0.0, segments[group[0]].start - WINDOW_PAD_S)
        end = min(duration_s, segments[group[-1]].end + WINDOW_PAD_S, start + WHISPER_WINDOW_S)
        windows.append(ListeningWindow(start=start, end=max(end, start), words=tuple(words)))
    return windows
