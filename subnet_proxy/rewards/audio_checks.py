"""Audio facts the TTS reward checks: does it decode, at what rate, how long, how loud, how clipped.

``inspect_audio`` decodes once and measures; the scorer keeps the decoded samples for the
engines (VAD, round-trip ASR) and hands the facts to the pure reward function.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from protocol import AudioDecodeError, DecodedAudio, UnsupportedRateError, decode_audio
from protocol.synapses import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

#: below this RMS (about -54 dBFS) the clip counts as silent.
SILENCE_RMS = 2e-3
#: a sample this close to full scale counts as clipped ...
CLIP_LEVEL = 0.999
#: ... and more than this share of clipped samples rejects the clip (a normalised voice peaks once or twice).
MAX_CLIPPED_SHARE = 0.01
#: ordinary reading speed, in characters of text (spaces included) per second: people read aloud at
#: 12-18, the shipped Piper voice at 15-21.
EXPECTED_CHARS_PER_S = 15.0
#: a reading may be this much faster or slower than expected ...
FASTEST_RATIO = 0.5
SLOWEST_RATIO = 1.5
#: ... plus a natural pause before and after it.
NATURAL_PAUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class AudioFacts:
    """What the TTS reward needs to know about one returned file (``error`` set when it did not decode)."""

    digest: str
    size: int
    error: str | None = None
    sample_rate: int = 0
    duration_s: float = 0.0
    rms: float = 0.0
    clipped_share: float = 0.0


def inspect_audio(data: bytes) -> tuple[AudioFacts, DecodedAudio | None]:
    """Decode and measure; never raises on bad bytes (the facts say what is wrong).

    A rate the protocol refuses anyway is read from the header and the file left undecoded: a miner's
    192 kHz file would otherwise cost four times the decoding for an answer that scores nothing.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        audio = decode_audio(data, max_rate=MAX_SAMPLE_RATE)
    except UnsupportedRateError as exc:
        return AudioFacts(digest=digest, size=len(data), sample_rate=exc.sample_rate), None
    except AudioDecodeError as exc:
        return AudioFacts(digest=digest, size=len(data), error=str(exc)), None
    samples = audio.samples
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    clipped = float(np.count_nonzero(np.abs(samples) >= CLIP_LEVEL)) / samples.size
    facts = AudioFacts(digest=digest, size=len(data), sample_rate=audio.sample_rate,
                       duration_s=audio.duration_s, rms=rms, clipped_share=clipped)
    return facts, audio


def expected_speaking_s(text: str) -> float:
    """Seconds an ordinary reading of ``text`` takes."""
    return len(" ".join(text.split())) / EXPECTED_CHARS_PER_S


def plausible_duration(text: str) -> tuple[float, float]:
    """(shortest, longest) seconds a reading of ``text`` may take: twice as fast as expected, or half as
    slow again plus a natural pause at each end. Anything longer is mostly something else (dead air)."""
    expected = expected_speaking_s(text)
    return expected * FASTEST_RATIO, expected * SLOWEST_RATIO + 2 * NATURAL_PAUSE_S


def audio_problem(facts: AudioFacts, text: str) -> str | None:
    """The first reason this audio cannot be a reading of ``text``, or None when it passes."""
    if facts.error is not None:
        return "undecodable"
    if not MIN_SAMPLE_RATE <= facts.sample_rate <= MAX_SAMPLE_RATE:
        return "sample_rate"
    shortest, longest = plausible_duration(text)
    if not shortest <= facts.duration_s <= longest:
        return "duration"
    if facts.rms < SILENCE_RMS:
        return "silent"
    if facts.clipped_share > MAX_CLIPPED_SHARE:
        return "clipped"
    return None
