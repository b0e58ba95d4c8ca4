"""A client's view of its tasks: status with timeline and progress, the result (long-poll), and SSE events.

Waiting never polls in a tight loop: it sleeps on the task's change notification (``TaskEvents``),
re-reading the store at most every ``watch_poll_s`` for changes made by other processes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from protocol import mime_type
from subnet_proxy.api.schemas import (
    MinerProgress,
    ResultPending,
    TaskStatusView,
    TextResult,
    result_url,
)
from subnet_proxy.keys import Role
from subnet_proxy.kinds import ResultMedia, task_spec
from subnet_proxy.server.auth import API_KEY
from subnet_proxy.server.body import parse_query
from subnet_proxy.server.context import ServerContext, ctx
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.feed import FeedCursor, read_snapshot
from subnet_proxy.server.routing import Endpoint, QueryParam
from subnet_proxy.server.streaming import stream_blob
from subnet_proxy.server.views import answer_view, final_view, webhook_view
from subnet_proxy.store.base import TaskNotFound
from subnet_proxy.store.watched import until_changed
from subnet_proxy.tasks import FinalResult, MinerResponse, Task, TaskStatus

#: SSE comment sent when nothing happened for this long, so proxies keep the stream open.
HEARTBEAT_S = 15.0


async def owned_task(request: web.Request) -> Task:
    """The task named in the path, if the caller owns it (admins see all); 404 otherwise, never 403,
    so a client cannot probe which task ids exist."""
    task_id = request.match_info["task_id"]
    task = await ctx(request).store.get_task(task_id)
    api_key = request[API_KEY]
    if task.owner != api_key.key_id and api_key.role is not Role.ADMIN:
        raise TaskNotFound(task_id)
    return task


async def status_view(context: ServerContext, task: Task) -> TaskStatusView:
    responses = await context.store.list_responses(task.task_id)
    final = await context.store.get_final_result(task.task_id)
    first = next((r for r in responses if r.is_first), None) or next((r for r in responses if r.valid), None)
    by_hotkey = {r.hotkey: r for r in responses}
    miners = [
        MinerProgress(uid=uid, state=by_hotkey[hk].state, latency_s=by_hotkey[hk].latency_s) if hk in by_hotkey
        else MinerProgress(uid=uid, state="waiting")
        for uid, hk in task.assigned
    ]
    webhooks = await context.store.list_webhooks(task.task_id) if task.callback_url else []
    return TaskStatusView(
        task_id=task.task_id, kind=task.kind, status=task.status, created_at=task.created_at,
        updated_at=task.updated_at, deadline=task.deadline, timeline=task.timeline,
        first_response=answer_view(first) if first else None, result=final_view(final) if final else None,
        miners=miners, error=task.error, callback_url=task.callback_url,
        webhooks=[webhook_view(d) for d in webhooks],
    )


async def get_status(request: web.Request) -> web.Response:
    view = await status_view(ctx(request), await owned_task(request))
    return web.json_response(view.model_dump(mode="json"))


class ResultQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: float = Field(0.0, ge=0.0)
    stage: Literal["any", "final"] = "any"


Stage = Literal["first", "final"]
Answer = tuple[Stage, FinalResult | MinerResponse]


async def current_answer(context: ServerContext, task: Task, stage: str) -> Answer | None:
    final = await context.store.get_final_result(task.task_id)
    if final is not None:
        return "final", final
    if stage == "any":
        first = await context.store.first_response(task.task_id)
        if first is not None:
            return "first", first
    return None


def _closed_error(task: Task) -> ApiError:
    message = task.error.message if task.error else f"task is {task.status.value} without a result"
    if task.status is TaskStatus.EXPIRED:
        return ApiError(410, "task_expired", message)
    return ApiError(409, "task_failed", message)


async def _text_answer(request: web.Request, task: Task, stage: Stage, item: FinalResult | MinerResponse,
                       headers: dict[str, str]) -> web.StreamResponse:
    score = item.score if isinstance(item, FinalResult) else None
    body = TextResult(task_id=task.task_id, kind=task.kind, stage=stage, uid=item.uid, text=item.text,
                      segments=item.segments, score=score)
    return web.json_response(body.model_dump(mode="json"), headers=headers)


async def _audio_answer(request: web.Request, task: Task, stage: Stage, item: FinalResult | MinerResponse,
                        headers: dict[str, str]) -> web.StreamResponse:
    context = ctx(request)
    blob = item.output_blob
    if blob is None:
        raise ApiError(500, "result_missing_audio", f"the {task.kind} result has no audio")
    url = await context.blobs.signed_url(blob, expires_s=context.settings.blobs.signed_url_ttl_s)
    if url is not None:
        raise web.HTTPTemporaryRedirect(url, headers=headers)
    content_type = mime_type(item.output_format) if item.output_format else None
    return await stream_blob(request, context.blobs, blob, content_type=content_type, headers=headers)


#: how each kind of result is served (``KindSpec.result``).
_RENDER = {ResultMedia.TEXT: _text_answer, ResultMedia.AUDIO: _audio_answer}


async def serve_answer(request: web.Request, task: Task, answer: Answer) -> web.StreamResponse:
    stage, item = answer
    return await _RENDER[task_spec(task.kind).result](request, task, stage, item, {"X-Result-Stage": stage})


async def get_result(request: web.Request) -> web.StreamResponse:
    context = ctx(request)
    query = parse_query(request, ResultQuery)
    loop = asyncio.get_running_loop()
    until = loop.time() + min(query.wait, context.settings.proxy.long_poll_max_s)
    while True:
        with context.events.watching(request.match_info["task_id"]) as changed:  # before the read: no change missed
            task = await owned_task(request)
            answer = await current_answer(context, task, query.stage)
            if answer is not None:
                return await serve_answer(request, task, answer)
            if task.status.is_terminal:
                raise _closed_error(task)
            remaining = until - loop.time()
            if remaining <= 0 or context.closing.is_set():
                pending = ResultPending(task_id=task.task_id, status=task.status, result_url=result_url(task.task_id))
                return web.json_response(pending.model_dump(mode="json"), status=202, headers={"Retry-After": "1"})
            await until_changed(changed, min(remaining, context.settings.proxy.watch_poll_s))


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def get_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events (``feed``): ``status`` per timeline step, ``response`` per miner answer,
    ``result`` once, then ``end`` when the task is finished (or the server shuts down)."""
    context = ctx(request)
    task = await owned_task(request)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    cursor, last_write = FeedCursor(), loop.time()
    try:
        while True:
            with context.events.watching(task.task_id) as changed:  # before the reads: no change missed
                task = await context.store.get_task(task.task_id)
                snapshot = await read_snapshot(context.store, task, result=not cursor.result)
                closing = context.closing.is_set()
                out = b"".join(sse(e.name, e.data) for e in snapshot.events_after(cursor, closing=closing))
                if out or loop.time() - last_write >= HEARTBEAT_S:
                    await resp.write(out or b": keep-alive\n\n")
                    last_write = loop.time()
                if task.status.is_terminal or closing:
                    break
                await until_changed(changed, min(context.settings.proxy.watch_poll_s, HEARTBEAT_S))
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client went away; nothing to clean up
    return resp


