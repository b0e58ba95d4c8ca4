"""Silero VAD (shipped in faster-whisper) tells Piper speech from noise, tones and silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from subnet_proxy.engines import ModelLoadError
from subnet_proxy.engines.vad import SpeechDetector


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector.load()


@pytest.mark.slow
@pytest.mark.parametrize("rate", [None, 8_000, 48_000])
def test_speech_is_mostly_speech_at_any_rate(engines, detector: SpeechDetector, rate: int | None) -> None:
    speech = engines.synthesizer.synthesize("The keeper kept a careful log of the weather.", sample_rate=rate)
    activity = detector.activity(speech.samples, speech.sample_rate)
    assert activity.total_s == pytest.approx(speech.duration_s)
    assert activity.ratio > 0.5


@pytest.mark.slow
def test_noise_tone_and_silence_are_not_speech(detector: SpeechDetector) -> None:
    rate = 16_000
    rng = np.random.default_rng(7)
    t = np.arange(3 * rate) / rate
    for samples in (rng.uniform(-0.5, 0.5, 3 * rate), 0.3 * np.sin(2 * np.pi * 440 * t), np.zeros(3 * rate)):
        assert detector.activity(samples.astype(np.float32), rate).ratio < 0.05
    empty = detector.activity(np.zeros(0, np.float32), rate)
    assert empty.ratio == 0.0 and empty.total_s == 0.0


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        SpeechDetector.load(tmp_path / "silero.onnx")
