"""The Firestore store's ``WebhookOutbox``: the webhook events of tasks, in the ``webhooks`` collection.

An event is a ``create`` with its deterministic id (a repeat gets AlreadyExists and writes nothing).
Taking the due events reads them, then takes each with a write conditioned on that read's update
time (as claims take tasks, ``queue``): of two workers in two processes exactly one gets an event.
The due query (state, next_attempt_at) needs its composite index (``firestore.indexes.json``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from subnet_proxy.store import ops
from subnet_proxy.store.base import WebhookOutbox
from subnet_proxy.store.firestore import codec
from subnet_proxy.store.firestore.core import FirestoreCore, fan_out
from subnet_proxy.tasks import WebhookDelivery

#: fields stored as native timestamps (the due query filters and orders on ``next_attempt_at``).
TIMES = ("created_at", "next_attempt_at")


class FirestoreWebhooks(FirestoreCore, WebhookOutbox):
    """The outbox documents of this prefix."""

    def _webhook_ref(self, event_id: str) -> Any:
        return self._col.webhooks.document(codec.doc_id(event_id))

    async def add_webhook(self, delivery: WebhookDelivery) -> bool:
        try:
            await self._webhook_ref(delivery.event_id).create(codec.encode(delivery, *TIMES))
        except gexc.AlreadyExists:
            return False
        return True

    async def due_webhooks(self, *, now: datetime, limit: int, lease_s: float) -> list[WebhookDelivery]:
        ops.check_limit(limit)
        at = ops.instant(now)
        ops.check_lease_s(lease_s)
        held = at + timedelta(seconds=lease_s)
        query = (self._col.webhooks.where(filter=firestore.FieldFilter("state", "==", "pending"))
                 .where(filter=firestore.FieldFilter("next_attempt_at", "<=", at))
                 .order_by("next_attempt_at").limit(limit))
        snaps = [snap async for snap in query.stream()]
        taken = await fan_out(self._take_webhook(snap, held) for snap in snaps)
        return [d for d in taken if d is not None]

    async def _take_webhook(self, snap: Any, held: datetime) -> WebhookDelivery | None:
        delivery = codec.decode(WebhookDelivery, snap.to_dict()).model_copy(update={"next_attempt_at": held})
        try:
            await snap.reference.update({"next_attempt_at": held},
                                        option=self._client.write_option(last_update_time=snap.update_time))
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
            return None  # another worker took it (or its task was purged) since the read
        return delivery

    async def save_webhook(self, delivery: WebhookDelivery) -> None:
        await self._webhook_ref(delivery.event_id).set(codec.encode(delivery, *TIMES))

    async def list_webhooks(self, task_id: str) -> list[WebhookDelivery]:
        query = self._col.webhooks.where(filter=firestore.FieldFilter("task_id", "==", task_id))
        found = [codec.decode(WebhookDelivery, snap.to_dict()) async for snap in query.stream()]
        return sorted(found, key=lambda d: (d.created_at, d.event_id))
