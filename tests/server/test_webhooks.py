"""Webhooks end to end: a running side-server POSTs signed events to a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from subnet_proxy.cli import main as cli_main
from subnet_proxy.client import ProxyClient, WebhookSignatureError, verify_webhook
from subnet_proxy.tasks import FinalResult, TaskKind, TaskStatus
from tests.dropping import DroppingProxy, drop_then_hang
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, Harness, auth, error_of, start_harness, stop_harness
from tests.webhook_receiver import Receiver, until_webhooks

TEXT = "A long text to summarize for the webhook test. " * 3


def client(h: Harness, key: str = CLIENT_KEY) -> ProxyClient:
    return ProxyClient(str(h.client.make_url("")), api_key=key)


async def test_events_on_first_answer_and_final_state_signed_with_the_keys_secret(
        local_harness: Harness, receiver: Receiver) -> None:
    h = local_harness
    key_id = await h.client_key_id()
    async with client(h, ADMIN_KEY) as admin:
        secret = (await admin.set_webhook_secret(key_id)).webhook_secret
    async with client(h) as c:
        accepted = await c.submit_summarization(TEXT, callback_url=receiver.url)
    task_id = accepted.task_id
    await h.store.claim_tasks("loop", limit=1, lease_s=60)
    await h.store.assign_miners(task_id, "loop", [(3, h.neurons.miner_1.ss58_address)])
    resp = await h.signed("POST", "/api/v1/miner/response", h.neurons.miner_1, {"task_id": task_id, "text": "short"})
    assert resp.status == 200, await resp.text()
    await h.store.transition(task_id, TaskStatus.DONE, claimer="loop")
    result = FinalResult(task_id=task_id, kind=TaskKind.SUMMARIZATION, hotkey=h.neurons.miner_1.ss58_address, uid=3,
                         score=0.9, text="short")
    await h.store.transition(task_id, TaskStatus.APPROVED, result=result)

    events = []
    for _ in range(3):
        got = await receiver.next_delivered()
        t = verify_webhook(secret, got.body, got.headers["X-Signature"], tolerance_s=60)
        with pytest.raises(WebhookSignatureError):  # a replay, long after it was signed
            verify_webhook(secret, got.body, got.headers["X-Signature"], tolerance_s=60, now=t + 3600)
        with pytest.raises(WebhookSignatureError):  # an altered body
            verify_webhook(secret, got.body.replace(task_id.encode(), b"f" * 32), got.headers["X-Signature"])
        with pytest.raises(WebhookSignatureError):  # another secret (a forger's)
            verify_webhook("whsec_not-the-right-one", got.body, got.headers["X-Signature"])
        event = json.loads(got.body)
        assert got.headers["X-Webhook-Id"] == event["id"]
        events.append(event)
    by_type = {e["type"]: e for e in events}  # sent concurrently: in any order
    assert sorted(by_type) == ["task.approved", "task.done", "task.first_answer"]
    assert {e["task_id"] for e in events} == {task_id}
    first, approved = by_type["task.first_answer"], by_type["task.approved"]
    assert first["data"]["answer"]["text"] == "short" and first["status"] == "distributed"
    assert approved["status"] == "approved" and approved["data"]["result"]["score"] == 0.9
    assert approved["data"]["result_url"] == f"/api/v1/task/{task_id}/result"

    await until_webhooks(h.store, task_id, lambda hooks: all(w.state == "delivered" for w in hooks))
    async with client(h) as c:
        status = await c.status(task_id)
    assert status.callback_url == receiver.url
    assert [(w.type, w.state, w.attempts, w.last_status) for w in status.webhooks] == [
        ("task.first_answer", "delivered", 1, 200), ("task.done", "delivered", 1, 200),
        ("task.approved", "delivered", 1, 200)]
    assert all(w.delivered_at is not None for w in status.webhooks)


async def test_a_failing_receiver_gets_retries_recorded_until_it_answers(
        local_harness: Harness, receiver: Receiver, wav_bytes: bytes) -> None:
    """The form upload path, a cancel (failed/cancelled), the validator's own secret, two 500s then a 200."""
    h = local_harness
    receiver.answers = [500, 503]
    async with client(h) as c:
        accepted = await c.submit_transcription(wav_bytes, callback_url=receiver.url)
        await c.cancel(accepted.task_id)
        got = await receiver.next_delivered()
        await until_webhooks(h.store, accepted.task_id, lambda hooks: hooks[0].state == "delivered")
        status = await c.status(accepted.task_id)
    secret = (h.settings.data_dir / "webhook_secret").read_text()
    verify_webhook(secret, got.body, got.headers["X-Signature"])
    event = json.loads(got.body)
    assert (event["type"], event["data"]["error"]["code"]) == ("task.failed", "cancelled")
    assert len(receiver.received) == 3
    [hook] = status.webhooks
    assert (hook.state, hook.attempts, hook.last_status, hook.last_error) == ("delivered", 3, 200, None)


