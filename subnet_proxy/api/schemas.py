"""The HTTP API's request and response models: they validate requests and generate the OpenAPI document.

Requests forbid unknown fields (a typo is an error, not a silently ignored option) except the
miner's answer, which ignores extra fields by design: anything a miner says about its own score or
timing is dropped, never stored. The client library uses these same models.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError

from protocol import MAX_SUMMARY_CHARS, MAX_SUMMARY_SOURCE_CHARS, MAX_TRANSCRIPT_CHARS, MAX_TTS_TEXT_CHARS, TTS_VOICES
from protocol.audio import AudioFormat
from protocol.synapses import MAX_AUDIO_B64_CHARS, MAX_DELIVERY_URL_CHARS, Segment, check_delivery_url
from subnet_proxy.languages import SUPPORTED_LANGUAGES, UNSUPPORTED_LANGUAGE, check_language
from subnet_proxy.tasks import KindName, MinerReward, MinerStat, ResponseState, TaskError, TaskStatus, Transition

LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$"
VOICE_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: Unicode categories with nothing to say or speak: separators (Zs, Zl, Zp), controls (Cc), format
#: characters (Cf: zero-width space and joiners, BOM, bidi marks, soft hyphen, word joiner, tags),
#: unassigned and private use (Cn, Co), surrogates (Cs). ``str.strip`` misses every Cf one.
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Co", "Cs"})


def _not_blank(text: str) -> str:
    """A text of only whitespace or invisible characters would be taken (202) and then fail at every
    miner: refuse it here, by Unicode category."""
    if all(unicodedata.category(ch) in _INVISIBLE or ch.isspace() for ch in text):
        raise ValueError("text is blank (only whitespace or invisible characters)")
    return text


#: text a client asks to be spoken or summarized: at least one non-space character.
Text = Annotated[str, AfterValidator(_not_blank)]

INVALID_CALLBACK_URL = "invalid_callback_url"
#: field errors that are API error codes of their own (``body.invalid_request``), not ``invalid_request``.
OWN_ERROR_CODES = frozenset({"unsupported_voice", UNSUPPORTED_LANGUAGE, INVALID_CALLBACK_URL})
#: the longest callback_url taken (as long as a synapse's delivery_url).
MAX_CALLBACK_URL_CHARS = MAX_DELIVERY_URL_CHARS


def check_callback_url(url: str) -> str:
    """An absolute http(s) URL, at most MAX_CALLBACK_URL_CHARS printable ASCII characters, with a host
    and no credentials or fragment (the synapse's ``delivery_url`` rule). Whether its host is public is
    the side-server's to check (it depends on local mode and needs a lookup)."""
    if len(url) > MAX_CALLBACK_URL_CHARS or not url.isascii() or not url.isprintable() or " " in url:
        raise PydanticCustomError(INVALID_CALLBACK_URL, "callback_url must be at most {limit} printable ASCII "
                                  "characters without spaces", {"limit": MAX_CALLBACK_URL_CHARS})
    try:
        return check_delivery_url(url)
    except ValueError as exc:
        raise PydanticCustomError(INVALID_CALLBACK_URL, "callback_url {problem}", {"problem": str(exc)}) from exc


#: where a client wants a task's webhook events POSTed.
CallbackUrl = Annotated[str, AfterValidator(check_callback_url),
                        WithJsonSchema({"type": "string", "format": "uri", "maxLength": MAX_CALLBACK_URL_CHARS})]
CALLBACK_DESCRIPTION = ("http(s) URL that receives this task's webhook events (first answer, final state), signed "
                        "with X-Signature; a host that is not public is refused with 400 invalid_callback_url "
                        "(allowed in local mode).")


def status_url(task_id: str) -> str:
    return f"/api/v1/task/{task_id}/status"


def result_url(task_id: str) -> str:
    return f"/api/v1/task/{task_id}/result"


def _served_voice(voice: str) -> str:
    """A voice no miner speaks would be taken (202) and then refused by every miner: the task could
    only fail. Refuse it here, naming the voices the subnet serves (``protocol.TTS_VOICES``)."""
    if voice not in TTS_VOICES:
        raise PydanticCustomError("unsupported_voice", "voice '{voice}' is not served; the voices: {voices}",
                                  {"voice": voice, "voices": ", ".join(TTS_VOICES)})
    return voice


#: a voice the subnet serves (the list is in the OpenAPI document as the field's enum).
Voice = Annotated[str, Field(pattern=VOICE_PATTERN), AfterValidator(_served_voice),
                  WithJsonSchema({"type": "string", "enum": list(TTS_VOICES)})]

#: the spoken language of a transcription: an ISO 639 code the validator can score.
LanguageCode = Annotated[str, Field(pattern=LANGUAGE_PATTERN), AfterValidator(check_language)]
LANGUAGE_DESCRIPTION = (f"ISO 639 code; absent = detect. Supported: {', '.join(SUPPORTED_LANGUAGES)} (any region "
                        "subtag, e.g. en-GB); others are refused with 400 unsupported_language.")
LANGUAGE_SCHEMA: JsonDict = {"x-supported-languages": list(SUPPORTED_LANGUAGES)}


# -- client requests -----------------------------------------------------------------------------
class Submission(Strict):
    """What every submission may carry besides its kind's input: a kind whose request model derives
    from this one takes ``callback_url``."""

    callback_url: CallbackUrl | None = Field(None, description=CALLBACK_DESCRIPTION)


class TranscriptionJSON(Submission):
    """Transcription submitted as JSON (the multipart form is the other way)."""

    audio_b64: str = Field(min_length=1, max_length=MAX_AUDIO_B64_CHARS, description="Encoded audio file, base64.")
    format: AudioFormat | None = Field(None, description="Container (wav, flac, ogg, mp3); sniffed when absent.")
    language: LanguageCode | None = Field(None, description=LANGUAGE_DESCRIPTION, json_schema_extra=LANGUAGE_SCHEMA)


class TranscriptionForm(Submission):
    """multipart/form-data fields of a transcription (documentation of the form; parsed by hand)."""

    audio: bytes = Field(description="The audio file (WAV, FLAC, OGG or MP3).",
                         json_schema_extra={"format": "binary", "type": "string"})
    language: LanguageCode | None = Field(None, description=LANGUAGE_DESCRIPTION, json_schema_extra=LANGUAGE_SCHEMA)


class TTSRequest(Submission):
    text: Text = Field(min_length=1, max_length=MAX_TTS_TEXT_CHARS, description="Text to speak.")
    voice: Voice | None = Field(None, description=f"One of the subnet's voices ({', '.join(TTS_VOICES)}); "
                                "absent = the miner's default. Any other is 400 unsupported_voice.")


class SummarizationRequest(Submission):
    text: Text = Field(min_length=1, max_length=MAX_SUMMARY_SOURCE_CHARS, description="Text to summarize.")
    max_words: int | None = Field(None, ge=5, le=2_000, description="Upper bound on the summary's words.")


class TaskAccepted(Strict):
    task_id: str
    status: TaskStatus
    status_url: str
    result_url: str


# -- task status and results -----------------------------------------------------------------------
class AnswerView(Strict):
    """A miner's answer as a client sees it: text, or a URL for audio."""

    uid: int
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    audio_url: str | None = None
    audio_format: str | None = None
    latency_s: float | None = None
    received_at: datetime


class MinerProgress(Strict):
    uid: int
    state: Literal["waiting"] | ResponseState
    latency_s: float | None = None


class FinalView(Strict):
    uid: int
    score: float
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    audio_url: str | None = None
    audio_format: str | None = None
    decided_at: datetime


WebhookEventType = Literal["task.first_answer", "task.done", "task.approved", "task.failed", "task.expired"]


class WebhookEvent(Strict):
    """The JSON body of a webhook POST. ``id`` is stable across retries (deduplicate on it); ``created``
    is when the event happened (unix seconds). ``data``: the first answer (``answer``) or the final
    state (``error``, ``result``), and the task's ``status_url`` and ``result_url`` (paths on this
    side-server). A cancelled task is ``task.failed`` with error code ``cancelled``."""

    id: str
    type: WebhookEventType
    task_id: str
    status: TaskStatus
    created: int
    data: dict[str, Any]


class WebhookView(Strict):
    """How one webhook event's delivery went (on the task's status)."""

    event_id: str
    type: str
    state: Literal["pending", "delivered", "failed"] = Field(description="'failed': given up (refused address, "
                                                              "or not delivered within --proxy.webhook_max_age_s).")
    attempts: int
    last_status: int | None = Field(None, description="HTTP status of the last attempt (none: no answer).")
    last_error: str | None = Field(None, description="Why the last attempt failed, when it got no answer.")
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = Field(None, description="When it is tried again (pending only).")
    delivered_at: datetime | None = None


class TaskStatusView(Strict):
    task_id: str
    kind: KindName
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    timeline: list[Transition]
    first_response: AnswerView | None = Field(None, description="The first valid answer (immediate feedback).")
    result: FinalView | None = Field(None, description="The evaluated final result.")
    miners: list[MinerProgress] = Field(default_factory=list, description="Per-miner progress.")
    error: TaskError | None = None
    callback_url: str | None = None
    webhooks: list[WebhookView] = Field(default_factory=list, description="The task's webhook events and their "
                                        "delivery (with a callback_url).")


class TaskSummary(Strict):
    """One line of a client's own listing: enough to pick a task and follow its URLs."""

    task_id: str
    kind: KindName
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    error: TaskError | None = None
    status_url: str
    result_url: str


class TaskPage(Strict):
    tasks: list[TaskSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next (older) page; null: no more.")


class TextResult(Strict):
    """A text result (transcription, summarization); audio results are served as audio bytes."""

    task_id: str
    kind: KindName
    stage: Literal["first", "final"] = Field(description="'first': the first valid answer, not yet evaluated.")
    uid: int
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    score: float | None = None


class ResultPending(Strict):
    """No result yet (the wait ran out): poll again or wait on the events stream."""

    task_id: str
    status: TaskStatus
    result_url: str


# -- neurons (signed) ------------------------------------------------------------------------------
class MinerAnswer(BaseModel):
    """A miner's asynchronous answer. Extra fields (self-reported scores, timings) are ignored."""

    model_config = ConfigDict(extra="ignore")

    task_id: str = Field(min_length=1, max_length=64)
    text: str | None = Field(None, max_length=max(MAX_TRANSCRIPT_CHARS, MAX_SUMMARY_CHARS))
    segments: list[Segment] | None = Field(None, max_length=10_000)
    audio_b64: str | None = Field(None, max_length=MAX_AUDIO_B64_CHARS)
    audio_format: AudioFormat | None = None


class AnswerAccepted(Strict):
    task_id: str
    uid: int
    first: bool = Field(description="This is the task's first valid answer.")


class ValidatorInput(Strict):
    """A task's input for evaluation; audio is fetched from ``audio_url`` (signed GET)."""

    audio_url: str | None = None
    audio_format: str | None = None
    audio_seconds: float | None = None
    language: str | None = None
    text: str | None = None
    voice: str | None = None
    max_words: int | None = None


class ValidatorResponseView(Strict):
    uid: int
    hotkey: str
    state: ResponseState
    latency_s: float | None = None
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    audio_url: str | None = None
    audio_format: str | None = None
    audio_sample_rate: int | None = None


class ValidatorTask(Strict):
    """A task ready for evaluation. Never carries ground truth nor whether the task is synthetic."""

    task_id: str
    kind: KindName
    created_at: datetime
    input: ValidatorInput
    responses: list[ValidatorResponseView]


class ValidatorTaskPage(Strict):
    tasks: list[ValidatorTask]
    next_cursor: str | None = None


#: bounds on a reward's breakdown (the shipped rewards use fewer than ten short names).
MAX_BREAKDOWN_TERMS = 32
MAX_BREAKDOWN_NAME = 64


def _storable_rewards(rewards: list[MinerReward]) -> list[MinerReward]:
    """Breakdowns are free-form, so bound them: NaN/Infinity parse as floats but are stored as null,
    which no longer reads back, so one such evaluation would make the task's evaluations unreadable."""
    for reward in rewards:
        if len(reward.breakdown) > MAX_BREAKDOWN_TERMS:
            raise ValueError(f"a breakdown has at most {MAX_BREAKDOWN_TERMS} terms")
        if any(len(name) > MAX_BREAKDOWN_NAME for name in reward.breakdown):
            raise ValueError(f"breakdown names are at most {MAX_BREAKDOWN_NAME} characters")
        if not all(math.isfinite(value) for value in reward.breakdown.values()):
            raise ValueError("breakdown values must be finite numbers")
    return rewards


class EvaluationRequest(Strict):
    task_id: str = Field(min_length=1, max_length=64)
    rewards: Annotated[list[MinerReward], AfterValidator(_storable_rewards)] = Field(min_length=1, max_length=256)


class EvaluationOutcome(Strict):
    task_id: str
    recorded: bool
    status: TaskStatus
    stake_share: float
    evaluations: int


# -- admin ----------------------------------------------------------------------------------------
WebhookSecret = Annotated[str, Field(min_length=16, max_length=256, pattern=r"^[!-~]+$")]


class KeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["client", "admin", "viewer"] = "client"
    rate_per_s: float | None = Field(None, gt=0, le=100_000)
    burst: int | None = Field(None, ge=1, le=1_000_000)
    max_in_flight: int | None = Field(None, ge=1, le=10_000)
    daily_tasks: int | None = Field(None, ge=1, description="Tasks a UTC day (429 quota_exceeded past it).")
    daily_audio_s: float | None = Field(None, gt=0, description="Seconds of input audio a UTC day.")
    daily_chars: int | None = Field(None, ge=1, description="Characters of input text a UTC day.")
    webhook_secret: WebhookSecret | None = Field(None, description="Signs this key's webhook events (default: the "
                                                 "validator's secret).")


class WebhookSecretSet(Strict):
    secret: WebhookSecret | None = Field(None, description="The new secret; absent: one is generated.")


class WebhookSecretView(Strict):
    key_id: str
    webhook_secret: str = Field(description="The secret that now signs this key's webhook events.")


class KeyView(Strict):
    key_id: str
    name: str
    role: Literal["client", "admin", "viewer"]
    rate_per_s: float | None = None
    burst: int | None = None
    max_in_flight: int | None = None
    daily_tasks: int | None = None
    daily_audio_s: float | None = None
    daily_chars: int | None = None
    created_at: datetime
    revoked_at: datetime | None = None
    webhook_secret_set: bool = Field(False, description="The key signs its webhooks with a secret of its own.")


class KeyCreated(KeyView):
    key: str = Field(description="The API key itself: shown this once, stored only as a hash.")


class KeyList(Strict):
    keys: list[KeyView]


# -- health ---------------------------------------------------------------------------------------
class CheckView(Strict):
    ok: bool
    error: str | None = None
    detail: dict[str, Any] | None = None


class HealthView(Strict):
    status: Literal["ok", "degraded"]
    live: bool
    ready: bool
    checks: dict[str, CheckView]
    loops: dict[str, CheckView] = Field(default_factory=dict, description="The validator's loops (resync, weights, "
                                        "dispatch, scoring, ...): a stalled one is not ok and makes the answer 503.")
    reasons: list[str] = Field(default_factory=list, description="Why the answer is 503 (empty when 200).")
    tasks: dict[str, int]
    miners_available: int
    #: validators counted in quorums (this one and the peers it found); None: every permitted one (a shared store)
    quorum_members: int | None = None
    version: str
    uptime_s: float


class ProbeView(Strict):
    """An orchestrator's probe: ``/api/v1/health/live`` (the process answers) or ``/ready`` (takes work)."""

    status: Literal["ok", "unavailable"]
    reason: str | None = None


class MinerList(Strict):
    miners: list[MinerStat]


class DashboardMiner(MinerStat):
    kinds: dict[str, float] = Field(default_factory=dict, description="EMA of rewards per task kind (display only).")


class DashboardView(Strict):
    """Everything ``/dashboard`` draws, in one document (also each ``state`` event of its live feed)."""

    generated_at: datetime
    status: Literal["ok", "degraded"]
    tasks: dict[str, int] = Field(description="Tasks in the store by status.")
    miners: list[DashboardMiner]
    loops: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Each validator loop's health.")
    activity: dict[str, Any] = Field(default_factory=dict, description="The last hour per kind (counts, approvals "
                                     "per minute, latency percentiles), the newest tasks and failures.")
    weights: list[dict[str, Any]] = Field(default_factory=list, description="Weight-setting attempts, newest first.")


class ErrorDetail(Strict):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(Strict):
    error: ErrorDetail
