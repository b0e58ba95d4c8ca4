"""A client's own tasks: the listing (newest first) and cancelling one that no miner has finished
(``POST .../cancel`` or ``DELETE /api/v1/task/{id}``).

The listing shows the caller's tasks only, admins included (an admin reads any one task by id, but a
listing of everyone's is the dashboard's and the metrics' job): one query shape per filter, each
backed by an index on both stores. A cancel is a FAILED with error code ``cancelled``, not a status
of its own, so the lifecycle table and everything that reads it (metrics, dashboard, retention,
peers) stay as they are; miners' late answers are then refused like any answer to a closed task.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from subnet_proxy.api.schemas import TaskPage, TaskStatusView, TaskSummary, result_url, status_url
from subnet_proxy.kinds import REGISTRY
from subnet_proxy.server.auth import API_KEY
from subnet_proxy.server.body import parse_query
from subnet_proxy.server.context import ctx
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.routes_results import owned_task, status_view
from subnet_proxy.server.routing import Endpoint, QueryParam
from subnet_proxy.store import ops
from subnet_proxy.tasks import IllegalTransition, Task, TaskStatus

#: the statuses a client may still cancel: nothing is decided yet (DONE has answers under evaluation).
CANCELLABLE = frozenset({TaskStatus.PENDING, TaskStatus.DISTRIBUTED})


class MyTasksQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TaskStatus | None = None
    kind: str | None = Field(None, max_length=32)
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=512)


def summary(task: Task) -> TaskSummary:
    return TaskSummary(task_id=task.task_id, kind=task.kind, status=task.status, created_at=task.created_at,
                       updated_at=task.updated_at, error=task.error, status_url=status_url(task.task_id),
                       result_url=result_url(task.task_id))


async def list_my_tasks(request: web.Request) -> web.Response:
    query = parse_query(request, MyTasksQuery)
    if query.kind is not None and query.kind not in REGISTRY:
        raise ApiError(400, "invalid_request", f"unknown kind {query.kind!r}; one of: {', '.join(REGISTRY)}")
    page = await ctx(request).store.list_tasks(owner=request[API_KEY].key_id, status=query.status, kind=query.kind,
                                               limit=query.limit, cursor=query.cursor, newest_first=True)
    body = TaskPage(tasks=[summary(t) for t in page.tasks], next_cursor=page.next_cursor)
    return web.json_response(body.model_dump(mode="json"))


async def cancel_task(request: web.Request) -> web.Response:
    task = await owned_task(request)
    context = ctx(request)
    try:
        # only_if: a task the loop moved on meanwhile (DONE, decided) is not cancelled after all
        cancelled = await context.store.transition(task.task_id, TaskStatus.FAILED, reason="cancelled by the client",
                                                   error=(ops.CANCELLED_ERROR, "cancelled by the client"),
                                                   only_if=CANCELLABLE)
    except IllegalTransition as exc:
        current = (await context.store.get_task(task.task_id)).status
        raise ApiError(409, "task_closed", f"the task is {current.value}; only a pending or distributed task "
                       "can be cancelled") from exc
    view = await status_view(context, cancelled)
    return web.json_response(view.model_dump(mode="json"))


async def delete_task(request: web.Request) -> web.Response:
    """``DELETE /api/v1/task/{task_id}``: the cancel under the REST verb (its own name for the router)."""
    return await cancel_task(request)


ENDPOINTS = [
    Endpoint("GET", "/api/v1/tasks", list_my_tasks, "The caller's own tasks, newest first", "client", "tasks",
             response={"application/json": TaskPage}, errors=(400, 401, 429),
             query=(QueryParam("status", {"type": "string", "enum": [s.value for s in TaskStatus]},
                               "Only tasks in this status."),
                    QueryParam("kind", {"type": "string"}, "Only tasks of this kind (a registered kind's name)."),
                    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size (20)."),
                    QueryParam("cursor", {"type": "string"},
                               "The previous page's next_cursor (400 invalid_cursor for any other value).")),
             description="A key sees its own tasks (an admin key too: its own). Unknown status or kind values "
                         "are 400 invalid_request. A cursor is bound to the filters it was made with."),
    Endpoint("POST", "/api/v1/task/{task_id}/cancel", cancel_task, "Cancel a task no miner has finished",
             "client", "tasks", response={"application/json": TaskStatusView}, errors=(401, 404, 409, 429),
             description="A pending or distributed task becomes failed with error code 'cancelled' (miners' late "
                         "answers are refused from then on); any other status is 409 task_closed. Another "
                         "client's task is 404."),
    Endpoint("DELETE", "/api/v1/task/{task_id}", delete_task, "Cancel a task no miner has finished (alias)",
             "client", "tasks", response={"application/json": TaskStatusView}, errors=(401, 404, 409, 429),
             description="The same as POST /api/v1/task/{task_id}/cancel: the task is not deleted, it becomes "
                         "failed with error code 'cancelled' and stays readable."),
]
