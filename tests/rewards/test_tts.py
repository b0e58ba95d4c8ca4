"""TTS reward on real encoded audio: the gates (decode, rate, duration, silence, clipping, speech), the round trip."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from protocol import encode_audio
from subnet_proxy.rewards.audio_checks import audio_problem, expected_speaking_s, inspect_audio, plausible_duration
from subnet_proxy.rewards.tts import TTSReferences, dead_air_term, reward_tts
from subnet_proxy.tasks import TaskKind
from tests.rewards.conftest import by_hotkey, make_task, response

TEXT = "Honey bees live together in colonies of many thousands."
TASK = make_task(TaskKind.TTS, text=TEXT)
RATE = 22_050
SECONDS = 3.5


def voice_like(seconds: float = SECONDS, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    """A harmonic signal with a syllable-rate envelope: loud enough, not clipped (VAD is faked here)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((140, 280, 420, 560)))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (level * tone * envelope / np.max(np.abs(tone))).astype(np.float32)


def facts(samples: np.ndarray, rate: int = RATE, fmt: str = "wav"):
    return inspect_audio(encode_audio(samples, rate, fmt))[0]


def test_inspect_audio_measures_and_never_raises() -> None:
    good = facts(voice_like())
    assert good.error is None and good.sample_rate == RATE
    assert good.duration_s == pytest.approx(SECONDS, abs=0.01)
    assert 0.05 < good.rms < 0.3 and good.clipped_share == 0.0
    broken = inspect_audio(b"RIFF\x00\x00\x00\x00WAVEgarbage")[0]
    assert broken.error is not None and broken.size == 19
    assert inspect_audio(b"")[0].error is not None


@pytest.mark.parametrize(("samples", "rate", "problem"), [
    (voice_like(), RATE, None),
    (np.zeros(int(SECONDS * RATE), np.float32), RATE, "silent"),
    (np.clip(voice_like(level=3.0), -1, 1), RATE, "clipped"),
    (voice_like(seconds=0.3), RATE, "duration"),
    (voice_like(seconds=30.0), RATE, "duration"),
    (voice_like(seconds=9.0), RATE, "duration"),  # 56 characters are about 3.7 s of reading, not 9 s
    (voice_like(rate=6_000), 6_000, "sample_rate"),
])
def test_audio_gates(samples: np.ndarray, rate: int, problem: str | None) -> None:
    assert audio_problem(facts(samples, rate), TEXT) == problem


