"""The side-server's app factory and its runner: what the validator embeds and ``python -m`` runs alone.

Embedding (the validator)::

    store = WatchedStore(open_task_store(settings))        # share it with the loop: its writes wake waiters
    app = create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=lambda: snapshot,
                     own_hotkey=wallet.hotkey.ss58_address, miner_stats=scorebook.stats)
    server = await start_server(app, settings)               # binds settings.proxy.host:port
    ...
    await server.stop()                                      # stop accepting, finish in-flight, then return

The factory owns none of its dependencies: the caller opens and closes the stores.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.config import Settings
from subnet_proxy.keys import KeyStore, seed_configured_keys
from subnet_proxy.keys.firebase import FirebaseVerifier
from subnet_proxy.monitoring import Monitor
from subnet_proxy.server import (
    routes_admin,
    routes_dashboard,
    routes_health,
    routes_my_tasks,
    routes_network,
    routes_results,
    routes_tasks,
    routes_usage,
    routes_ws,
)
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.server.connections import ConnectionGuard
from subnet_proxy.server.context import CONTEXT, HealthCheck, ServerContext
from subnet_proxy.server.cors import add_cors_on_prepare, cors_middleware
from subnet_proxy.server.decoding import DecodeBudget
from subnet_proxy.server.errors import error_middleware
from subnet_proxy.server.limits import Limiter
from subnet_proxy.server.malformed import handler_factory
from subnet_proxy.server.metrics import Metrics
from subnet_proxy.server.middleware import add_request_id_on_prepare, request_middleware
from subnet_proxy.server.openapi import build_openapi, docs_routes
from subnet_proxy.server.routing import Endpoint, add_endpoints
from subnet_proxy.server.webhooks import Webhooks
from subnet_proxy.signing import SignatureVerifier
from subnet_proxy.store.base import TaskStore
from subnet_proxy.store.watched import watched
from subnet_proxy.tasks import MinerStat

log = logging.getLogger("subnet_proxy.server")



def endpoints() -> list[Endpoint]:
    """Every route: one submit endpoint per registered task kind, then the fixed ones. A kind whose
    submit path another endpoint already serves (a kind named ``health``) is a ValueError at start."""
    fixed = [*routes_my_tasks.ENDPOINTS, *routes_usage.ENDPOINTS, *routes_results.ENDPOINTS, *routes_network.ENDPOINTS,
             *routes_admin.ENDPOINTS, *routes_health.ENDPOINTS, *routes_dashboard.ENDPOINTS, *routes_ws.ENDPOINTS]
    submits = routes_tasks.endpoints()
    taken = {e.path for e in fixed}
    if clashes := sorted(e.path for e in submits if e.path in taken):
        raise ValueError(f"a task kind's submit path is already an endpoint: {', '.join(clashes)}")
    return [*submits, *fixed]


def create_app(
    settings: Settings,
    *,
    store: TaskStore,
    blobs: BlobStore,
    keys: KeyStore,
    metagraph: Callable[[], MetagraphSnapshot | None],
    own_hotkey: str,
    miner_stats: Callable[[], list[MinerStat]] | None = None,
    health_checks: Mapping[str, HealthCheck] | None = None,
    monitor: Monitor | None = None,
    quorum_members: Callable[[], frozenset[str] | None] | None = None,
    ingest: IngestActivity | None = None,
) -> web.Application:
    """The side-server. ``metagraph`` returns the latest snapshot (None: signed endpoints answer 503);
    ``quorum_members`` the validators taking part in quorums (``approval``; default: every permitted one);
    ``own_hotkey`` is the receiver hotkey signed requests must name; ``health_checks`` are extra
    readiness probes (name -> async callable that raises when unhealthy); ``monitor`` the validator's
    loops (health turns 503 on a stalled one; ``/metrics`` and ``/dashboard`` show them); ``ingest`` counts
    its POST requests in flight for the validator's forward loop to yield to (``activity``)."""
    shared = watched(store)
    context = ServerContext(
        settings=settings,
        store=shared,
        blobs=blobs,
        keys=keys,
        metagraph=metagraph,
        own_hotkey=own_hotkey,
        miner_stats=miner_stats,
        health_checks=dict(health_checks or {}),
        verifier=SignatureVerifier(own_hotkey, max_age_s=settings.proxy.signature_max_age_s,
                                   nonce_cache_size=settings.proxy.nonce_cache_size),
        limiter=Limiter(),
        metrics=Metrics(),
        decodes=DecodeBudget(per_key=settings.proxy.decodes_per_key, workers=settings.proxy.decode_workers),
        webhooks=Webhooks(settings, shared, keys),
        monitor=monitor,
        # raises MissingExtra here, at start, when configured without the 'firebase' extra
        firebase=FirebaseVerifier(settings.auth) if settings.auth.firebase_project else None,
    )
    if quorum_members is not None:
        context.quorum_members = quorum_members
    if ingest is not None:
        context.ingest = ingest
    app = web.Application(middlewares=[request_middleware, cors_middleware, error_middleware])
    app[CONTEXT] = context
    routes_ws.install(app, context)
    table = endpoints()
    add_endpoints(app, table)
    app.add_routes(docs_routes(build_openapi(table)))
    app.on_startup.append(_seed_keys)
    app.on_startup.append(_start_webhooks)
    app.on_shutdown.append(_begin_shutdown)
    app.on_cleanup.append(_close_firebase)
    app.on_cleanup.append(_stop_webhooks)
    app.on_response_prepare.append(add_request_id_on_prepare)
    app.on_response_prepare.append(add_cors_on_prepare)
    return app


