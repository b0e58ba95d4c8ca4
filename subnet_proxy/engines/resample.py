"""Change the sample rate of mono float32 audio with libswresample (PyAV, a faster-whisper dependency).

PyAV is imported on first use: the engines come with the ``miner``/``validator`` extras, and a base
install still imports this package (for ``--help`` and the one-line missing-extra error).
"""

from __future__ import annotations

import numpy as np


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 ``samples`` at ``source_rate`` resampled to ``target_rate`` (band-limited, not linear).

    Whisper wants 16 kHz and a TTS caller may ask for any rate from 8 to 48 kHz; linear
    interpolation would alias, swresample filters properly and takes ~1 ms per second of audio.
    """
    if source_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {source_rate} -> {target_rate}")
    import av

    mono = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
    if source_rate == target_rate or mono.size == 0:
        return mono
    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target_rate)
    pieces = [out.to_ndarray()[0] for out in resampler.resample(frame)]
    pieces += [out.to_ndarray()[0] for out in resampler.resample(None)]
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)