async def test_an_event_written_on_a_connection_the_receiver_drops_is_sent_again_at_once(
        local_harness: Harness, receiver: Receiver) -> None:
    """A receiver (or the proxy before it) closes a kept-alive connection just as the next event is
    written on it: nothing was answered, so the POST goes again at once on a new connection, within
    the same attempt: no back-off, no failed try on the record."""
    h = local_harness
    proxy = DroppingProxy(URL(receiver.url).port or 0, answered=1)  # every connection's second request: dropped
    callback = f"http://127.0.0.1:{await proxy.start()}/hook"
    try:
        async with client(h) as c:
            task_id = (await c.submit_summarization(TEXT, callback_url=callback)).task_id
        await h.store.claim_tasks("loop", limit=1, lease_s=60)
        await h.store.assign_miners(task_id, "loop", [(3, h.neurons.miner_1.ss58_address)])
        resp = await h.signed("POST", "/api/v1/miner/response", h.neurons.miner_1, {"task_id": task_id, "text": "a"})
        assert resp.status == 200, await resp.text()
        await until_webhooks(h.store, task_id, lambda hooks: hooks[0].state == "delivered")
        await h.store.transition(task_id, TaskStatus.DONE, claimer="loop")  # its event: the connection's second
        hooks = await until_webhooks(h.store, task_id,
                                     lambda hooks: [w.state for w in hooks] == ["delivered", "delivered"])
    finally:
        await proxy.close()
    assert [(w.event_type, w.attempts, w.last_status) for w in hooks] == [
        ("task.first_answer", 1, 200), ("task.done", 1, 200)]
    sent = [fields["x-webhook-id"] for line, fields in proxy.requests if line.startswith("POST /hook")]
    assert sent == [hooks[0].event_id, hooks[1].event_id, hooks[1].event_id]  # the second: dropped, then again
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["task.first_answer", "task.done"]


async def test_a_receiver_that_never_answers_costs_one_timeout_an_attempt_then_a_retry(tmp_path) -> None:
    """The first try is dropped after a while, the second hangs: the attempt, both tries together,
    ends at ``--proxy.webhook_timeout_s`` (the lease it holds the event under is sized for one) and
    is recorded as a timeout, to be retried."""
    tries: list[float] = []
    app = web.Application()
    app.router.add_post("/hook", drop_then_hang(tries, hold_s=1.2))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    h = await start_harness(tmp_path, local=True, webhook_timeout_s=2.0, webhook_backoff_s=30.0)
    try:
        async with client(h) as c:
            task_id = (await c.submit_summarization(TEXT, callback_url=str(server.make_url("/hook")))).task_id
            await c.cancel(task_id)
        [hook] = await until_webhooks(h.store, task_id, lambda hooks: hooks[0].attempts == 1, timeout=10.0)
    finally:
        await stop_harness(h)
        await server.close()
    assert (hook.state, hook.last_error, hook.last_status) == ("pending", "timeout", None)  # retried later
    assert len(tries) == 2 and tries[1] - tries[0] >= 1.2  # sent again after the drop, within the attempt
    assert hook.last_attempt_at is not None and hook.next_attempt_at > hook.last_attempt_at
    # ended at the attempt's 2 s (a timeout for each try would have run to 1.2 + 2 s)
    assert hook.last_attempt_at.timestamp() - tries[0] < 2.6


async def test_callback_urls_that_are_not_public_or_not_http_are_refused_at_the_door(harness: Harness) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest",
                "http://10.0.0.1/x", "ftp://example.org/hook", "https://user:pw@example.org/hook",
                "https://example.org/" + "a" * 600):
        resp = await harness.client.post("/api/v1/summarization", json={"text": TEXT, "callback_url": url},
                                         headers=auth())
        assert resp.status == 400, url
        assert await error_of(resp) == "invalid_callback_url", url
    page = await harness.store.list_tasks()
    assert page.tasks == []


async def test_the_cli_submits_with_a_callback_url(local_harness: Harness, receiver: Receiver, capsys) -> None:
    h = local_harness
    url = str(h.client.make_url("")).rstrip("/")
    code = await asyncio.to_thread(cli_main, ["--url", url, "--api-key", CLIENT_KEY, "submit", "summarize", TEXT,
                                              "--callback-url", receiver.url])
    assert code == 0
    task_id = json.loads(capsys.readouterr().out)["task_id"]
    async with client(h) as c:
        assert (await c.status(task_id)).callback_url == receiver.url
        await c.cancel(task_id)
    got = await receiver.next_delivered()
    assert json.loads(got.body)["task_id"] == task_id
