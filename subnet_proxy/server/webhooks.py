"""The side-server's webhooks, wired together: the producer on the store's change feed, the delivery
worker, and the check of a submission's ``callback_url`` at the door.

A callback URL is refused at the door (400 ``invalid_callback_url``) when its host is not public:
an IP literal that is loopback, private, link-local, metadata..., or a name that resolves to one
(or does not resolve). The same ``outbound`` rule the miner-delivery path has, and the same switch:
local mode (``--mock``) allows private hosts. The door check is for a clear answer; the promise is
kept at connect time by ``OutboundHTTP`` (a name that resolves elsewhere later is refused then, and
the event given up with ``refused_address``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from subnet_proxy.api.schemas import INVALID_CALLBACK_URL
from subnet_proxy.config import Settings
from subnet_proxy.keys import KeyStore, default_webhook_secret
from subnet_proxy.outbound import AddressRefused, GuardedResolver, OutboundHTTP, OutboundPolicy
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.webhook_events import WebhookProducer
from subnet_proxy.server.webhook_worker import WebhookPolicy, WebhookSecrets, WebhookWorker
from subnet_proxy.store.watched import WatchedStore

#: the longest a callback host's lookup may hold a submission.
RESOLVE_TIMEOUT_S = 2.0


class Webhooks:
    """Made by ``create_app`` over the store the server shares with the loop; started and stopped with
    the app (``start``/``stop``)."""

    def __init__(self, settings: Settings, store: WatchedStore, keys: KeyStore) -> None:
        self.policy = OutboundPolicy(allow_private=settings.mock.enabled)
        delivery = WebhookPolicy.from_settings(settings.proxy)
        http = OutboundHTTP(self.policy, max_connections=delivery.concurrency)
        self.worker = WebhookWorker(store, WebhookSecrets(keys, default_webhook_secret(settings)), http, delivery)
        self.producer = WebhookProducer(store, wake=self.worker.wake)
        store.observe(self.producer)
        self._resolver: GuardedResolver | None = None  # made on first use: it needs the running loop

    async def check_callback(self, url: str) -> None:
        """400 unless ``url``'s host is one webhooks may go to (syntax is the request model's check)."""
        if self.policy.allow_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self._resolver is None:
            self._resolver = GuardedResolver(self.policy)
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                await self._resolver.resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
        except AddressRefused as exc:
            raise ApiError(400, INVALID_CALLBACK_URL, f"callback_url's host {host} is not a public address") from exc
        except (OSError, TimeoutError) as exc:
            raise ApiError(400, INVALID_CALLBACK_URL, f"callback_url's host {host} does not resolve") from exc

    def start(self) -> None:
        self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()
        if self._resolver is not None:
            await self._resolver.close()