def test_a_rate_past_the_protocol_is_refused_from_the_header() -> None:
    """A miner's 192 kHz 8-channel file would cost 16x the decoding of a 48 kHz mono one for nothing."""
    wide = np.tile(voice_like(rate=192_000)[:, None], (1, 8))
    data = encode_audio(wide, 192_000, "flac")
    tracemalloc.start()
    try:
        found, audio = inspect_audio(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio is None and found.sample_rate == 192_000
    assert audio_problem(found, TEXT) == "sample_rate"
    assert peak < 1_000_000  # decoded, even block by block, it is 4 MB a block


def test_plausible_duration_grows_with_the_text() -> None:
    short, long_ = plausible_duration("Hi there."), plausible_duration(TEXT * 4)
    assert short[1] < long_[0] * 4 and short[0] < short[1] and long_[0] < long_[1]


def test_round_trip_and_speech_decide_the_reward() -> None:
    good, other_take, wrong = facts(voice_like()), facts(voice_like(level=0.25)), facts(voice_like(level=0.2))
    quiet = facts(np.zeros(int(SECONDS * RATE), np.float32))
    references = TTSReferences(
        audio={"honest": good, "mumbled": other_take, "wrong": wrong, "noise": other_take, "silence": quiet},
        speech_ratio={"honest": 0.8, "mumbled": 0.8, "wrong": 0.8, "noise": 0.02},
        round_trip={"honest": TEXT.lower(), "mumbled": "honey bees live in colonies",
                    "wrong": "The lighthouse stood on a bare rock at the mouth of the harbour."},
    )
    responses = [response(TASK, h, uid=i, order=i) for i, h in
                 enumerate(["honest", "mumbled", "wrong", "noise", "silence", "nothing"])]
    rewards = by_hotkey(reward_tts(TASK, None, responses, references, timeout_s=10.0))
    assert rewards["honest"].reward > 0.9
    assert 0.2 < rewards["mumbled"].reward < rewards["honest"].reward
    assert rewards["wrong"].reward < 0.1
    assert rewards["noise"].reward == 0.0 and "rejected_no_speech" in rewards["noise"].breakdown
    assert rewards["silence"].reward == 0.0 and "rejected_silent" in rewards["silence"].breakdown
    assert rewards["nothing"].reward == 0.0 and "rejected_empty" in rewards["nothing"].breakdown


def test_identical_audio_from_two_hotkeys_is_credited_to_both() -> None:
    good = facts(voice_like())
    references = TTSReferences(audio={"a": good, "b": good}, speech_ratio={"a": 0.9, "b": 0.9},
                               round_trip={"a": TEXT, "b": TEXT})
    responses = [response(TASK, "b", order=2), response(TASK, "a", order=1)]
    rewards = by_hotkey(reward_tts(TASK, TEXT, responses, references, timeout_s=10.0))
    assert rewards["a"].reward == rewards["b"].reward > 0.9  # one voice, two honest miners


def test_little_speech_lowers_the_reward() -> None:
    good = facts(voice_like())
    references = TTSReferences(audio={"a": good}, speech_ratio={"a": 0.2}, round_trip={"a": TEXT})
    (reward,) = reward_tts(TASK, TEXT, [response(TASK, "a")], references, timeout_s=10.0)
    assert reward.breakdown["speech"] == pytest.approx(0.5)
    assert 0.4 < reward.reward < 0.5


def test_the_duration_window_follows_the_expected_speaking_time() -> None:
    text = " ".join([TEXT] * 3)  # about 170 characters: some 11 s of ordinary reading
    expected = expected_speaking_s(text)
    shortest, longest = plausible_duration(text)
    assert 10.0 < expected < 12.5
    assert shortest == pytest.approx(expected / 2) and longest == pytest.approx(expected * 1.5 + 2.0)


def test_dead_air_beyond_a_natural_pause_costs_in_proportion() -> None:
    assert dead_air_term(0.8, 0.9, 10.0) == (1.0, 0.0)  # natural pauses are free
    term, excess = dead_air_term(6.0, 0.5, 16.0)
    assert excess == pytest.approx(5.0) and term == pytest.approx(1 - 5.0 / 16.0)


def test_a_padded_reading_scores_well_below_the_clean_one() -> None:
    """Twelve seconds of silence before a ten-second reading (the round trip hears the same words)."""
    text = " ".join([TEXT] * 3)
    clean = facts(voice_like(seconds=10.0))
    padded = facts(np.concatenate([np.zeros(int(4.0 * RATE), np.float32), voice_like(seconds=10.0)]))
    task = make_task(TaskKind.TTS, text=text)
    references = TTSReferences(audio={"clean": clean, "padded": padded},
                               speech_ratio={"clean": 0.9, "padded": 0.64},
                               round_trip={"clean": text, "padded": text},
                               edge_silence_s={"clean": (0.1, 0.2), "padded": (4.1, 0.2)})
    responses = [response(task, "clean", order=0), response(task, "padded", order=1)]
    rewards = by_hotkey(reward_tts(task, text, responses, references, timeout_s=10.0))
    assert rewards["clean"].reward - rewards["padded"].reward >= 0.1, rewards
    assert rewards["padded"].breakdown["dead_air_s"] == pytest.approx(3.1)
    long_pad = facts(np.concatenate([np.zeros(int(12.0 * RATE), np.float32), voice_like(seconds=10.0)]))
    assert audio_problem(long_pad, text) == "duration"  # 22 s for ~11 s of text is past the window
