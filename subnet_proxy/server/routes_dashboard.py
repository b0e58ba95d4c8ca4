"""The operator dashboard: ``/dashboard`` (a self-contained page), its state, and the state's live feed.

The page itself holds no data and is public; it asks for a viewer or admin key, kept in the tab's
session storage and sent as a header (never in a URL, where logs and history would keep it), and
reads ``/api/v1/dashboard/events``: a ``state`` event at once, then one whenever the state changed.

One state serves every open page (``dashboard_state.SharedState``), so the cost of the dashboard
grows neither with the number of viewers nor with the traffic.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from aiohttp import web

from subnet_proxy.api.schemas import DashboardMiner, DashboardView
from subnet_proxy.server.context import ServerContext, ctx
from subnet_proxy.server.dashboard_state import PUSH_S
from subnet_proxy.server.routes_results import sse
from subnet_proxy.server.routing import Endpoint
from subnet_proxy.tasks import utcnow
from subnet_proxy.waits import wait_set

#: an SSE comment after this long without an event, so proxies keep the stream open.
HEARTBEAT_S = 15.0
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    # everything is inline: no script, style or image from anywhere else, no framing
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src data:; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


async def build_state(context: ServerContext) -> dict[str, Any]:
    counts = await context.store.count_by_status()
    monitor = context.monitor
    stats = sorted(context.miner_stats() if context.miner_stats else [], key=lambda m: m.uid)
    miners = [DashboardMiner(**m.model_dump(), kinds=monitor.miner_kinds(m.uid, m.hotkey) if monitor else {})
              for m in stats]
    extra = monitor.dashboard(counts) if monitor is not None else {}
    healthy = all(loop["ok"] for loop in extra.get("loops", {}).values())
    view = DashboardView(generated_at=utcnow(), status="ok" if healthy else "degraded",
                         tasks={status.value: n for status, n in counts.items()}, miners=miners, **extra)
    return view.model_dump(mode="json")


async def current_state(context: ServerContext) -> dict[str, Any]:
    version = context.monitor.version() if context.monitor is not None else 0
    return await context.dashboard.get(version, lambda: build_state(context))


def dashboard_html() -> str:
    return resources.files("subnet_proxy.server").joinpath("static/dashboard.html").read_text(encoding="utf-8")


async def get_page(request: web.Request) -> web.Response:
    return web.Response(text=dashboard_html(), content_type="text/html", headers=_PAGE_HEADERS)


async def get_dashboard(request: web.Request) -> web.Response:
    return web.json_response(await current_state(ctx(request)))


async def get_dashboard_events(request: web.Request) -> web.StreamResponse:
    """``state`` events: the state at once, then each new one; ends when the server shuts down."""
    context = ctx(request)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    sent: dict[str, Any] | None = None
    last_write = time.monotonic()
    try:
        while not context.closing.is_set():
            state = await current_state(context)
            if state is not sent:
                await resp.write(sse("state", state))
                sent, last_write = state, time.monotonic()
            elif time.monotonic() - last_write >= HEARTBEAT_S:
                await resp.write(b": keep-alive\n\n")
                last_write = time.monotonic()
            await wait_set(context.closing, PUSH_S)
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the page was closed
    return resp


ENDPOINTS = [
    Endpoint("GET", "/dashboard", get_page, "The operator dashboard (HTML; asks for a viewer or admin key)",
             "public", "operations", response={"text/html": None},
             description="A self-contained page (no external scripts, styles or fonts): tasks by status and kind, "
                         "throughput and latency percentiles over the last hour, the miner table, recent failures, "
                         "weights history and loop health, updated live. The page holds no data itself."),
    Endpoint("GET", "/api/v1/dashboard", get_dashboard, "The dashboard's state", "viewer", "operations",
             response={"application/json": DashboardView}, errors=(401, 403)),
    Endpoint("GET", "/api/v1/dashboard/events", get_dashboard_events, "The dashboard's state, live (SSE)", "viewer",
             "operations", response={"text/event-stream": None}, errors=(401, 403),
             description="A `state` event (a DashboardView) at once, then one whenever it changes."),
]
