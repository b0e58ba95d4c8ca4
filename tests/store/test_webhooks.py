"""Conformance: the webhook outbox (add once, take due events under a lease, record outcomes), and a
pending event written by one store object delivered by a worker over another (a restarted process)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.outbound import OutboundHTTP, OutboundPolicy
from subnet_proxy.server.webhook_worker import WebhookPolicy, WebhookSecrets, WebhookWorker
from subnet_proxy.store import TaskStore
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import TaskStatus, WebhookDelivery, utcnow
from subnet_proxy.webhook_signature import verify_webhook
from tests.store.factories import make_task
from tests.webhook_receiver import until_webhooks, webhook_receiver


def delivery(task_id: str, event: str, url: str = "http://127.0.0.1:9/hook") -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(event_id=f"evt_{task_id}_{event}", task_id=task_id, owner="k_owner", url=url,
                           event_type=f"task.{event}", body='{"id": "x"}', created_at=now, next_attempt_at=now)


async def test_an_event_is_added_once_taken_under_a_lease_and_saved(task_store: TaskStore) -> None:
    task, _ = await task_store.create_task(make_task(1))
    first = delivery(task.task_id, "done")
    assert await task_store.add_webhook(first) is True
    assert await task_store.add_webhook(first) is False
    now = utcnow() + timedelta(seconds=1)
    [taken] = await task_store.due_webhooks(now=now, limit=10, lease_s=30)
    assert taken.event_id == first.event_id and taken.next_attempt_at == now + timedelta(seconds=30)
    assert await task_store.due_webhooks(now=now, limit=10, lease_s=30) == []  # held by the first taker
    [again] = await task_store.due_webhooks(now=now + timedelta(seconds=31), limit=10, lease_s=30)  # it died
    assert again.event_id == first.event_id
    await task_store.save_webhook(again.model_copy(update={"state": "delivered", "attempts": 1, "last_status": 200}))
    assert await task_store.due_webhooks(now=now + timedelta(days=1), limit=10, lease_s=30) == []
    [listed] = await task_store.list_webhooks(task.task_id)
    assert (listed.state, listed.attempts, listed.last_status) == ("delivered", 1, 200)
    await task_store.transition(task.task_id, TaskStatus.FAILED, error=("x", "y"))
    report = await task_store.purge(status=TaskStatus.FAILED, older_than=utcnow() + timedelta(seconds=1))
    assert report.task_ids == [task.task_id]
    assert await task_store.list_webhooks(task.task_id) == []


async def test_a_pending_event_is_delivered_after_a_restart(open_store: Callable[[], TaskStore],
                                                             tmp_path: Path) -> None:
    before = open_store()
    task, _ = await before.create_task(make_task(2))
    async with webhook_receiver() as receiver:
        await before.add_webhook(delivery(task.task_id, "approved", receiver.url))
        after = WatchedStore(open_store())  # the process restarted: a new store object on the same database
        keys = SqliteKeyStore(f"{tmp_path}/keys.db")
        worker = WebhookWorker(after, WebhookSecrets(keys, "whsec_the-validators-secret"),
                               OutboundHTTP(OutboundPolicy(allow_private=True)), WebhookPolicy(poll_s=0.05),
                               rng=random.Random(1))
        worker.start()
        try:
            got = await receiver.next_delivered()
            [saved] = await until_webhooks(after, task.task_id, lambda hooks: hooks[0].state == "delivered")
        finally:
            await worker.stop()
            await keys.close()
    verify_webhook("whsec_the-validators-secret", got.body, got.headers["X-Signature"])
    assert (saved.state, saved.attempts, saved.last_status) == ("delivered", 1, 200)
