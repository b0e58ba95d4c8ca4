"""Webhook delivery: a bounded background worker that sends the outbox's due events and records each try.

The worker never holds more than ``--proxy.webhook_concurrency`` attempts in flight, each bounded by
``--proxy.webhook_timeout_s``; events waiting for a slot or a retry stay in the store, not in memory,
so a dead or slow receiver costs the server one slot for one timeout at a time, never a request's
time. Taking an event (``WebhookOutbox.due_webhooks``) holds it for a lease a little longer than an
attempt, so another process's worker on the same store does not send it meanwhile, and one that died
holding it leaves it due again: delivery is at least once (receivers deduplicate on the event id).

Each attempt POSTs the event's stored JSON through the guarded ``OutboundHTTP`` (no redirects, only
public addresses outside local mode: ``--mock``), signed with ``webhook_signature.sign`` under the owner
key's webhook secret, else the validator's. A 2xx delivers it. A refused address fails it for good (no
retry can help). A connection the receiver drops before any answer (a kept-alive one it closed as the
event was written) is sent again at once, within the attempt. Anything else (another status, an error, a
timeout) is retried after an exponential back-off with jitter (``--proxy.webhook_backoff_s`` doubling up
to ``webhook_backoff_max_s``, each pause drawn between half and all of it) until
``--proxy.webhook_max_age_s`` after the event, then given up (state ``failed``). Every attempt's outcome
is written to the event (``save_webhook``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from subnet_proxy.config import ProxySettings
from subnet_proxy.keys import KeyNotFound, KeyStore
from subnet_proxy.outbound import OutboundHTTP, read_bounded, refused_address, resend_on_drop
from subnet_proxy.store.base import WebhookOutbox
from subnet_proxy.tasks import WebhookDelivery, utcnow
from subnet_proxy.waits import wait_set
from subnet_proxy.webhook_signature import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

#: a taken event is held this much longer than one attempt may take.
LEASE_MARGIN_S = 5.0
#: the most of a receiver's answer read (and dropped): its body means nothing to us.
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "subnet-proxy-webhooks/1"
#: retry times remembered to wake for (beyond them, the poll finds the retries).
MAX_TIMERS = 10_000


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    concurrency: int = 16
    timeout_s: float = 10.0
    backoff_s: float = 1.0
    backoff_max_s: float = 600.0
    max_age_s: float = 86400.0
    poll_s: float = 1.0

    @classmethod
    def from_settings(cls, proxy: ProxySettings) -> WebhookPolicy:
        return cls(concurrency=proxy.webhook_concurrency, timeout_s=proxy.webhook_timeout_s,
                   backoff_s=proxy.webhook_backoff_s, backoff_max_s=proxy.webhook_backoff_max_s,
                   max_age_s=proxy.webhook_max_age_s, poll_s=proxy.webhook_poll_s)

    def pause_s(self, attempts: int, rng: random.Random) -> float:
        """The pause after ``attempts`` failed tries: doubling from ``backoff_s``, capped, jittered."""
        full = min(self.backoff_max_s, self.backoff_s * 2.0 ** min(attempts - 1, 60))
        return full * rng.uniform(0.5, 1.0)


class WebhookSecrets:
    """The secret that signs an owner's events: its key's own, else the validator's."""

    def __init__(self, keys: KeyStore, default: str) -> None:
        self.keys = keys
        self.default = default

    async def secret_for(self, owner: str) -> str:
        try:
            api_key = await self.keys.get(owner)
        except KeyNotFound:  # synthetic owners, deleted keys
            return self.default
        return api_key.webhook_secret or self.default


