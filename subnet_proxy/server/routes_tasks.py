"""Client task submission: validate at the door, store the input blob, then create the task.

One ``POST /api/v1/<kind>`` endpoint per registered kind, built from its ``KindSpec.submission``: a
JSON body validated by the kind's request model, or an audio upload (form or JSON). Audio is decoded
(in a worker thread) before anything is stored, so a task that exists always has usable input; the
blob is written before the task row, so a failure in between leaves at worst an unreferenced blob
(retention removes those), never a task without its input.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from protocol import AudioDecodeError, AudioTooLongError, mime_type, probe_audio, sniff_format
from protocol.audio import b64decode
from subnet_proxy.api.schemas import (
    INVALID_CALLBACK_URL,
    LANGUAGE_PATTERN,
    CallbackUrl,
    Submission,
    TaskAccepted,
    TranscriptionForm,
    TranscriptionJSON,
    result_url,
    status_url,
)
from subnet_proxy.kinds import REGISTRY, AudioUpload, JsonBody, KindSpec, submit_path
from subnet_proxy.languages import UNSUPPORTED_LANGUAGE, language_supported, unsupported_message
from subnet_proxy.server import quota
from subnet_proxy.server.auth import API_KEY
from subnet_proxy.server.body import media_type, parse_json, read_limited, require_json
from subnet_proxy.server.context import ServerContext, ctx
from subnet_proxy.server.errors import ApiError, Handler
from subnet_proxy.server.form import boundary_of, parse_form
from subnet_proxy.server.routing import Endpoint
from subnet_proxy.tasks import Task, TaskInput, utcnow

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_LANGUAGE = re.compile(LANGUAGE_PATTERN)
_SMALL_FIELD = 256
#: room for the form's boundaries and part headers around the audio itself.
_FORM_OVERHEAD = 64 * 1024
#: a WAV this small decodes in about 0.3 ms (measured): cheaper inline than a thread hand-off; every
#: other file (compressed formats cost by duration, up to seconds) is decoded in a worker thread.
_INLINE_WAV_BYTES = 256 * 1024
_MB = 1024 * 1024


_CALLBACK_URL: TypeAdapter[str] = TypeAdapter(CallbackUrl)


def upload_limit(context: ServerContext) -> int:
    return int(context.settings.proxy.max_upload_mb * _MB)


def _json_limit(context: ServerContext) -> int:
    """JSON bodies may carry the largest upload as base64 (4/3 larger) plus framing."""
    return upload_limit(context) * 4 // 3 + 64 * 1024


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-128 printable ASCII characters")
    return key


async def accept(request: web.Request, kind: str, task_input: TaskInput, idem_key: str | None,
                 callback_url: str | None = None) -> web.Response:
    """Count it against the key's day (``quota``: 429 past a quota), create the task (or find the one an
    Idempotency-Key already made) and answer 202. A ``callback_url`` was checked by the caller
    (``Webhooks.check_callback``)."""
    context = ctx(request)
    now = utcnow()
    task = Task(  # task_id: tasks.new_task_id, the same rule as synthetic challenges
        kind=kind,
        owner=request[API_KEY].key_id,
        idempotency_key=idem_key,
        input=task_input,
        created_at=now,
        updated_at=now,
        deadline=now + timedelta(seconds=context.settings.proxy.task_ttl_s),
        callback_url=callback_url,
    )
    counted = await quota.charge(context.store, request[API_KEY], kind, task_input, idempotency_key=idem_key, now=now)
    try:
        stored, created = await context.store.create_task(task)
    except Exception:
        await counted.give_back()
        raise
    if not created:
        await counted.give_back()  # a replay: its first request counted
    if stored.kind != kind or stored.input != task_input:
        raise ApiError(409, "idempotency_conflict",
                       "this Idempotency-Key was already used for a different request; use a new key")
    if created:
        context.metrics.count_submitted(kind)
    body = TaskAccepted(task_id=stored.task_id, status=stored.status, status_url=status_url(stored.task_id),
                        result_url=result_url(stored.task_id))
    headers = {"Location": body.status_url}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(body=body.model_dump_json().encode(), status=202, headers=headers,
                        content_type="application/json")


async def _read_form(request: web.Request, limit: int) -> tuple[bytes | None, str | None, str | None]:
    """(audio, language, callback_url) from multipart/form-data; other fields are refused."""
    boundary = boundary_of(request.headers.get("Content-Type", ""))
    body = await read_limited(request, limit + _FORM_OVERHEAD)
    audio: bytes | None = None
    language: str | None = None
    callback_url: str | None = None
    for field in parse_form(body, boundary):
        if field.name == "audio":
            audio = field.data
        elif field.name == "language":
            if len(field.data) > _SMALL_FIELD:
                raise ApiError(400, "invalid_request", "language is too long")
            language = field.data.decode("utf-8", "replace").strip() or None
        elif field.name == "callback_url":
            callback_url = _form_callback(field.data)
        else:
            raise ApiError(400, "unknown_field", f"unknown form field {field.name!r}; expected 'audio', 'language' "
                           "and 'callback_url'")
    return audio, language, callback_url


def _form_callback(data: bytes) -> str | None:
    """A form's callback_url, checked as the JSON field is (empty: none)."""
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return _CALLBACK_URL.validate_python(text)
    except ValidationError as exc:
        raise ApiError(400, INVALID_CALLBACK_URL, exc.errors()[0]["msg"]) from exc


