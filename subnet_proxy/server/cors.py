"""CORS: a browser page on an allowed origin (``--proxy.cors_origins``) may call the API; no other gets a
CORS header, so by default (no origins) browsers keep their same-origin rule and nothing changes.

Two parts, because they act at different moments: ``cors_middleware`` answers preflights (``OPTIONS``
with ``Access-Control-Request-Method``) before any route, for paths that exist and methods they serve;
``add_cors_on_prepare`` adds the headers to every response as it is sent, errors and event streams
included (a middleware that edits a returned response misses a stream already started), so a browser
can read a 429's ``Retry-After`` or a 4xx's JSON body.
"""

from __future__ import annotations

from aiohttp import web

from subnet_proxy.server.context import CONTEXT
from subnet_proxy.server.errors import Handler

#: request headers a browser client sends besides the safelisted ones.
ALLOWED_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-ID")
#: response headers a browser client needs to read (others than the safelisted ones are hidden from it).
EXPOSED_HEADERS = ("Retry-After", "Idempotent-Replayed", "X-Request-ID", "X-Result-Stage", "Location")
#: seconds a browser may reuse a preflight's answer.
PREFLIGHT_MAX_AGE_S = 600


def _allowed_origin(request: web.Request) -> str | None:
    """The request's ``Origin`` when it is on the allow-list (compared exactly), else None."""
    origin = request.headers.get("Origin")
    if origin is None or origin not in request.app[CONTEXT].settings.proxy.cors_origins:
        return None
    return origin


def _preflight(request: web.Request, origin: str) -> web.Response | None:
    """The 204 for a preflight of a method the path serves; None (answered as any request) otherwise."""
    wanted = request.headers["Access-Control-Request-Method"].upper()
    refusal = request.match_info.http_exception
    if not isinstance(refusal, web.HTTPMethodNotAllowed) or wanted not in refusal.allowed_methods:
        return None  # an unknown path (404) or a method the path does not serve (405), as without CORS
    methods = sorted(refusal.allowed_methods | {"OPTIONS"})
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        "Vary": "Origin",
    })


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        origin = _allowed_origin(request)
        if origin is not None and (answer := _preflight(request, origin)) is not None:
            return answer
    return await handler(request)


async def add_cors_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every response to an allowed origin says so; with any allow-list, every response varies by Origin
    (a shared cache must not hand one origin's answer to another)."""
    if not request.app[CONTEXT].settings.proxy.cors_origins:
        return
    if "Origin" not in response.headers.getall("Vary", []):
        response.headers.add("Vary", "Origin")
    origin = _allowed_origin(request)
    if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
