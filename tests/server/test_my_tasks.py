"""A client's own tasks through a real side-server: the newest-first listing and cancelling."""

from __future__ import annotations

import asyncio

import pytest

from subnet_proxy.client import ProxyClient, ProxyError, SyncProxyClient
from subnet_proxy.store.base import LeaseLost
from subnet_proxy.tasks import TaskKind, TaskStatus
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, Harness, auth, error_of


async def submit(harness: Harness, text: str, key: str = auth()["Authorization"]) -> str:
    resp = await harness.client.post("/api/v1/summarization", json={"text": text}, headers={"Authorization": key})
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["task_id"])


async def test_a_client_lists_its_own_tasks_newest_first_page_by_page(harness: Harness) -> None:
    mine = [await submit(harness, f"My text number {n}. " * 3) for n in range(5)]
    theirs = await submit(harness, "Another client's text. " * 3, auth(OTHER_KEY)["Authorization"])
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = await harness.client.get("/api/v1/tasks", params=params, headers=auth())
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert len(body["tasks"]) <= 2
        seen += body["tasks"]
        if (cursor := body["next_cursor"]) is None:
            break
    assert [t["task_id"] for t in seen] == list(reversed(mine))
    first = seen[0]
    assert first["kind"] == "summarization" and first["status"] == "pending"
    assert first["status_url"] == f"/api/v1/task/{first['task_id']}/status"
    assert (await harness.client.get(first["status_url"], headers=auth())).status == 200
    # the other client sees only its own; an admin key lists its own (none), not everyone's
    resp = await harness.client.get("/api/v1/tasks", headers=auth(OTHER_KEY))
    assert [t["task_id"] for t in (await resp.json())["tasks"]] == [theirs]
    resp = await harness.client.get("/api/v1/tasks", headers=auth(ADMIN_KEY))
    assert (await resp.json()) == {"tasks": [], "next_cursor": None}


async def test_the_listing_filters_by_status_and_kind(harness: Harness) -> None:
    earlier = await submit(harness, "Sent to miners with the next. " * 3)
    distributed = await harness.distributed_task()  # claims every pending task: `earlier` too
    pending = await submit(harness, "Stays pending here. " * 3)
    resp = await harness.client.get("/api/v1/tasks", params={"status": "pending"}, headers=auth())
    assert [t["task_id"] for t in (await resp.json())["tasks"]] == [pending]
    resp = await harness.client.get("/api/v1/tasks", params={"status": "distributed", "kind": "summarization"},
                                    headers=auth())
    assert [t["task_id"] for t in (await resp.json())["tasks"]] == [distributed.task_id, earlier]
    resp = await harness.client.get("/api/v1/tasks", params={"kind": "tts"}, headers=auth())
    assert (await resp.json())["tasks"] == []
    resp = await harness.client.get("/api/v1/tasks", params={"status": "approved"}, headers=auth())
    assert (await resp.json())["tasks"] == []


async def test_listing_refuses_unknown_values_and_foreign_cursors(harness: Harness) -> None:
    for _ in range(3):
        await submit(harness, "Some text to list. " * 3)
    for params, code in (({"status": "cancelled"}, "invalid_request"), ({"kind": "poetry"}, "invalid_request"),
                         ({"limit": "0"}, "invalid_request"), ({"limit": "101"}, "invalid_request"),
                         ({"owner": "x"}, "unknown_field"), ({"cursor": "garbage"}, "invalid_cursor")):
        resp = await harness.client.get("/api/v1/tasks", params=params, headers=auth())
        assert resp.status == 400 and await error_of(resp) == code, params
    resp = await harness.client.get("/api/v1/tasks", params={"limit": "1"}, headers=auth())
    cursor = (await resp.json())["next_cursor"]
    assert cursor is not None
    for params, key in (({"cursor": cursor, "status": "pending"}, auth()), ({"cursor": cursor}, auth(OTHER_KEY))):
        resp = await harness.client.get("/api/v1/tasks", params=params, headers=key)
        assert resp.status == 400 and await error_of(resp) == "invalid_cursor"
    resp = await harness.client.get("/api/v1/tasks")
    assert resp.status == 401


async def test_a_pending_task_is_cancelled_as_failed_cancelled(harness: Harness) -> None:
    task_id = await submit(harness, "Cancel me please. " * 3)
    resp = await harness.client.post(f"/api/v1/task/{task_id}/cancel", headers=auth())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    assert body["timeline"][-1]["reason"] == "cancelled by the client"
    assert await harness.store.claim_tasks("loop", limit=10, lease_s=60) == []  # never sent to miners
    resp = await harness.client.post(f"/api/v1/task/{task_id}/cancel", headers=auth())
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    assert "failed" in (await resp.json())["error"]["message"]