async def audio_input(context: ServerContext, audio: bytes, *, declared: str | None, language: str | None,
                      owner: str) -> TaskInput:
    """Check the audio (``probe_audio``: decoded block by block, or for integer-PCM WAV its header
    read; a decode within ``owner``'s budget, see ``decoding``), then store it; the TaskInput that
    refers to it."""
    if language is not None and not _LANGUAGE.match(language):
        raise ApiError(400, "invalid_request", "language must be an ISO 639 code such as 'en' or 'pt-BR'")
    if not language_supported(language):
        raise ApiError(400, UNSUPPORTED_LANGUAGE, unsupported_message(str(language)))
    if not audio:
        raise ApiError(400, "empty_audio", "the audio file is empty")
    if len(audio) > upload_limit(context):
        raise ApiError(413, "body_too_large", f"audio larger than {upload_limit(context)} bytes")
    container = sniff_format(audio)
    if container is None:
        raise ApiError(415, "unsupported_audio", "not a WAV, FLAC, OGG or MP3 file")
    max_s = context.settings.proxy.max_audio_s
    try:
        if container == "wav" and len(audio) <= _INLINE_WAV_BYTES:
            probed = probe_audio(audio, max_seconds=max_s)
        else:
            probed = await context.decodes.probe(owner, audio, max_seconds=max_s)
    except AudioTooLongError as exc:  # or needs more decoded samples than allowed (AudioTooLargeError)
        raise ApiError(413, "audio_too_long", f"audio is longer than the limit of {exc.limit_s:.1f} s"
                       + ("" if exc.limit_s == max_s else " at its sample rate and channel count")) from exc
    except AudioDecodeError as exc:
        raise ApiError(400, "invalid_audio", str(exc)) from exc
    if declared is not None and declared != probed.format:
        raise ApiError(400, "format_mismatch", f"declared format {declared} but the file is {probed.format}")
    ref = await context.blobs.put(audio, content_type=mime_type(probed.format))
    return TaskInput(audio_blob=ref.key, audio_format=probed.format, audio_seconds=round(probed.duration_s, 3),
                     language=language)


def _named(handler: Callable[[web.Request], Awaitable[web.Response]], kind: str) -> Handler:
    """``submit_<kind>``: the handler's name is its route's name and its OpenAPI operationId."""
    handler.__name__ = handler.__qualname__ = f"submit_{kind}"
    return handler


def _audio_submit(kind: str) -> Handler:
    async def submit(request: web.Request) -> web.Response:
        context = ctx(request)
        idem_key = idempotency_key(request)  # checked before any audio is stored
        content = media_type(request)
        if content == "multipart/form-data":
            audio, language, callback_url = await _read_form(request, upload_limit(context))
            if audio is None:
                raise ApiError(400, "missing_field", "form field 'audio' (the file) is required")
            declared = None
        elif content == "application/json":
            body = parse_json(await read_limited(request, _json_limit(context)), TranscriptionJSON)
            try:
                audio = b64decode(body.audio_b64)
            except ValueError as exc:
                raise ApiError(400, "invalid_base64", "audio_b64 is not valid base64") from exc
            declared, language, callback_url = body.format, body.language, body.callback_url
        else:
            raise ApiError(415, "unsupported_media_type",
                           "send multipart/form-data (field 'audio') or application/json")
        if callback_url is not None:  # before the audio is stored
            await context.webhooks.check_callback(callback_url)
        task_input = await audio_input(context, audio, declared=declared, language=language,
                                       owner=request[API_KEY].key_id)
        return await accept(request, kind, task_input, idem_key, callback_url)

    return _named(submit, kind)


def _json_submit(kind: str, body_spec: JsonBody) -> Handler:
    async def submit(request: web.Request) -> web.Response:
        require_json(request)
        body = parse_json(await read_limited(request, _json_limit(ctx(request))), body_spec.model)
        callback_url = body.callback_url if isinstance(body, Submission) else None
        if callback_url is not None:
            await ctx(request).webhooks.check_callback(callback_url)
        return await accept(request, kind, body_spec.to_input(body), idempotency_key(request), callback_url)

    return _named(submit, kind)


_SUBMIT_ERRORS = (400, 401, 408, 409, 413, 415, 429)
_ACCEPTED: dict[str, type[BaseModel] | None] = {"application/json": TaskAccepted}
_AUDIO_BODY: dict[str, type[BaseModel]] = {"multipart/form-data": TranscriptionForm,
                                           "application/json": TranscriptionJSON}


def submit_endpoint(spec: KindSpec[Any]) -> Endpoint:
    """The kind's submit endpoint."""
    how = spec.submission
    if isinstance(how.body, AudioUpload):
        handler, body = _audio_submit(spec.kind), _AUDIO_BODY
    else:
        handler, body = _json_submit(spec.kind, how.body), {"application/json": how.body.model}
    return Endpoint("POST", submit_path(spec.kind), handler, how.summary, "client", "tasks", body=body, status=202,
                    response=_ACCEPTED, errors=_SUBMIT_ERRORS, description=how.description)


def endpoints() -> list[Endpoint]:
    """One submit endpoint per kind registered now (the app is built from the registry of its start)."""
    return [submit_endpoint(spec) for spec in REGISTRY.values()]
