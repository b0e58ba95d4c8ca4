"""Public operational endpoints: health (liveness + readiness), Prometheus metrics, the miner table."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from protocol import __version__
from subnet_proxy.api.schemas import CheckView, HealthView, MinerList
from subnet_proxy.server.context import HealthCheck, ServerContext, ctx
from subnet_proxy.server.metrics import CONTENT_TYPE
from subnet_proxy.server.routing import Endpoint

log = logging.getLogger("subnet_proxy.server")

#: a readiness probe slower than this counts as failed.
PROBE_TIMEOUT_S = 5.0


async def probe(name: str, check: HealthCheck) -> CheckView:
    """Run one readiness probe. Any failure is reported (by class name only: messages may carry paths
    or hosts, and health is public) and logged in full."""
    try:
        await asyncio.wait_for(check(), PROBE_TIMEOUT_S)
        return CheckView(ok=True)
    except Exception as exc:  # a probe reports failure of any kind; logged, not hidden
        log.warning("health check %s failed: %r", name, exc)
        return CheckView(ok=False, error=type(exc).__name__)


def chain_check(context: ServerContext) -> CheckView:
    snapshot = context.metagraph()
    if snapshot is None:
        return CheckView(ok=False, error="no metagraph")
    return CheckView(ok=True, detail={"netuid": snapshot.netuid, "block": snapshot.block, "neurons": snapshot.n})


def miners_available(context: ServerContext) -> int:
    snapshot = context.metagraph()
    if snapshot is None:
        return 0
    return sum(1 for n in snapshot.neurons if n.is_serving and n.hotkey != context.own_hotkey)


async def get_health(request: web.Request) -> web.Response:
    context = ctx(request)
    probes = {"store": context.store.ping, "blobs": context.blobs.ping, **context.health_checks}
    results = await asyncio.gather(*(probe(name, check) for name, check in probes.items()))
    checks = dict(zip(probes, results, strict=True))
    ready = all(c.ok for c in checks.values())
    checks["chain"] = chain_check(context)
    counts = await context.store.count_by_status() if checks["store"].ok else {}
    members = context.quorum_members()
    view = HealthView(
        status="ok" if all(c.ok for c in checks.values()) else "degraded",
        live=True,
        ready=ready,
        checks=checks,
        tasks={status.value: n for status, n in counts.items()},
        miners_available=miners_available(context),
        quorum_members=None if members is None else len(members),
        version=__version__,
        uptime_s=round(time.monotonic() - context.started_at, 3),
    )
    return web.json_response(view.model_dump(mode="json"), status=200 if ready else 503)


async def get_metrics(request: web.Request) -> web.Response:
    context = ctx(request)
    counts = await context.store.count_by_status()
    miners = context.miner_stats() if context.miner_stats else []
    return web.Response(body=context.metrics.render(counts, miners), headers={"Content-Type": CONTENT_TYPE})


async def get_miners(request: web.Request) -> web.Response:
    context = ctx(request)
    miners = sorted(context.miner_stats() if context.miner_stats else [], key=lambda m: m.uid)
    return web.json_response(MinerList(miners=miners).model_dump(mode="json"))


ENDPOINTS = [
    Endpoint("GET", "/api/v1/health", get_health, "Liveness and readiness", "public", "operations",
             response={"application/json": HealthView}, also={503: "Not ready (same body)."},
             description="Readiness of the task store, blob store and chain; counts by status; miners available; "
                         "validators counted in quorums (null: every permitted one, on a shared store). "
                         "Nothing secret: failures are named by error class only."),
    Endpoint("GET", "/metrics", get_metrics, "Prometheus metrics", "public", "operations",
             response={"text/plain": None}),
    Endpoint("GET", "/api/v1/miners", get_miners, "Miner table: EMA score, latency, success rate, last weight",
             "public", "operations", response={"application/json": MinerList}),
]
