"""Request ids and the structured access log: one JSON line per request, with the caller's id, never its key."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from json.encoder import encode_basestring_ascii as _json_text

from aiohttp import web

from subnet_proxy.server.context import CONTEXT
from subnet_proxy.server.errors import ClientAborted, Handler
from subnet_proxy.server.request_keys import CALLER_ID, REQUEST_ID

access_log = logging.getLogger("subnet_proxy.access")

REQUEST_ID_HEADER = "X-Request-ID"
#: the status a request the client abandoned is counted under (nginx's "client closed request").
ABORTED = 499
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class AccessLine:
    """An access-log message: its values now, its text (compact JSON, as ``json.dumps`` with ``(",", ":")``
    separators would write it) when a handler formats the record, which the log writer does on its own
    thread (``subnet_proxy.log_writer``), not on the event loop. Written field by field: a third of the
    cost of ``json.dumps`` of a dict, which built an encoder each call."""

    __slots__ = ("request_id", "method", "path", "route", "status", "ms", "caller", "remote", "bytes_in")

    def __init__(self, request_id: str, method: str, path: str, route: str, status: int, ms: float,
                 caller: str | None, remote: str | None, bytes_in: int | None) -> None:
        self.request_id, self.method, self.path, self.route = request_id, method, path, route
        self.status, self.ms, self.caller, self.remote, self.bytes_in = status, ms, caller, remote, bytes_in

    def __str__(self) -> str:
        def text(value: str | None) -> str:
            return "null" if value is None else _json_text(value)

        return (f'{{"request_id":{_json_text(self.request_id)},"method":{_json_text(self.method)},'
                f'"path":{_json_text(self.path)},"route":{_json_text(self.route)},"status":{int(self.status)},'
                f'"ms":{float(self.ms)!r},"caller":{text(self.caller)},"remote":{text(self.remote)},'
                f'"bytes_in":{"null" if self.bytes_in is None else int(self.bytes_in)}}}')


def log_access(line: AccessLine) -> None:
    """One access-log record, made as ``Logger.info`` makes it but without looking up the calling frame
    (every line comes from here): a third of the record's cost."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, line, (), None))


def route_label(request: web.Request) -> str:
    """The route template (``/api/v1/task/{task_id}/status``), so metrics do not grow with every id."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: give the request an id (the client's own if it sent a sane one), then log and count it.
    The id goes out in a header of every response via ``add_request_id_on_prepare``."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    context = request.app[CONTEXT]
    request_id = incoming if _CLIENT_ID.match(incoming) else context.ids.next()
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    upload = request.method == "POST"  # what a validator's loop yields to (``activity``)
    if upload:
        context.ingest.enter()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects raised by handlers
        status = exc.status
        raise
    except (ClientAborted, asyncio.CancelledError) as exc:  # the client went away: not our failure
        status = ABORTED
        context.metrics.aborted.inc()
        access_log.debug("request %s aborted by the client: %s", request_id, exc or "disconnected")
        if isinstance(exc, asyncio.CancelledError):
            raise
        return web.Response(status=ABORTED)  # never reaches anyone; ends the handler quietly
    finally:
        if upload:
            context.ingest.leave()
        elapsed = time.perf_counter() - started
        route = route_label(request)
        context.metrics.observe(request.method, route, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            log_access(AccessLine(request_id, request.method, request.path, route, status, round(elapsed * 1000, 2),
                                  request.get(CALLER_ID), request.remote, request.content_length))


async def add_request_id_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    if REQUEST_ID in request:
        response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
