"""Where issue #18's features meet, on one running side-server: the WebSocket beside webhooks and a
cancel, quotas beside callback URLs and idempotent replays (Firebase users at every door: see
``test_firebase_auth``)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from subnet_proxy.api.ws import KEY_PROTOCOL_PREFIX, WS_PROTOCOL
from subnet_proxy.client import ProxyClient
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, Harness, auth, error_of
from tests.webhook_receiver import Receiver, until_webhooks

TEXT = "A long text to summarize where the features meet. " * 3


async def submit(h: Harness, key: str, *, callback_url: str | None = None,
                 idempotency_key: str | None = None) -> aiohttp.ClientResponse:
    headers = {**auth(key), **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
    body: dict[str, Any] = {"text": TEXT, **({"callback_url": callback_url} if callback_url else {})}
    return await h.client.post("/api/v1/summarization", json=body, headers=headers)


async def events_until_end(ws: aiohttp.ClientWebSocketResponse, task_id: str) -> list[tuple[str, str, str]]:
    """(task id, event, status) of every event message until ``task_id``'s end."""
    seen: list[tuple[str, str, str]] = []
    while True:
        msg = json.loads((await ws.receive(timeout=5)).data)
        if msg["type"] != "event":
            continue
        seen.append((msg["task_id"], msg["event"], msg["data"].get("status", "")))
        if msg["task_id"] == task_id and msg["event"] == "end":
            return seen


async def test_an_all_subscriber_gets_a_cancelled_tasks_events_once_whatever_its_webhooks_do(
        local_harness: Harness, receiver: Receiver) -> None:
    """A DELETE reaches the WebSocket; the webhook worker's writes after the task ended (each attempt is
    saved, and wakes the change feed) replay nothing to a subscriber of all its key's tasks."""
    h = local_harness
    receiver.answers = [500]  # two attempts: two saves of the outbox row after the task ended
    async with h.client.ws_connect("/api/v1/ws", protocols=(WS_PROTOCOL, KEY_PROTOCOL_PREFIX + CLIENT_KEY)) as ws:
        await ws.send_json({"type": "subscribe", "all": True})
        resp = await submit(h, CLIENT_KEY, callback_url=receiver.url)
        first = (await resp.json())["task_id"]
        resp = await h.client.delete(f"/api/v1/task/{first}", headers=auth(CLIENT_KEY))
        assert resp.status == 200 and (await resp.json())["error"]["code"] == "cancelled"
        assert await events_until_end(ws, first) == [
            (first, "status", "pending"), (first, "status", "failed"), (first, "end", "failed")]
        await until_webhooks(h.store, first, lambda hooks: hooks[0].state == "delivered")

        second = (await (await submit(h, CLIENT_KEY)).json())["task_id"]
        assert (await h.client.delete(f"/api/v1/task/{second}", headers=auth(CLIENT_KEY))).status == 200
        assert await events_until_end(ws, second) == [
            (second, "status", "pending"), (second, "status", "failed"), (second, "end", "failed")]
    assert len(receiver.received) == 2


async def test_a_quota_refusal_with_a_callback_leaves_no_event_and_a_replay_one_set(
        local_harness: Harness, receiver: Receiver) -> None:
    h = local_harness
    async with ProxyClient(str(h.client.make_url("")), api_key=ADMIN_KEY) as admin:
        trial = (await admin.create_key("trial", daily_tasks=1)).key
    accepted = await submit(h, trial, callback_url=receiver.url, idempotency_key="order-1")
    replayed = await submit(h, trial, callback_url=receiver.url, idempotency_key="order-1")
    assert (accepted.status, replayed.status, replayed.headers["Idempotent-Replayed"]) == (202, 202, "true")
    task_id = (await accepted.json())["task_id"]
    assert (await replayed.json())["task_id"] == task_id
    refused = await submit(h, trial, callback_url=receiver.url)
    assert refused.status == 429 and await error_of(refused) == "quota_exceeded"

    assert (await h.client.post(f"/api/v1/task/{task_id}/cancel", headers=auth(trial))).status == 200
    hooks = await until_webhooks(h.store, task_id, lambda hooks: bool(hooks) and hooks[0].state == "delivered")
    assert [w.event_type for w in hooks] == ["task.failed"]
    listed = await (await h.client.get("/api/v1/tasks", headers=auth(trial))).json()
    assert [t["task_id"] for t in listed["tasks"]] == [task_id]  # the refusal made no task, so no outbox row
    usage = await (await h.client.get("/api/v1/usage", headers=auth(trial))).json()
    assert usage["keys"][0]["total"]["tasks"] == 1
    assert len(receiver.received) == 1
