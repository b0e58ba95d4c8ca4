"""decode_audio's ceilings: small files that expand to huge sample arrays are refused without expanding."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from protocol import AudioDecodeError, AudioTooLongError, decode_audio, encode_audio
from protocol.audio import DEFAULT_MAX_DECODE_S, MAX_CHANNELS, MAX_DECODE_RATE

#: FLAC's STREAMINFO total-samples field: low nibble of byte 21, then bytes 22-25.
_TOTAL_SAMPLES = slice(22, 26)


def flac_tone(seconds: float, *, rate: int = 48_000, channels: int = 8) -> bytes:
    """A constant signal: FLAC stores it in a few bytes a frame, the shape of a decompression bomb."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as out:
        out.write(np.full((int(rate * seconds), channels), 0.1, dtype=np.float32))
    return buf.getvalue()


def without_length(flac: bytes) -> bytes:
    """The same FLAC with the total-samples field zeroed, as a streaming encoder writes it."""
    data = bytearray(flac)
    data[21] &= 0xF0
    data[_TOTAL_SAMPLES] = bytes(4)
    return bytes(data)


def test_long_silence_is_refused_from_the_header() -> None:
    bomb = flac_tone(DEFAULT_MAX_DECODE_S + 5, rate=8_000, channels=1)
    assert len(bomb) < 200_000
    started = time.perf_counter()
    with pytest.raises(AudioTooLongError) as caught:
        decode_audio(bomb)
    assert caught.value.limit_s == DEFAULT_MAX_DECODE_S
    assert time.perf_counter() - started < 0.5


def test_the_limit_is_the_callers() -> None:
    clip = flac_tone(3, rate=8_000, channels=1)
    assert decode_audio(clip, max_seconds=3.5).duration_s == pytest.approx(3.0)
    with pytest.raises(AudioTooLongError):
        decode_audio(clip, max_seconds=2.5)


def test_a_header_without_length_is_read_only_up_to_the_limit() -> None:
    bomb = without_length(flac_tone(10))  # 10 s of 8 channels: 15 MB of float32 if fully decoded
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLongError):
            decode_audio(bomb, max_seconds=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000


def test_too_many_channels_is_refused() -> None:
    wide = encode_audio(np.zeros((800, MAX_CHANNELS + 1), dtype=np.float32), 8_000, "wav")
    with pytest.raises(AudioDecodeError, match="channels"):
        decode_audio(wide)


def test_absurd_sample_rate_is_refused() -> None:
    fast = encode_audio(np.zeros(1_000, dtype=np.float32), MAX_DECODE_RATE * 2, "wav")
    with pytest.raises(AudioDecodeError, match="sample rate"):
        decode_audio(fast)


def test_multichannel_is_downmixed_block_by_block() -> None:
    rng = np.random.default_rng(7)
    stereo = rng.uniform(-0.5, 0.5, (100_000, 2)).astype(np.float32)  # longer than one read block
    decoded = decode_audio(encode_audio(stereo, 16_000, "flac"))
    expected = sf.read(io.BytesIO(encode_audio(stereo, 16_000, "flac")), dtype="float32")[0].mean(axis=1)
    assert decoded.samples.dtype == np.float32
    np.testing.assert_array_equal(decoded.samples, expected)


def test_the_error_says_what_is_wrong_not_where_in_memory() -> None:
    with pytest.raises(AudioDecodeError) as caught:
        decode_audio(b"RIFF\0\0\0\0WAVEjunk")
    assert "data" in str(caught.value) and "BytesIO" not in str(caught.value) and "0x" not in str(caught.value)
