"""The audio subnet's wire protocol: synapses, audio helpers and the spec version.

Depends on bittensor, pydantic, numpy and soundfile only; nothing here knows about stores or HTTP.
"""

from protocol.audio import (
    AUDIO_FORMATS,
    AudioDecodeError,
    AudioFormat,
    AudioInfo,
    AudioTooLargeError,
    AudioTooLongError,
    DecodedAudio,
    UnsupportedRateError,
    b64decode,
    b64encode,
    decode_audio,
    encode_audio,
    mime_type,
    probe_audio,
    sniff_format,
)
from protocol.synapses import (
    MAX_AUDIO_BYTES,
    MAX_SUMMARY_CHARS,
    MAX_SUMMARY_SOURCE_CHARS,
    MAX_TRANSCRIPT_CHARS,
    MAX_TTS_TEXT_CHARS,
    TTS_DEFAULT_VOICE,
    TTS_VOICES,
    AudioSynapse,
    Segment,
    SummarizationSynapse,
    TranscriptionSynapse,
    TTSSynapse,
    summary_word_bound,
    summary_words,
)

__version__ = "1.1.0"


def spec_version(version: str) -> int:
    """1000*major + 10*minor + patch: the integer validators send as the weights ``version_key``."""
    major, minor, patch = (int(part) for part in version.split("."))
    return 1000 * major + 10 * minor + patch


__spec_version__ = spec_version(__version__)

__all__ = [
    "AUDIO_FORMATS",
    "MAX_AUDIO_BYTES",
    "MAX_SUMMARY_CHARS",
    "MAX_SUMMARY_SOURCE_CHARS",
    "MAX_TRANSCRIPT_CHARS",
    "MAX_TTS_TEXT_CHARS",
    "TTS_DEFAULT_VOICE",
    "TTS_VOICES",
    "AudioDecodeError",
    "AudioInfo",
    "AudioFormat",
    "AudioSynapse",
    "AudioTooLargeError",
    "AudioTooLongError",
    "DecodedAudio",
    "Segment",
    "SummarizationSynapse",
    "TTSSynapse",
    "TranscriptionSynapse",
    "UnsupportedRateError",
    "__spec_version__",
    "__version__",
    "b64decode",
    "b64encode",
    "decode_audio",
    "encode_audio",
    "mime_type",
    "probe_audio",
    "sniff_format",
    "spec_version",
    "summary_word_bound",
    "summary_words",
]
