"""Signed endpoints for neurons: a miner's asynchronous answer, and validators fetching and evaluating tasks.

Ground truth never leaves the validator that made a synthetic task: the validator listing omits it
and even omits whether a task is synthetic, so a validator that colludes with a miner cannot tell
it which tasks are checks. Latency is measured here (from the task's dispatch to the answer's
arrival); whatever a miner says about its own score or timing is dropped by the request model.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from protocol import AudioInfo
from protocol.synapses import MAX_SAMPLE_RATE
from subnet_proxy.api.schemas import (
    AnswerAccepted,
    EvaluationOutcome,
    EvaluationRequest,
    MinerAnswer,
    ValidatorInput,
    ValidatorResponseView,
    ValidatorTask,
    ValidatorTaskPage,
)
from subnet_proxy.approval import record_evaluation
from subnet_proxy.blobs.base import check_key
from subnet_proxy.kinds import AnswerRefused
from subnet_proxy.kinds.wire import delivered_output, stored_response
from subnet_proxy.server.auth import BODY, CALLER, SNAPSHOT
from subnet_proxy.server.body import parse_json, parse_query
from subnet_proxy.server.context import ServerContext, ctx
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.routing import Endpoint, QueryParam
from subnet_proxy.server.streaming import stream_blob
from subnet_proxy.store.base import TaskNotAccepting
from subnet_proxy.tasks import Evaluation, MinerResponse, Task, TaskStatus, utcnow

#: the statuses a miner's answer is taken in (checked atomically with its write).
_ACCEPTING = frozenset({TaskStatus.DISTRIBUTED})


def blob_url(key: str | None) -> str | None:
    return f"/api/v1/validator/blobs/{key}" if key else None


def dispatched_at(task: Task) -> float | None:
    """When the task was last sent to miners (the start of every assigned miner's clock)."""
    for step in reversed(task.timeline):
        if step.status is TaskStatus.DISTRIBUTED:
            return step.at.timestamp()
    return None


async def _not_answered_yet(context: ServerContext, task: Task, hotkey: str) -> None:
    """409 before any decoding when this miner already answered (the store's write checks it again)."""
    if any(r.hotkey == hotkey for r in await context.store.list_responses(task.task_id)):
        raise ApiError(409, "already_answered", "this miner already answered this task")


def _closed(status: TaskStatus) -> ApiError:
    return ApiError(409, "task_closed", f"task is {status.value}; answers are no longer taken")


async def post_miner_response(request: web.Request) -> web.Response:
    context = ctx(request)
    neuron = request[CALLER]
    answer = parse_json(request[BODY], MinerAnswer)
    task = await context.store.get_task(answer.task_id)
    if (neuron.uid, neuron.hotkey) not in {tuple(a) for a in task.assigned}:
        raise ApiError(403, "not_assigned", "this hotkey was not assigned this task")
    if task.status not in _ACCEPTING:
        raise _closed(task.status)
    await _not_answered_yet(context, task, neuron.hotkey)

    async def probe(audio: bytes) -> AudioInfo:  # within the miner's decode budget, at the protocol's rates
        return await context.decodes.probe("hotkey:" + neuron.hotkey, audio,
                                           max_seconds=context.settings.proxy.max_audio_s, max_rate=MAX_SAMPLE_RATE)

    try:  # the kind's own check, the one an answered synapse passes too
        output = await delivered_output(task, answer, probe)
    except AnswerRefused as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    received = utcnow()
    sent = dispatched_at(task)
    response = await stored_response(output, context.blobs, task_id=task.task_id, hotkey=neuron.hotkey,
                                     uid=neuron.uid, latency_s=round(received.timestamp() - sent, 6) if sent else None,
                                     received_at=received)
    try:
        # the status is checked again in the store's write: the task may have closed since the read above
        stored, created = await context.store.record_response(response, only_if=_ACCEPTING)
    except TaskNotAccepting as exc:
        raise _closed(exc.status) from exc
    if not created:
        raise ApiError(409, "already_answered", "this miner already answered this task")
    body = AnswerAccepted(task_id=task.task_id, uid=neuron.uid, first=stored.is_first)
    return web.json_response(body.model_dump(mode="json"))


class TaskListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=256)


