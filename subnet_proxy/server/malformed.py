"""Requests aiohttp cannot parse, answered in the API's error shape and counted instead of logged as errors.

aiohttp parses a request's head (request line and headers) before any route or middleware sees it.
A head it refuses (a line over ``max_line_size`` bytes, more than ``max_headers`` headers, bytes that
are not HTTP/1.1) was answered with a plain-text 400 and logged at ERROR with a traceback: a
client's mistake, or a scanner's probe, filled the operator's error log and broke the promise that
every error is ``{"error": {"code", "message"}}``. ``MalformedAsJson`` is aiohttp's own per-connection
``RequestHandler`` with ``handle_error`` answering such a head with that shape (400, codes
``line_too_long``, ``too_many_headers``, ``malformed_request``), logged at DEBUG and counted by
``subnet_proxy_http_malformed{code}``. Other errors keep aiohttp's handling (none reach it: the
error middleware answers every error a route raises).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from subnet_proxy.server.errors import ApiError, error_response

log = logging.getLogger("subnet_proxy.server")


class MalformedAsJson(web.RequestHandler):
    """aiohttp's handler for one connection; ``count(code)`` is called for every head it refuses."""

    __slots__ = ("count",)

    def __init__(self, manager: web.Server, *, count: Callable[[str], None], **kwargs: object) -> None:
        super().__init__(manager, **kwargs)  # type: ignore[arg-type]  # aiohttp's own options, passed through
        self.count = count

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        error = self.refusal(exc)
        self.count(error.code)
        log.debug("refused a request from %s that could not be parsed (%s): %s", request.remote, error.code,
                  exc.message)
        response = error_response(error)
        response.force_close()  # the parser's state after a bad head is unknown: no next request on it
        return response

    def refusal(self, exc: HttpProcessingError) -> ApiError:
        """The API error a head aiohttp refused stands for (aiohttp's own text is not echoed back)."""
        if isinstance(exc, LineTooLong):
            return ApiError(400, "line_too_long", f"the request line or a header is longer than "
                            f"{max(self.max_line_size, self.max_field_size)} bytes")
        if isinstance(exc, BadHttpMessage) and exc.message.startswith("Too many headers"):
            return ApiError(400, "too_many_headers", f"more than {self.max_headers} request headers")
        return ApiError(400, "malformed_request", "the request is not valid HTTP/1.1")


def handler_factory(server: web.Server, count: Callable[[str], None]) -> Callable[[], asyncio.Protocol]:
    """Makes ``MalformedAsJson`` handlers for ``server`` (an ``AppRunner``'s) with the options aiohttp
    would give its own: ``web.Server.__call__`` passes its ``_kwargs`` (the runner's and the app's
    handler arguments) in the same way."""
    options = dict(server._kwargs)

    def make() -> asyncio.Protocol:
        return MalformedAsJson(server, loop=asyncio.get_running_loop(), count=count, **options)

    return make
