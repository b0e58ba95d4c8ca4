"""Request ids and the structured access log: one JSON line per request, with the caller's id, never its key."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

from aiohttp import web

from subnet_proxy.server.context import CONTEXT
from subnet_proxy.server.errors import ClientAborted, Handler
from subnet_proxy.server.request_keys import CALLER_ID, REQUEST_ID

access_log = logging.getLogger("subnet_proxy.access")

REQUEST_ID_HEADER = "X-Request-ID"
#: the status a request the client abandoned is counted under (nginx's "client closed request").
ABORTED = 499
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


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
        elapsed = time.perf_counter() - started
        route = route_label(request)
        context.metrics.observe(request.method, route, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(json.dumps({
                "request_id": request_id, "method": request.method, "path": request.path, "route": route,
                "status": status, "ms": round(elapsed * 1000, 2), "caller": request.get(CALLER_ID),
                "remote": request.remote, "bytes_in": request.content_length,
            }, separators=(",", ":")))


async def add_request_id_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    if REQUEST_ID in request:
        response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