class WebhookWorker:
    """Sends due webhook events in the background; ``wake()`` when one was added (in this process)."""

    def __init__(self, outbox: WebhookOutbox, secrets: WebhookSecrets, http: OutboundHTTP, policy: WebhookPolicy,
                 *, rng: random.Random | None = None) -> None:
        self.outbox = outbox
        self.secrets = secrets
        self.http = http
        self.policy = policy
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._retries: list[datetime] = []  # a heap of the retry times this worker scheduled
        self._runner: asyncio.Task[None] | None = None
        #: set by ``stop``: a cancel the store's client turned into an error of its own still ends the loop.
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self) -> None:
        """Stop taking events and cancel the attempts in flight (their leases run out: sent again later)."""
        self._stopping = True
        tasks = [t for t in (self._runner, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runner = None
        await self.http.close()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = utcnow()
            while self._retries and self._retries[0] <= now:
                heapq.heappop(self._retries)  # due now: this look takes it
            free = self.policy.concurrency - len(self._in_flight)
            if free > 0:
                try:
                    due = await self.outbox.due_webhooks(now=now, limit=free,
                                                         lease_s=self.policy.timeout_s + LEASE_MARGIN_S)
                except Exception:  # noqa: BLE001 - the store is down for now: try again at the next poll
                    if self._stopping:
                        return
                    log.warning("webhooks: could not read the due events", exc_info=True)
                    due = []
                for delivery in due:
                    attempt = asyncio.create_task(self._attempt(delivery))
                    self._in_flight.add(attempt)
                    attempt.add_done_callback(self._finished)
                if len(due) == free:
                    continue  # perhaps more due: take them once a slot frees (the callback wakes)
            await self._sleep()

    def _finished(self, attempt: asyncio.Task[None]) -> None:
        self._in_flight.discard(attempt)
        self._wake.set()

    async def _sleep(self) -> None:
        """Until woken, the soonest retry this worker knows of, or the poll for others' events."""
        timeout = self.policy.poll_s
        if self._retries:
            timeout = min(timeout, max(0.0, (self._retries[0] - utcnow()).total_seconds()))
        await wait_set(self._wake, timeout)

    async def _attempt(self, delivery: WebhookDelivery) -> None:
        try:
            status, error = await self._post(delivery)
        except Exception:  # noqa: BLE001 - e.g. the key store is down: counted as a failed attempt, retried
            log.warning("webhook %s: attempt failed before sending", delivery.event_id, exc_info=True)
            status, error = None, "internal_error"
        now = utcnow()
        attempts = delivery.attempts + 1
        update: dict[str, object] = {"attempts": attempts, "last_status": status, "last_error": error,
                                     "last_attempt_at": now}
        if status is not None and 200 <= status < 300:
            update.update(state="delivered", delivered_at=now, last_error=None)
        elif error == "refused_address":
            update.update(state="failed")
        else:
            retry = now + timedelta(seconds=self.policy.pause_s(attempts, self.rng))
            if retry > delivery.created_at + timedelta(seconds=self.policy.max_age_s):
                update.update(state="failed")
            else:
                update.update(next_attempt_at=retry)
                if len(self._retries) < MAX_TIMERS:
                    heapq.heappush(self._retries, retry)
        try:
            await self.outbox.save_webhook(delivery.model_copy(update=update))
        except Exception:  # noqa: BLE001 - the event stays held until its lease ends, then is sent again
            log.warning("webhook %s: outcome not stored", delivery.event_id, exc_info=True)

    async def _post(self, delivery: WebhookDelivery) -> tuple[int | None, str | None]:
        """One attempt: (HTTP status, None), or (None, why there was no answer). A kept-alive connection
        the receiver closes as the event is written on it (gunicorn closes one idle for 2 s) is no
        answer and not the receiver's fault: the POST goes once more at once, signed anew
        (``resend_on_drop``), instead of waiting out a back-off. Both tries together take at most
        ``timeout_s``, so an attempt never outlives the lease its event is held under."""
        body = delivery.body.encode()
        secret = await self.secrets.secret_for(delivery.owner)

        def send() -> Any:
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       "X-Webhook-Id": delivery.event_id, SIGNATURE_HEADER: sign(secret, body)}
            return self.http.post(delivery.url, data=body, headers=headers)

        try:
            async with asyncio.timeout(self.policy.timeout_s), await resend_on_drop(send) as resp:
                await read_bounded(resp, MAX_ANSWER_BYTES)
                return resp.status, None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if refused_address(exc):
                log.warning("webhook %s: %s is not a public address; given up", delivery.event_id, delivery.url)
                return None, "refused_address"
            return None, "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