_TASK_ERRORS = (401, 404, 429)

ENDPOINTS = [
    Endpoint("GET", "/api/v1/task/{task_id}/status", get_status, "Task status, timeline and progress", "client",
             "tasks", response={"application/json": TaskStatusView}, errors=_TASK_ERRORS,
             description="Shows the first valid answer as soon as one exists, the evaluated result once decided, "
                         "and each assigned miner's progress. A client sees only its own tasks (404 otherwise)."),
    Endpoint("GET", "/api/v1/task/{task_id}/result", get_result, "The task's result (long-poll with ?wait=)",
             "client", "tasks",
             response={"application/json": TextResult, "audio/wav": None, "audio/flac": None, "audio/ogg": None,
                       "audio/mpeg": None},
             also={202: "No result yet (the wait ran out); body: ResultPending.",
                   307: "TTS audio: redirect to a signed URL of the blob store."},
             query=(QueryParam("wait", {"type": "number", "minimum": 0}, "Seconds to wait for a result (capped)."),
                    QueryParam("stage", {"type": "string", "enum": ["any", "final"]},
                               "'any' (default): the final result, else the first valid answer; 'final': only "
                               "the evaluated result.")),
             errors=(*_TASK_ERRORS, 400, 409, 410),
             description="Text kinds answer JSON; TTS answers the audio bytes (or a 307 redirect to a signed URL). "
                         "Header X-Result-Stage says whether this is the first answer or the evaluated result."),
    Endpoint("GET", "/api/v1/task/{task_id}/events", get_events, "Server-sent events of the task's lifecycle",
             "client", "tasks", response={"text/event-stream": None}, errors=_TASK_ERRORS,
             description="Events: status (one per timeline step), response (one per miner answer), result, end."),
]