async def _seed_keys(app: web.Application) -> None:
    context = app[CONTEXT]
    seeded = await seed_configured_keys(context.keys, context.settings)
    if seeded:
        log.info("seeded %d configured API key(s): %s", len(seeded), ", ".join(k.key_id for k in seeded))


async def _start_webhooks(app: web.Application) -> None:
    app[CONTEXT].webhooks.start()


async def _stop_webhooks(app: web.Application) -> None:
    """After the in-flight requests: attempts in flight are cancelled (sent again after their lease)."""
    await app[CONTEXT].webhooks.stop()


async def _begin_shutdown(app: web.Application) -> None:
    """Sites are already closed to new connections; end long-polls and event streams early so the
    in-flight requests can finish within the grace period."""
    context = app[CONTEXT]
    context.closing.set()
    context.events.wake_all()


async def _close_firebase(app: web.Application) -> None:
    if (firebase := app[CONTEXT].firebase) is not None:
        firebase.close()


@dataclass
class RunningServer:
    """A started side-server: ``port`` is the bound port (useful with ``--proxy.port 0``)."""

    runner: web.AppRunner
    listener: asyncio.Server
    guard: ConnectionGuard
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Graceful: stop accepting, wake waiters, let in-flight requests finish (shutdown_grace_s)."""
        self.listener.close()
        await self.runner.cleanup()


async def start_server(app: web.Application, settings: Settings, *, host: str | None = None,
                       port: int | None = None) -> RunningServer:
    host = host if host is not None else settings.proxy.host
    port = port if port is not None else settings.proxy.port
    proxy = settings.proxy
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=proxy.shutdown_grace_s,
                           keepalive_timeout=proxy.keepalive_s)
    await runner.setup()
    assert runner.server is not None
    # Our own listener (instead of web.TCPSite) so every connection goes through the guard.
    # aiohttp's handler, answering a request head it cannot parse in the API's error shape (malformed.py).
    guard = ConnectionGuard(handler_factory(runner.server, app[CONTEXT].metrics.count_malformed),
                            max_connections=proxy.max_connections, header_timeout_s=proxy.header_timeout_s)
    listener = await asyncio.get_running_loop().create_server(guard, host or None, port, reuse_address=True,
                                                              backlog=128)
    bound = int(listener.sockets[0].getsockname()[1])  # the real port when port 0 asked for any free one
    log.info("side-server listening on %s:%d (at most %d connections)", host, bound, proxy.max_connections)
    # Everything alive now (imported modules, loaded models, the app) lives as long as the process.
    # Frozen, it is skipped by the collector's full passes, which otherwise walked the whole start-up
    # heap: 45-60 ms pauses a few times a second under load, the whole p99 of a submit (measured).
    gc.freeze()
    return RunningServer(runner=runner, listener=listener, guard=guard, host=host, port=bound)
