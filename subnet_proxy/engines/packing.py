"""Several short clips in one Whisper window: which clips share a window, and whose words are whose.

Whisper's encoder costs the same for 4 s of audio as for 30 s (it always reads a 30 s window, padded
with silence), and on a CPU the encoder is most of a short clip's transcription. Batching clips
through CTranslate2 as a batch does not help there (the encoder's work grows with the batch: measured
no faster per clip on 2 cores), but laying short clips end to end in *one* window does: N readings of
4-8 s cost one encoder pass instead of N. Clips are separated by ``GAP_S`` of silence, a pause at
which Whisper ends a segment, the window is transcribed with timestamps, and each segment goes to the
clip whose stretch of the window holds it. When a segment runs across two clips, or a clip gets no
words at all, the packing is not trusted and the caller transcribes those clips alone: packing may
save time but must never move words from one answer to another.
"""

from __future__ import annotations

from collections.abc import Sequence

#: seconds of audio one Whisper window holds.
WINDOW_S = 30.0
#: seconds of silence after each packed clip (Whisper closes a segment at a pause this long).
GAP_S = 1.0
#: how far a segment may reach past its clip's stretch (Whisper's timestamps are rounded, 20 ms steps).
OVERHANG_S = 0.3


def plan_windows(durations: Sequence[float], *, window_s: float = WINDOW_S, gap_s: float = GAP_S) -> list[list[int]]:
    """Clip indexes grouped into windows, in order: each clip takes its duration plus a gap, and a
    window takes clips while they fit. A clip too long to share a window is a group of its own."""
    windows: list[list[int]] = []
    current: list[int] = []
    used = 0.0
    for index, duration in enumerate(durations):
        need = duration + gap_s
        if current and used + need > window_s:
            windows.append(current)
            current, used = [], 0.0
        current.append(index)
        used += need
        if used > window_s:  # a long clip: alone (its transcriber cuts it into windows)
            windows.append(current)
            current, used = [], 0.0
    if current:
        windows.append(current)
    return windows


def clip_starts(durations: Sequence[float], *, gap_s: float = GAP_S) -> list[float]:
    """Where each clip of one window starts, in seconds from the window's start."""
    starts, at = [], 0.0
    for duration in durations:
        starts.append(at)
        at += duration + gap_s
    return starts


def assign_segments(segments: Sequence[tuple[float, float, str]], durations: Sequence[float], *,
                    gap_s: float = GAP_S, overhang_s: float = OVERHANG_S) -> list[str] | None:
    """Each clip's text from the window's timed segments (start s, end s, text), or None when the
    packing cannot be trusted: a segment that covers more than ``overhang_s`` of a second clip, or none
    of any clip (said in a gap), or a clip that got no words. A segment's time may take in the gaps
    around its clip: Whisper's segments tile the window, pauses included."""
    starts = clip_starts(durations, gap_s=gap_s)
    texts: list[list[str]] = [[] for _ in durations]
    for start, end, text in segments:
        if not text.strip():
            continue
        covered = [max(0.0, min(end, s + d) - max(start, s)) for s, d in zip(starts, durations, strict=True)]
        owner = max(range(len(covered)), key=covered.__getitem__)
        if covered[owner] <= 0 or sum(covered) - covered[owner] > overhang_s:
            return None
        texts[owner].append(text.strip())
    if any(not parts for parts in texts):
        return None
    return [" ".join(parts) for parts in texts]