def validator_task(task: Task, responses: list[MinerResponse]) -> ValidatorTask:
    i = task.input
    return ValidatorTask(
        task_id=task.task_id, kind=task.kind, created_at=task.created_at,
        input=ValidatorInput(audio_url=blob_url(i.audio_blob), audio_format=i.audio_format,
                             audio_seconds=i.audio_seconds, language=i.language, text=i.text, voice=i.voice,
                             max_words=i.max_words),
        responses=[
            ValidatorResponseView(uid=r.uid, hotkey=r.hotkey, state=r.state, latency_s=r.latency_s, text=r.text,
                                  segments=r.segments, audio_url=blob_url(r.output_blob), audio_format=r.output_format,
                                  audio_sample_rate=r.output_sample_rate)
            for r in responses
        ],
    )


async def get_validator_tasks(request: web.Request) -> web.Response:
    context = ctx(request)
    query = parse_query(request, TaskListQuery)
    page = await context.store.list_tasks(status=TaskStatus.DONE, limit=query.limit, cursor=query.cursor)
    tasks = [validator_task(t, await context.store.list_responses(t.task_id)) for t in page.tasks]
    body = ValidatorTaskPage(tasks=tasks, next_cursor=page.next_cursor)
    return web.json_response(body.model_dump(mode="json"))


async def get_validator_blob(request: web.Request) -> web.StreamResponse:
    context = ctx(request)
    key = check_key(request.match_info["key"])
    return await stream_blob(request, context.blobs, key)


async def post_validator_evaluation(request: web.Request) -> web.Response:
    context = ctx(request)
    req = parse_json(request[BODY], EvaluationRequest)
    evaluation = Evaluation(task_id=req.task_id, validator_hotkey=request[CALLER].hotkey, rewards=req.rewards)
    outcome = await record_evaluation(context.store, evaluation, request[SNAPSHOT], context.settings.proxy.quorum,
                                      members=context.quorum_members())
    if not outcome.recorded:
        raise ApiError(409, "already_evaluated", "this validator already evaluated this task")
    body = EvaluationOutcome(task_id=req.task_id, recorded=outcome.recorded, status=outcome.status,
                             stake_share=outcome.stake_share, evaluations=outcome.evaluations)
    return web.json_response(body.model_dump(mode="json"))


_SIGNED_ERRORS = (400, 401, 403, 404, 408, 409, 413, 429, 503)

ENDPOINTS = [
    Endpoint("POST", "/api/v1/miner/response", post_miner_response, "A miner delivers its answer (signed)", "miner",
             "neurons", body={"application/json": MinerAnswer}, response={"application/json": AnswerAccepted},
             errors=_SIGNED_ERRORS,
             description="Only a miner assigned the task may answer, once, while the task is distributed. "
                         "Self-reported scores or timings are ignored; latency is measured by the server."),
    Endpoint("GET", "/api/v1/validator/tasks", get_validator_tasks, "Tasks ready for evaluation (signed)",
             "validator", "neurons", response={"application/json": ValidatorTaskPage}, errors=_SIGNED_ERRORS,
             query=(QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size."),
                    QueryParam("cursor", {"type": "string"}, "next_cursor of the previous page.")),
             description="Done tasks with inputs and every response, for validators with a permit. Ground truth "
                         "and the synthetic flag are never included."),
    Endpoint("GET", "/api/v1/validator/blobs/{key}", get_validator_blob, "An input or output audio blob (signed)",
             "validator", "neurons", response={"application/octet-stream": None}, errors=_SIGNED_ERRORS),
    Endpoint("POST", "/api/v1/validator/evaluation", post_validator_evaluation, "Per-miner scores for a task (signed)",
             "validator", "neurons", body={"application/json": EvaluationRequest},
             response={"application/json": EvaluationOutcome}, errors=_SIGNED_ERRORS,
             description="Once per validator per task. The task is approved when validators holding the "
                         "configured share of validator stake (--proxy.quorum) have evaluated it."),
]
