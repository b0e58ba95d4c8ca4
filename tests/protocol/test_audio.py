"""decode_audio's ceilings: small files that expand to huge sample arrays are refused without expanding;
probe_audio makes the same checks, from the header where the header is the whole truth."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from protocol import AudioDecodeError, AudioTooLongError, audio, decode_audio, encode_audio, probe_audio
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


# -- probe_audio: the checks of a decode, with integer-PCM WAV read from its header ----------------------
def _wav(seconds: float, *, rate: int = 16_000, subtype: str = "PCM_16", fill: float = 0.1) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.full(int(rate * seconds), fill, dtype=np.float32), rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_probe_reads_an_integer_pcm_wav_from_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_samples(*args: object) -> None:
        raise AssertionError("samples were read")

    monkeypatch.setattr(audio, "_read_mono", no_samples)
    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32"):
        info = probe_audio(_wav(0.5, subtype=subtype))
        assert (info.format, info.sample_rate, info.duration_s) == ("wav", 16_000, 0.5), subtype


def test_probe_counts_the_samples_present_not_the_ones_claimed() -> None:
    data = bytearray(_wav(0.5))
    data[40:44] = (16_000 * 2 * 100).to_bytes(4, "little")  # the data chunk claims 100 s
    assert probe_audio(bytes(data)).duration_s == 0.5
    assert probe_audio(bytes(data), max_seconds=1).duration_s == 0.5


def test_probe_refuses_what_decode_refuses() -> None:
    header_only = _wav(0.5)[:44]
    with pytest.raises(AudioDecodeError, match="no samples"):
        probe_audio(header_only)
    with pytest.raises(AudioTooLongError):
        probe_audio(_wav(2.0), max_seconds=1.5)
    with pytest.raises(AudioDecodeError, match="not a WAV"):
        probe_audio(b"RIFX" + bytes(100))
    nan_float = bytearray(_wav(0.1, subtype="FLOAT"))
    nan_float[-4:] = np.array([np.nan], dtype="<f4").tobytes()  # float samples can be NaN: read in full
    with pytest.raises(AudioDecodeError, match="non-finite"):
        probe_audio(bytes(nan_float))
    with pytest.raises(AudioDecodeError, match="no samples|cannot decode"):
        probe_audio(without_length(flac_tone(1.0))[:200])


def test_probe_of_a_compressed_file_decodes_it() -> None:
    flac = flac_tone(1.5, rate=16_000, channels=1)
    info = probe_audio(flac)
    assert (info.format, info.sample_rate, info.duration_s) == ("flac", 16_000, 1.5)
    with pytest.raises(AudioTooLongError):
        probe_audio(flac, max_seconds=1.0)


def _soundfile_view(data: bytes) -> tuple[int, int, int] | None:
    """(rate, channels, frames) as libsndfile reads the header, or None when it refuses the file."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as file:
            return file.samplerate, file.channels, file.frames
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None


def _with_list_chunk(wav: bytes, payload: bytes) -> bytes:
    """``wav`` with a LIST chunk (odd sizes padded) between its ``fmt `` and ``data`` chunks."""
    data_at = wav.index(b"data")
    chunk = b"LIST" + len(payload).to_bytes(4, "little") + payload + b"\0" * (len(payload) & 1)
    out = bytearray(wav[:data_at] + chunk + wav[data_at:])
    out[4:8] = (len(out) - 8).to_bytes(4, "little")
    return bytes(out)


def _variants(wav: bytes) -> dict[str, bytes]:
    claims_more = bytearray(wav)
    at = wav.index(b"data") + 4
    claims_more[at:at + 4] = (len(wav) * 1000).to_bytes(4, "little")
    return {"whole": wav, "claims more": bytes(claims_more), "list chunk": _with_list_chunk(wav, b"INFOabc"),
            "mid frame": wav[:len(wav) - 1], "header only": wav[:wav.index(b"data") + 8],
            "one byte": wav[:wav.index(b"data") + 9], "cut in fmt": wav[:30], "trailing": wav + b"junk" * 3}


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32"])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [8_000, 44_100])
def test_the_wav_header_reader_agrees_with_libsndfile(subtype: str, channels: int, rate: int) -> None:
    """Whatever the fast header reader accepts, libsndfile reads the same way; what it does not
    recognise goes to soundfile, so probe_audio answers as libsndfile would either way."""
    buf = io.BytesIO()
    sf.write(buf, np.full((rate // 10, channels), 0.1, dtype=np.float32), rate, format="WAV", subtype=subtype)
    fast_paths = 0
    for name, data in _variants(buf.getvalue()).items():
        reference = _soundfile_view(data)
        header = audio._pcm_wav_header(data)
        if header is not None:
            fast_paths += 1
            assert header == reference, name
        if reference is None or reference[2] == 0:
            with pytest.raises(AudioDecodeError):
                probe_audio(data)
        else:
            info = probe_audio(data)
            assert (info.sample_rate, info.duration_s) == (rate, reference[2] / rate), name
    if channels <= 2:  # plain PCM headers (soundfile writes WAVE_FORMAT_EXTENSIBLE beyond two channels)
        assert fast_paths >= 6, "the fast reader should take the usual files"
