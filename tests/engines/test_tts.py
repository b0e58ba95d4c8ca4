"""Piper synthesis with the shipped voice: real speech at the requested rate, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from protocol import TTS_VOICES
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines import EngineInputError, ModelLoadError, PiperSynthesizer
from subnet_proxy.engines.tts import PEAK_LEVEL, SHIPPED_VOICE

TEXT = "Piper reads this sentence aloud. Then it reads a second one."


@pytest.mark.slow
@pytest.mark.parametrize("rate", [None, 8_000, 16_000, 48_000])
def test_speech_at_the_requested_rate(engines, rate):
    speech = engines.synthesizer.synthesize(TEXT, sample_rate=rate)
    assert speech.sample_rate == (rate or engines.synthesizer.sample_rate)
    assert 2.0 < speech.duration_s < 8.0  # about a dozen words
    assert speech.samples.dtype == np.float32
    peak = float(np.abs(speech.samples).max())
    assert 0.3 < peak <= PEAK_LEVEL + 0.02  # loud enough, never at full scale
    samples, sample_rate = speech  # unpacks as (samples, rate)
    assert sample_rate == speech.sample_rate and samples is speech.samples


@pytest.mark.slow
def test_named_voice_and_unknown_voice(engines):
    assert engines.synthesizer.synthesize("Hello.", voice=SHIPPED_VOICE).samples.size > 0
    with pytest.raises(EngineInputError, match="not available"):
        engines.synthesizer.synthesize("Hello.", voice="de_DE-thorsten-high")


@pytest.mark.slow
@pytest.mark.parametrize("voice", TTS_VOICES)
def test_the_reference_miner_speaks_every_voice_validators_accept(engines, voice):
    """The door lets through the protocol's voices only (400 unsupported_voice otherwise); each of
    them must be one the shipped engine speaks, or a client's accepted task could only fail."""
    assert engines.synthesizer.synthesize("Hello.", voice=voice).samples.size > 0


@pytest.mark.slow
@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_refused(engines, text):
    with pytest.raises(EngineInputError, match="empty"):
        engines.synthesizer.synthesize(text)


def test_missing_voice_file_names_the_path(tmp_path: Path):
    missing = tmp_path / "voice.onnx"
    with pytest.raises(ModelLoadError, match="not found") as err:
        PiperSynthesizer(EngineSettings(tts_voice=str(missing))).load()
    assert err.value.source == str(missing)


def test_voice_without_config_names_the_config(tmp_path: Path):
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"onnx")
    with pytest.raises(ModelLoadError, match="config") as err:
        PiperSynthesizer(EngineSettings(tts_voice=str(model))).load()
    assert err.value.source == str(model) + ".json"


def test_unknown_voice_name_is_refused():
    with pytest.raises(ModelLoadError, match=".onnx"):
        PiperSynthesizer(EngineSettings(tts_voice="en_US-lessac-medium")).load()