async def test_a_distributed_task_is_cancelled_and_late_answers_are_refused(harness: Harness) -> None:
    task = await harness.distributed_task()
    resp = await harness.client.post(f"/api/v1/task/{task.task_id}/cancel", headers=auth())
    assert resp.status == 200 and (await resp.json())["error"]["code"] == "cancelled"
    resp = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_1,
                                {"task_id": task.task_id, "text": "an answer after the cancel"})
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    assert await harness.store.list_responses(task.task_id) == []
    # the loop holding the lease finds it gone when it tries to finish the task
    with pytest.raises(LeaseLost):
        await harness.store.transition(task.task_id, TaskStatus.DONE, claimer="loop")


async def test_only_the_owner_cancels_and_only_an_undecided_task(harness: Harness) -> None:
    task_id = await submit(harness, "Not yours to cancel. " * 3)
    resp = await harness.client.post(f"/api/v1/task/{task_id}/cancel", headers=auth(OTHER_KEY))
    assert resp.status == 404 and await error_of(resp) == "task_not_found"
    resp = await harness.client.post("/api/v1/task/no-such-task/cancel", headers=auth())
    assert resp.status == 404
    done = await harness.done_task(kind=TaskKind.SUMMARIZATION)
    resp = await harness.client.post(f"/api/v1/task/{done.task_id}/cancel", headers=auth())
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    assert (await harness.store.get_task(done.task_id)).status is TaskStatus.DONE
    resp = await harness.client.post(f"/api/v1/task/{task_id}/cancel")
    assert resp.status == 401


async def test_a_cancel_racing_the_task_becoming_done_leaves_it_done(harness: Harness,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop moves the task to DONE right after the endpoint read it as distributed: the store's
    ``only_if`` refuses the cancel in its write, so a task with answers is never failed by it."""
    task = await harness.distributed_task()
    read = harness.store.get_task

    async def read_then_task_is_done(task_id: str) -> object:
        seen = await read(task_id)
        if seen.status is TaskStatus.DISTRIBUTED:
            await harness.store.transition(task_id, TaskStatus.DONE, claimer="loop")
        return seen

    monkeypatch.setattr(harness.store, "get_task", read_then_task_is_done)
    resp = await harness.client.post(f"/api/v1/task/{task.task_id}/cancel", headers=auth())
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    assert "done" in (await resp.json())["error"]["message"]
    assert (await read(task.task_id)).status is TaskStatus.DONE


async def test_the_client_lists_and_cancels(harness: Harness) -> None:
    url = str(harness.client.make_url("")).rstrip("/")
    async with ProxyClient(url, api_key=CLIENT_KEY) as client:
        first = await client.submit_summarization("The first text. " * 3)
        second = await client.submit_summarization("The second text. " * 3)
        page = await client.list_tasks(limit=1)
        assert [t.task_id for t in page.tasks] == [second.task_id] and page.next_cursor is not None
        page = await client.list_tasks(limit=1, cursor=page.next_cursor)
        assert [t.task_id for t in page.tasks] == [first.task_id] and page.next_cursor is None
        cancelled = await client.cancel(first.task_id)
        assert cancelled.status is TaskStatus.FAILED and cancelled.error is not None
        page = await client.list_tasks(status="failed", kind="summarization")
        assert [(t.task_id, t.error.code if t.error else None) for t in page.tasks] == [(first.task_id, "cancelled")]
        with pytest.raises(ProxyError) as closed:
            await client.cancel(first.task_id)
        assert (closed.value.status, closed.value.code) == (409, "task_closed")
        with pytest.raises(ProxyError) as bad:
            await client.list_tasks(cursor="not-a-cursor")
        assert (bad.value.status, bad.value.code) == (400, "invalid_cursor")


async def test_the_sync_client_lists_and_cancels(harness: Harness) -> None:
    url = str(harness.client.make_url("")).rstrip("/")

    def use_sync() -> tuple[list[str], str, str]:
        with SyncProxyClient(url, api_key=CLIENT_KEY) as client:
            accepted = client.submit_summarization("A text for the blocking client. " * 3)
            listed = [t.task_id for t in client.list_tasks(status="pending").tasks]
            cancelled = client.cancel(accepted.task_id)
            return listed, accepted.task_id, cancelled.error.code if cancelled.error else ""

    listed, task_id, code = await asyncio.to_thread(use_sync)
    assert listed == [task_id] and code == "cancelled"
