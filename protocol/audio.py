"""Audio on the wire: encoded files (WAV/FLAC/OGG/MP3) carried as base64, decoded with soundfile.

The synapses carry the encoded file, never raw samples, so a miner and a validator agree on the
bytes that were hashed and the container says its own sample rate and channel count.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import soundfile as sf

AudioFormat = Literal["wav", "flac", "ogg", "mp3"]
AUDIO_FORMATS: tuple[str, ...] = get_args(AudioFormat)

#: soundfile's container name for each wire format.
_SF_FORMATS: dict[str, str] = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}
_SF_SUBTYPES: dict[str, str | None] = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS", "mp3": None}
_MIME: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}


#: Ceilings on what a file may expand to. Compressed containers are decompression bombs waiting to
#: happen: FLAC stores silence in a few bytes a frame, so 1.4 MB of it declares an hour of 8-channel
#: 48 kHz audio (6 GB of float32). Every decode checks the header against these before reading, and
#: reads block by block so a lying header cannot outgrow them either.
MAX_CHANNELS = 8
MAX_DECODE_RATE = 192_000
DEFAULT_MAX_DECODE_S = 600.0
#: The cost bound: samples decoded (frames x channels), whatever mix of rate, length and channels
#: makes them. Length alone is no bound: 599 s at 192 kHz is a 363 KB FLAC of silence that expands
#: to 115 M samples (0.46 GB as float32, twice that while the blocks were joined). This allows 10
#: minutes of 48 kHz stereo (or 44.1 kHz stereo for 10.9 min, 16 kHz mono for an hour);
#: past it a file is refused from its header (``AudioTooLargeError``) before anything is decoded.
DEFAULT_MAX_DECODE_SAMPLES = 600 * 48_000 * 2
_BLOCK_FRAMES = 131_072
#: what libsndfile reports as the length of a FLAC whose header leaves it out.
_UNKNOWN_FRAMES = 2**63 - 1


class AudioDecodeError(ValueError):
    """The bytes are not audio soundfile can read (or carry no samples)."""


class UnsupportedRateError(AudioDecodeError):
    """The header's sample rate is outside what the caller takes; nothing was decoded."""

    def __init__(self, *, sample_rate: int, max_rate: int) -> None:
        super().__init__(f"sample rate {sample_rate} Hz is outside 1..{max_rate}")
        self.sample_rate = sample_rate


class AudioTooLongError(AudioDecodeError):
    """The audio is longer than the caller's limit; decoding stopped there (``limit_s`` says which)."""

    def __init__(self, *, limit_s: float) -> None:
        super().__init__(f"audio is longer than the limit of {limit_s:g} s")
        self.limit_s = limit_s


class AudioTooLargeError(AudioTooLongError):
    """The audio needs more decoded samples than the caller allows: at its rate and channel count it
    may be at most ``limit_s`` long (a 192 kHz file a quarter as long as a 48 kHz one)."""

    def __init__(self, *, max_samples: int, rate: int, channels: int) -> None:
        AudioDecodeError.__init__(
            self, f"audio needs more than {max_samples} decoded samples: at {rate} Hz and {channels} channel(s) "
                  f"at most {max_samples / (rate * channels):.1f} s")
        self.limit_s = max_samples / (rate * channels)


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Mono float32 samples in [-1, 1] with their sample rate and the container they came in."""

    samples: np.ndarray
    sample_rate: int
    format: str

    @property
    def duration_s(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate) if self.sample_rate else 0.0


def mime_type(fmt: str) -> str:
    """The Content-Type for an audio format name."""
    return _MIME.get(fmt.lower(), "application/octet-stream")


def sniff_format(data: bytes) -> str | None:
    """Name the container from its magic bytes, or None when it is none of the wire formats."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0):
        return "mp3"
    return None


