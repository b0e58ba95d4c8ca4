"""Public operational endpoints: health (liveness + readiness), Prometheus metrics, the miner table.

``/api/v1/health`` is the whole picture: the stores and chain, and with a validator's ``Monitor``
each loop; it answers 503, naming the reasons, when a store is unreachable or a loop is stalled.
``/api/v1/health/live`` (the process answers: restart me if not) and ``/api/v1/health/ready`` (I can
take work: stores reachable, intake running, not shutting down) are the orchestrators' probes.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from protocol import __version__
from subnet_proxy.api.schemas import CheckView, HealthView, MinerList, ProbeView
from subnet_proxy.monitoring import LoopCheck
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


async def _store_checks(context: ServerContext) -> dict[str, CheckView]:
    probes = {"store": context.store.ping, "blobs": context.blobs.ping, **context.health_checks}
    results = await asyncio.gather(*(probe(name, check) for name, check in probes.items()))
    return dict(zip(probes, results, strict=True))


def _loop_view(check: LoopCheck) -> CheckView:
    return CheckView(ok=check.ok, error=check.reason, detail=check.detail)


async def get_health(request: web.Request) -> web.Response:
    context = ctx(request)
    checks = await _store_checks(context)
    ready = all(c.ok for c in checks.values())
    reasons = [f"{name}: {c.error}" for name, c in checks.items() if not c.ok]
    checks["chain"] = chain_check(context)
    counts = await context.store.count_by_status() if checks["store"].ok else {}
    loops = {name: _loop_view(c) for name, c in context.monitor.loops(counts).items()} if context.monitor else {}
    reasons += [c.error or name for name, c in loops.items() if not c.ok]
    members = context.quorum_members()
    view = HealthView(
        status="ok" if all(c.ok for c in checks.values()) and not reasons else "degraded",
        live=True,
        ready=ready,
        checks=checks,
        loops=loops,
        reasons=reasons,
        tasks={status.value: n for status, n in counts.items()},
        miners_available=miners_available(context),
        quorum_members=None if members is None else len(members),
        version=__version__,
        uptime_s=round(time.monotonic() - context.started_at, 3),
    )
    return web.json_response(view.model_dump(mode="json"), status=503 if reasons else 200)


async def get_live(request: web.Request) -> web.Response:
    return web.json_response(ProbeView(status="ok").model_dump(mode="json"))


async def get_ready(request: web.Request) -> web.Response:
    context = ctx(request)
    reason: str | None = None
    if context.closing.is_set():
        reason = "shutting down"
    else:
        failed = [name for name, c in (await _store_checks(context)).items() if not c.ok]
        if failed:
            reason = f"unreachable: {', '.join(failed)}"
        elif context.monitor is not None:
            reason = context.monitor.ready()
    view = ProbeView(status="unavailable" if reason else "ok", reason=reason)
    return web.json_response(view.model_dump(mode="json"), status=503 if reason else 200)


async def get_metrics(request: web.Request) -> web.Response:
    context = ctx(request)
    counts = await context.store.count_by_status()
    miners = context.miner_stats() if context.miner_stats else []
    body = context.metrics.render(counts, miners)
    if context.monitor is not None:
        body += context.monitor.exposition(counts)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def get_miners(request: web.Request) -> web.Response:
    context = ctx(request)
    miners = sorted(context.miner_stats() if context.miner_stats else [], key=lambda m: m.uid)
    return web.json_response(MinerList(miners=miners).model_dump(mode="json"))


ENDPOINTS = [
    Endpoint("GET", "/api/v1/health", get_health, "Health: stores, chain and the validator's loops", "public",
             "operations", response={"application/json": HealthView},
             also={503: "A store unreachable or a loop stalled (same body; `reasons` says why)."},
             description="Readiness of the task store, blob store and chain; each validator loop (metagraph resync, "
                         "weights, dispatch and scoring backlogs, ...); counts by status; miners available; validators "
                         "counted in quorums (null: every permitted one, on a shared store). Nothing secret: failures "
                         "are named by error class or a fixed phrase only."),
    Endpoint("GET", "/api/v1/health/live", get_live, "Liveness probe: the process answers", "public", "operations",
             response={"application/json": ProbeView}),
    Endpoint("GET", "/api/v1/health/ready", get_ready, "Readiness probe: stores reachable, intake running",
             "public", "operations", response={"application/json": ProbeView},
             also={503: "Cannot take work now (`reason` says why)."}),
    Endpoint("GET", "/metrics", get_metrics, "Prometheus metrics", "public", "operations",
             response={"text/plain": None}),
    Endpoint("GET", "/api/v1/miners", get_miners, "Miner table: EMA score, latency, success rate, last weight",
             "public", "operations", response={"application/json": MinerList}),
]
