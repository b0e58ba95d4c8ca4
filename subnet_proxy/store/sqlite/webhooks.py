"""The SQLite store's ``WebhookOutbox``: the webhook events of tasks, in the ``webhooks`` table.

Adding an event and writing an attempt's outcome are quick writes (one row by key, on the event
loop's connection); taking the due events is a read-then-update, so it runs in one write transaction
(``BEGIN IMMEDIATE``): two workers, in this process or another, never take the same event at once.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from subnet_proxy.store import ops
from subnet_proxy.store.base import WebhookOutbox
from subnet_proxy.store.sqlite.core import SQLiteCore
from subnet_proxy.store.sqlite.schema import ts
from subnet_proxy.tasks import WebhookDelivery


class SQLiteWebhooks(SQLiteCore, WebhookOutbox):
    """The outbox rows of one SQLite file."""

    async def add_webhook(self, delivery: WebhookDelivery) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO webhooks(event_id, task_id, state, next_ts, doc) VALUES (?, ?, ?, ?, ?)",
                (delivery.event_id, delivery.task_id, delivery.state, ts(delivery.next_attempt_at),
                 delivery.model_dump_json()))
            return cur.rowcount == 1

        return await self._db.write(work, quick=True)

    async def due_webhooks(self, *, now: datetime, limit: int, lease_s: float) -> list[WebhookDelivery]:
        ops.check_limit(limit)
        at = ops.instant(now)
        ops.check_lease_s(lease_s)
        held = at + timedelta(seconds=lease_s)

        def work(conn: sqlite3.Connection) -> list[WebhookDelivery]:
            rows = conn.execute("SELECT doc FROM webhooks WHERE state = 'pending' AND next_ts <= ? "
                                "ORDER BY next_ts LIMIT ?", (at.timestamp(), limit)).fetchall()
            taken = [WebhookDelivery.model_validate_json(doc).model_copy(update={"next_attempt_at": held})
                     for (doc,) in rows]
            conn.executemany("UPDATE webhooks SET next_ts = ?, doc = ? WHERE event_id = ?",
                             [(held.timestamp(), d.model_dump_json(), d.event_id) for d in taken])
            return taken

        return await self._db.write(work)

    async def save_webhook(self, delivery: WebhookDelivery) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE webhooks SET state = ?, next_ts = ?, doc = ? WHERE event_id = ?",
                         (delivery.state, ts(delivery.next_attempt_at), delivery.model_dump_json(),
                          delivery.event_id))

        await self._db.write(work, quick=True)

    async def list_webhooks(self, task_id: str) -> list[WebhookDelivery]:
        found = await self._docs(WebhookDelivery, "SELECT doc FROM webhooks WHERE task_id = ?", task_id)
        return sorted(found, key=lambda d: (d.created_at, d.event_id))