def decode_audio(data: bytes, *, max_seconds: float = DEFAULT_MAX_DECODE_S,
                 max_rate: int = MAX_DECODE_RATE, max_samples: int = DEFAULT_MAX_DECODE_SAMPLES) -> DecodedAudio:
    """Decode an encoded file into mono float32 samples; raise AudioDecodeError for anything else.

    At most ``max_seconds`` of audio is decoded (AudioTooLongError past it), at most MAX_CHANNELS
    channels at most ``max_rate`` Hz (UnsupportedRateError; never above MAX_DECODE_RATE), at most
    ``max_samples`` samples over all channels (AudioTooLargeError), so memory stays bounded
    whatever the header claims: the mono result is its only large allocation.
    """
    with _opened(data) as (fmt, file):
        mono = _read_mono(file, _max_frames(file, max_seconds, max_rate, max_samples), max_seconds)
        rate = file.samplerate
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("audio has non-finite samples")
    return DecodedAudio(samples=mono, sample_rate=int(rate), format=fmt)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What an upload is, as far as accepting it goes."""

    format: str
    sample_rate: int
    duration_s: float


#: integer PCM: every bit pattern of the data is a valid sample.
_PCM_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32"})
_WAVE_FORMAT_PCM = 1
#: chunks a header may carry before ``data`` (LIST, fact, ...) before the walk gives up.
_MAX_WAV_CHUNKS = 32


def probe_audio(data: bytes, *, max_seconds: float = DEFAULT_MAX_DECODE_S,
                max_rate: int = MAX_DECODE_RATE, max_samples: int = DEFAULT_MAX_DECODE_SAMPLES) -> AudioInfo:
    """Every check ``decode_audio`` makes, without keeping the samples: what a server needs before it
    accepts an upload.

    An integer-PCM WAV is checked from its header alone: each bit pattern of its data is a valid
    sample, and the frames are counted from the bytes actually there (a header claiming more is cut
    to what is present, as libsndfile does), so reading the samples could refuse nothing more. A
    plain PCM header is read here (``_pcm_wav_header``: about 3 us, where opening the file through
    soundfile cost 30-90 us, the largest single cost of a small upload); one it does not fully
    recognise (WAVE_FORMAT_EXTENSIBLE, odd block sizes, a streamed length) is opened by soundfile.
    Anything else is decoded in full, block by block, each block checked and dropped (a compressed
    stream is known good only once decoded; its samples are never all held: memory stays one block
    whatever the length).
    """
    header = _pcm_wav_header(data)
    if header is not None:
        rate, channels, frames = header
        checked = _checked_frames(rate, channels, frames, max_seconds, max_rate, max_samples)
        return AudioInfo(format="wav", sample_rate=rate, duration_s=checked / rate)
    with _opened(data) as (fmt, file):
        if fmt == "wav" and file.subtype in _PCM_SUBTYPES:
            frames = _checked_frames(file.samplerate, file.channels, file.frames, max_seconds, max_rate, max_samples)
            return AudioInfo(format=fmt, sample_rate=file.samplerate, duration_s=frames / file.samplerate)
        frames = _scan(file, _max_frames(file, max_seconds, max_rate, max_samples), max_seconds)
        return AudioInfo(format=fmt, sample_rate=file.samplerate, duration_s=frames / file.samplerate)


def _checked_frames(rate: int, channels: int, frames: int, max_seconds: float, max_rate: int,
                    max_samples: int) -> int:
    """``frames``, once the header's rate, channels and length pass the ceilings ``decode_audio`` has."""
    _check_format(rate, channels, max_rate)
    if frames == 0:
        raise AudioDecodeError("audio has no samples")
    if frames > int(max_seconds * rate):
        raise AudioTooLongError(limit_s=max_seconds)
    if frames * channels > max_samples:
        raise AudioTooLargeError(max_samples=max_samples, rate=rate, channels=channels)
    return frames


def _pcm_wav_header(data: bytes) -> tuple[int, int, int] | None:
    """(sample rate, channels, frames present) of a RIFF/WAVE file with a plain integer-PCM ``fmt ``
    chunk (8, 16, 24 or 32 bits, block align = channels x bytes) before its ``data`` chunk; None for
    anything else, which soundfile then reads. Every offset is bounded by ``len(data)``."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, fmt = 12, None
    for _ in range(_MAX_WAV_CHUNKS):
        if offset + 8 > len(data):
            return None
        chunk_id, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                return None
            tag, channels, rate = struct.unpack_from("<HHI", data, body)
            block_align, bits = struct.unpack_from("<HH", data, body + 12)
            if tag != _WAVE_FORMAT_PCM or bits not in (8, 16, 24, 32) or channels == 0 \
                    or block_align != channels * bits // 8:
                return None
            fmt = (rate, channels, block_align)
        elif chunk_id == b"data":
            if fmt is None or size in (0, 0xFFFF_FFFF):  # no format yet, or a length left unknown
                return None
            rate, channels, block_align = fmt
            return rate, channels, min(size, len(data) - body) // block_align
        offset = body + size + (size & 1)  # chunks are padded to an even length
    return None


@contextlib.contextmanager
def _opened(data: bytes) -> Iterator[tuple[str, sf.SoundFile]]:
    """(container name, open file); libsndfile's failures raised as AudioDecodeError."""
    fmt = sniff_format(data)
    if fmt is None:
        raise AudioDecodeError("not a WAV, FLAC, OGG or MP3 file")
    try:
        with sf.SoundFile(io.BytesIO(data)) as file:
            yield fmt, file
    except AudioDecodeError:
        raise
    except sf.LibsndfileError as exc:  # its str() names the in-memory file object: no use to the sender
        raise AudioDecodeError(f"cannot decode {fmt} audio: {exc.error_string}") from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError(f"cannot decode {fmt} audio: {exc}") from exc


