"""Speech detection with the Silero VAD model that ships inside faster-whisper (ONNX, CPU).

TTS rewards ask "is there speech in this audio at all?": white noise, tones and silence can pass
loudness checks, but Silero's per-window speech probability stays low on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from subnet_proxy.engines.assets import package_file
from subnet_proxy.engines.base import ModelLoadError
from subnet_proxy.engines.resample import resample

#: Silero runs on 16 kHz audio in 512-sample windows (32 ms).
VAD_RATE = 16_000
WINDOW = 512
DEFAULT_THRESHOLD = 0.5
SILERO_FILE = "silero_vad_v6.onnx"


@dataclass(frozen=True, slots=True)
class SpeechActivity:
    """How much of a clip is speech (seconds and share of 32 ms windows above the threshold), and how
    long it is silent before the first speech window and after the last (dead air)."""

    speech_s: float
    total_s: float
    leading_s: float = 0.0
    trailing_s: float = 0.0

    @property
    def ratio(self) -> float:
        return self.speech_s / self.total_s if self.total_s > 0 else 0.0


def default_model_path() -> Path:
    """The Silero model file inside the installed faster-whisper wheel."""
    return package_file("faster_whisper", "assets", SILERO_FILE, distribution="faster-whisper")


class SpeechDetector:
    """A loaded Silero VAD; thread-safe (onnxruntime sessions are), CPU-bound: call it off the event loop."""

    def __init__(self, model_path: Path, *, threshold: float = DEFAULT_THRESHOLD) -> None:
        try:
            from faster_whisper.vad import SileroVADModel
        except ImportError as exc:
            raise ModelLoadError("speech detection needs faster-whisper", source="faster-whisper") from exc
        if not model_path.is_file():
            raise ModelLoadError("Silero VAD model not found", source=str(model_path))
        try:
            self._model = SileroVADModel(str(model_path))
        except RuntimeError as exc:  # onnxruntime missing, or an unreadable model file
            raise ModelLoadError(f"cannot load Silero VAD: {exc}", source=str(model_path)) from exc
        self.threshold = threshold

    @classmethod
    def load(cls, model_path: str | Path | None = None, *, threshold: float = DEFAULT_THRESHOLD) -> "SpeechDetector":
        return cls(Path(model_path) if model_path else default_model_path(), threshold=threshold)

    def probabilities(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Speech probability of each 32 ms window of mono float samples at any rate."""
        audio = resample(np.asarray(samples, dtype=np.float32), rate, VAD_RATE)
        if audio.size == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.pad(audio, (0, (-audio.size) % WINDOW))
        return np.asarray(self._model(padded), dtype=np.float32).reshape(-1)

    def activity(self, samples: np.ndarray, rate: int) -> SpeechActivity:
        """Seconds of speech (windows at or above the threshold) out of the clip's length."""
        probs = self.probabilities(samples, rate)
        total = float(len(samples)) / float(rate) if rate > 0 else 0.0
        voiced = np.flatnonzero(probs >= self.threshold)
        if voiced.size == 0:
            return SpeechActivity(speech_s=0.0, total_s=total, leading_s=total, trailing_s=total)
        speech = float(voiced.size) * WINDOW / VAD_RATE
        leading = min(float(voiced[0]) * WINDOW / VAD_RATE, total)
        trailing = max(0.0, total - float(voiced[-1] + 1) * WINDOW / VAD_RATE)
        return SpeechActivity(speech_s=min(speech, total), total_s=total, leading_s=leading, trailing_s=trailing)
