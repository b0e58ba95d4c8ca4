"""The side-server's dependencies and shared state, held under one typed app key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain import MetagraphSnapshot
from subnet_proxy.config import Settings
from subnet_proxy.keys import ApiKey, KeyStore
from subnet_proxy.keys.firebase import FirebaseVerifier
from subnet_proxy.monitoring import Monitor
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.server.dashboard_state import SharedState
from subnet_proxy.server.decoding import DecodeBudget
from subnet_proxy.server.ids import IdSource
from subnet_proxy.server.limits import Limiter, Limits
from subnet_proxy.server.metrics import Metrics
from subnet_proxy.server.webhooks import Webhooks
from subnet_proxy.signing import SignatureVerifier
from subnet_proxy.store.watched import TaskEvents, WatchedStore
from subnet_proxy.tasks import MinerStat

HealthCheck = Callable[[], Awaitable[None]]
"""A readiness probe: returns when healthy, raises when not."""


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    store: WatchedStore
    blobs: BlobStore
    keys: KeyStore
    metagraph: Callable[[], MetagraphSnapshot | None]
    own_hotkey: str
    miner_stats: Callable[[], list[MinerStat]] | None
    health_checks: Mapping[str, HealthCheck]
    verifier: SignatureVerifier
    limiter: Limiter
    metrics: Metrics
    decodes: DecodeBudget
    #: callback URLs at the door, webhook events from the store's change feed, their delivery.
    webhooks: Webhooks
    #: the validator's loops (health, metrics, dashboard); None on an ingestion-only server.
    monitor: Monitor | None = None
    #: the validators a quorum counts (``approval``; None: every permitted validator).
    quorum_members: Callable[[], frozenset[str] | None] = lambda: None
    #: checks Firebase ID tokens (``--auth.firebase_project``); None: API keys only.
    firebase: FirebaseVerifier | None = None
    ids: IdSource = field(default_factory=IdSource)
    #: POST requests in flight, which a validator's forward loop in this process yields to.
    ingest: IngestActivity = field(default_factory=IngestActivity)
    #: the dashboard's state, shared by every open page.
    dashboard: SharedState = field(default_factory=SharedState)
    started_at: float = field(default_factory=time.monotonic)
    #: set when shutdown begins: long-polls and event streams end early so in-flight requests finish.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    #: a short cache of authenticated keys (hash -> (key, expiry)); revocation takes effect within its TTL.
    key_cache: dict[str, tuple[ApiKey, float]] = field(default_factory=dict)

    @property
    def events(self) -> TaskEvents:
        return self.store.events

    def limits_for(self, api_key: ApiKey | None) -> Limits:
        """A key's limits (its own, else the defaults); ``None``: a signed neuron's per-hotkey limits."""
        proxy = self.settings.proxy
        if api_key is None:
            return Limits(proxy.neuron_rate_per_s, proxy.neuron_burst, proxy.max_in_flight)
        return Limits(
            api_key.rate_per_s or proxy.rate_per_s,
            api_key.burst or proxy.burst,
            api_key.max_in_flight or proxy.max_in_flight,
        )


CONTEXT: web.AppKey[ServerContext] = web.AppKey("subnet_proxy_context", ServerContext)


def ctx(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]