def _check_format(rate: int, channels: int, max_rate: int) -> None:
    max_rate = min(max_rate, MAX_DECODE_RATE)
    if not 0 < rate <= max_rate:
        raise UnsupportedRateError(sample_rate=rate, max_rate=max_rate)
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioDecodeError(f"{channels} channels; at most {MAX_CHANNELS} are accepted")


def _max_frames(file: sf.SoundFile, max_seconds: float, max_rate: int, max_samples: int) -> int:
    """Check the header against the ceilings; the most frames ``max_seconds`` and ``max_samples``
    allow (a header that already says more is refused before any decoding)."""
    _check_format(file.samplerate, file.channels, max_rate)
    by_samples = max_samples // file.channels
    if _UNKNOWN_FRAMES > file.frames > int(max_seconds * file.samplerate):  # a streamed FLAC may not say
        raise AudioTooLongError(limit_s=max_seconds)
    if _UNKNOWN_FRAMES > file.frames > by_samples:
        raise AudioTooLargeError(max_samples=max_samples, rate=file.samplerate, channels=file.channels)
    return min(int(max_seconds * file.samplerate), by_samples)


def _blocks(file: sf.SoundFile, max_frames: int, max_seconds: float) -> Iterator[np.ndarray]:
    """The file's frames block by block ([n, channels] float32), refused past ``max_frames``."""
    total = 0
    while True:
        chunk = file.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(chunk):
            break
        total += len(chunk)
        if total > max_frames:
            raise _past_limit(file, max_frames, max_seconds)
        yield chunk
        if total >= file.frames:  # all the header promised (an unknown length reads on to the end)
            break
    if total == 0:
        raise AudioDecodeError("audio has no samples")


def _past_limit(file: sf.SoundFile, max_frames: int, max_seconds: float) -> AudioDecodeError:
    """The error for a stream that ran past ``max_frames``: whichever bound set it."""
    if max_frames < int(max_seconds * file.samplerate):
        return AudioTooLargeError(max_samples=max_frames * file.channels, rate=file.samplerate,
                                  channels=file.channels)
    return AudioTooLongError(limit_s=max_seconds)


def _scan(file: sf.SoundFile, max_frames: int, max_seconds: float) -> int:
    """Decode every block and check it, keeping none: the frame count."""
    frames = 0
    for chunk in _blocks(file, max_frames, max_seconds):
        if not np.all(np.isfinite(chunk)):
            raise AudioDecodeError("audio has non-finite samples")
        frames += len(chunk)
    return frames


def _read_mono(file: sf.SoundFile, max_frames: int, max_seconds: float) -> np.ndarray:
    """Read and downmix block by block into one array, up to ``max_frames``: sized from the header
    when it says the length (no list of blocks joined at the end, which held the audio twice)."""
    known = file.frames if file.frames < _UNKNOWN_FRAMES else 0
    mono = np.empty(min(known, max_frames), dtype=np.float32)
    filled = 0
    for chunk in _blocks(file, max_frames, max_seconds):
        block = chunk.mean(axis=1) if file.channels > 1 else chunk[:, 0]
        if filled + len(block) > len(mono):  # an unknown or understated length: grow geometrically
            grown = np.empty(min(max(2 * len(mono), filled + len(block)), max_frames), dtype=np.float32)
            grown[:filled] = mono[:filled]
            mono = grown
        mono[filled:filled + len(block)] = block
        filled += len(block)
    return mono[:filled] if filled < len(mono) else mono


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str = "wav") -> bytes:
    """Encode mono (or [n, channels]) float samples as a file of the given wire format."""
    fmt = fmt.lower()
    if fmt not in _SF_FORMATS:
        raise ValueError(f"unsupported audio format {fmt!r}; use one of {AUDIO_FORMATS}")
    buf = io.BytesIO()
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    sf.write(buf, clipped, int(sample_rate), format=_SF_FORMATS[fmt], subtype=_SF_SUBTYPES[fmt])
    return buf.getvalue()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64 decoding: anything that is not canonical base64 raises ValueError."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"invalid base64: {exc}") from exc


def b64_decoded_size(text: str) -> int:
    """The decoded size of a base64 string without decoding it (for limits checked up front)."""
    padding = text[-2:].count("=") if text else 0
    return len(text) * 3 // 4 - padding
