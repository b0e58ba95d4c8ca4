"""``GET /api/v1/ws`` against a real side-server: the store plays the validator loop's part, clients are real
WebSockets (the ``ProxyClient`` and raw aiohttp ones)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from subnet_proxy.api.ws import CLOSE_SLOW_CONSUMER, TaskEvent
from subnet_proxy.cli import main as cli_main
from subnet_proxy.client import ProxyClient, ProxyError
from subnet_proxy.server.routes_ws import WS_HUB
from subnet_proxy.tasks import FinalResult, MinerResponse, Task, TaskInput, TaskKind, TaskStatus
from tests.server.conftest import (
    ADMIN_KEY,
    CLIENT_KEY,
    OTHER_KEY,
    Harness,
    auth,
    error_of,
    start_harness,
    stop_harness,
)


def base_url(h: Harness) -> str:
    return str(h.client.make_url("")).rstrip("/")


async def new_tasks(h: Harness, n: int, key: str = CLIENT_KEY) -> list[str]:
    owner = await h.client_key_id(key)
    tasks = [Task(kind=TaskKind.SUMMARIZATION, owner=owner, input=TaskInput(text=f"Text {i}. " * 5)) for i in range(n)]
    await asyncio.gather(*(h.store.create_task(t) for t in tasks))
    return [t.task_id for t in tasks]


async def run_loop(h: Harness, ids: list[str], *, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """The validator loop's writes: claim and assign, one miner answers, then DONE + result + APPROVED
    (or FAILED for ``fail``)."""
    claimed = await h.store.claim_tasks("loop", limit=len(ids), lease_s=60)
    assert sorted(t.task_id for t in claimed) == sorted(ids)
    for task_id in ids:
        if task_id in fail:
            await h.store.assign_miners(task_id, "loop", [(3, h.neurons.miner_1.ss58_address)])
            await h.store.transition(task_id, TaskStatus.FAILED, error=("no_valid_response", "nobody answered"))
        else:
            await finish(h, task_id)


async def finish(h: Harness, task_id: str) -> None:
    """A claimed task's remaining life: assigned to one miner, which answers; DONE, then APPROVED with a result."""
    miner = h.neurons.miner_1.ss58_address
    await h.store.assign_miners(task_id, "loop", [(3, miner)])
    await h.store.record_response(MinerResponse(task_id=task_id, hotkey=miner, uid=3, state="ok", text="short",
                                                latency_s=0.1))
    await h.store.transition(task_id, TaskStatus.DONE, claimer="loop")
    await h.store.transition(task_id, TaskStatus.APPROVED, result=FinalResult(
        task_id=task_id, kind=TaskKind.SUMMARIZATION, hotkey=miner, uid=3, score=0.9, text="short"))


async def test_a_client_follows_50_tasks_to_their_final_state(harness: Harness) -> None:
    ids = await new_tasks(harness, 50)
    failing = set(ids[:5])
    events: dict[str, list[TaskEvent]] = {t: [] for t in ids}
    all_pending = asyncio.Event()

    async def follow() -> None:
        async with ProxyClient(base_url(harness), api_key=CLIENT_KEY) as client:
            async for event in client.watch(ids):
                events[event.task_id].append(event)
                if sum(len(e) for e in events.values()) == len(ids):
                    all_pending.set()

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(all_pending.wait(), 10)  # the history so far (each task pending) came first
    await run_loop(harness, ids, fail=failing)
    await asyncio.wait_for(follower, 15)  # watch() ends once every task's end arrived

    for task_id, got in events.items():
        names = [e.event for e in got]
        statuses = [e.data["status"] for e in got if e.event == "status"]
        assert names[-1] == "end" and names.count("end") == 1, (task_id, names)
        if task_id in failing:
            assert statuses == ["pending", "distributed", "failed"] and "result" not in names
            continue
        assert statuses == ["pending", "distributed", "done", "approved"], (task_id, names)
        [answer] = [e.data for e in got if e.event == "response"]
        assert answer == {"uid": 3, "state": "ok", "latency_s": 0.1, "first": True}
        [result] = [e.data for e in got if e.event == "result"]
        assert result["text"] == "short" and result["score"] == 0.9
        assert got[-1].data == {"status": "approved", "closing": False}
    assert not harness.client.server.app[WS_HUB].followers  # ended tasks are no longer followed


async def test_reconnecting_with_since_catches_up_on_missed_events(harness: Harness) -> None:
    [task_id] = await new_tasks(harness, 1)
    await harness.store.claim_tasks("loop", limit=1, lease_s=60)
    async with ProxyClient(base_url(harness), api_key=CLIENT_KEY) as client:
        first_visit = []
        async for event in client.watch([task_id]):
            first_visit.append(event)
            if len(first_visit) == 2:
                break  # the client goes away after pending and distributed
        assert [e.data["status"] for e in first_visit] == ["pending", "distributed"]
        await finish(harness, task_id)
        since = first_visit[-1].at
        again = [e async for e in client.watch([task_id], since=since)]
    assert again[0] == first_visit[-1]  # at least once: the event at `since` itself is sent again
    # in the order they happened (the result is decided just before the move to approved stores it)
    assert [(e.event, e.data.get("status")) for e in again[1:]] == [
        ("response", None), ("status", "done"), ("result", None), ("status", "approved"), ("end", "approved")]
    assert all(e.at >= since for e in again)


async def test_refusals_and_malformed_messages_answer_errors(tmp_path: Path) -> None:
    h = await start_harness(tmp_path, ws_per_key=1, ws_subscriptions=2)
    try:
        mine = await new_tasks(h, 3)
        url = h.client.make_url("/api/v1/ws")
        session = h.client.session
        assert (resp := await h.client.get("/api/v1/ws")).status == 401 and await error_of(resp) == "missing_api_key"
        resp = await h.client.get("/api/v1/ws", headers=auth())
        assert resp.status == 400 and await error_of(resp) == "websocket_expected"
        document = await (await h.client.get("/api/v1/openapi.json")).json()
        messages = document["paths"]["/api/v1/ws"]["get"]["x-websocket-messages"]
        assert messages == {"client": {"$ref": "#/components/schemas/ClientMessage"},
                            "server": {"$ref": "#/components/schemas/ServerMessage"}}
        assert {"Subscribe", "Unsubscribe", "TaskEvent", "WsError"} <= set(document["components"]["schemas"])
        # another client's task is refused like an unknown id; an admin may follow it
        async with session.ws_connect(url, protocols=("subnet-proxy.v1", f"bearer.{OTHER_KEY}")) as ws:
            assert ws.protocol == "subnet-proxy.v1"  # selected; the key is never echoed
            await ws.send_json({"type": "subscribe", "task_ids": [mine[0], "f" * 32]})
            assert await ws.receive_json() == {"type": "subscribed", "task_ids": [], "all": False,
                                               "refused": [mine[0], "f" * 32]}
        async with ProxyClient(base_url(h), api_key=OTHER_KEY) as other:
            with pytest.raises(ProxyError) as refused:
                await anext(other.watch([mine[0]]))
            assert (refused.value.status, refused.value.code) == (404, "task_not_found")
        async with session.ws_connect(url, params={"api_key": ADMIN_KEY}) as ws:
            await ws.send_json({"type": "subscribe", "task_ids": [mine[0]]})
            assert (await ws.receive_json())["task_ids"] == [mine[0]]
            assert (await ws.receive_json())["data"]["status"] == "pending"
        async with session.ws_connect(url, headers=auth()) as ws:
            # one connection per key here: a second is refused before the upgrade
            with pytest.raises(aiohttp.WSServerHandshakeError) as capped:
                await session.ws_connect(url, headers=auth())
            assert capped.value.status == 429
            for bad, code in (("not json", "invalid_message"), ('{"type": "dance"}', "invalid_message"),
                              ('{"type": "subscribe", "all": true, "task_ids": ["a"]}', "invalid_message"),
                              ('{"type": "subscribe", "task_ids": ["../x"]}', "invalid_message"),
                              (json.dumps({"type": "subscribe", "task_ids": mine}), "too_many_subscriptions")):
                await ws.send_str(bad)
                reply = await ws.receive_json()
                assert reply["type"] == "error" and reply["error"]["code"] == code, (bad, reply)
            await ws.send_bytes(b"\x00")
            assert (await ws.receive_json())["error"]["code"] == "invalid_message"
            await ws.send_json({"type": "subscribe", "task_ids": mine[:2]})  # the connection still serves
            assert (await ws.receive_json())["task_ids"] == mine[:2]
            await ws.send_json({"type": "unsubscribe", "task_ids": mine[:2]})
            got = [await ws.receive_json() for _ in range(3)]
            assert got[-1] == {"type": "unsubscribed", "task_ids": mine[:2], "all": False}
            assert not h.client.server.app[WS_HUB].followers
    finally:
        await stop_harness(h)


async def test_a_slow_consumer_is_closed_with_4008_and_its_queue_stays_bounded(tmp_path: Path) -> None:
    h = await start_harness(tmp_path, ws_queue=8)
    try:
        hub = h.client.server.app[WS_HUB]
        owner = await h.client_key_id()
        async with h.client.session.ws_connect(h.client.make_url("/api/v1/ws"), headers=auth()) as ws:
            await ws.send_json({"type": "subscribe", "all": True})
            assert (await ws.receive_json())["all"] is True
            [conn] = hub.connections
            reason = "x" * 60_000  # each failure's status event is about 60 KB: socket buffers fill quickly
            for _ in range(2000):  # the client reads nothing meanwhile (breaks as soon as the hub gives up)
                task, _ = await h.store.create_task(Task(kind=TaskKind.SUMMARIZATION, owner=owner,
                                                         input=TaskInput(text="Some text. " * 5)))
                await h.store.transition(task.task_id, TaskStatus.FAILED, reason=reason)
                await asyncio.sleep(0)  # one loop turn for the hub's worker
                if conn.closing:
                    break
            assert conn.closing and conn.high_water <= 8
            async for _ in ws:  # what was already written, then the close frame
                pass
            assert ws.close_code == CLOSE_SLOW_CONSUMER
        assert not hub.connections and not hub.everything
    finally:
        await stop_harness(h)


async def test_cli_watch_prints_a_line_per_event_when_not_a_tty(harness: Harness, capsys) -> None:
    ids = await new_tasks(harness, 2)
    await harness.store.transition(ids[0], TaskStatus.FAILED, error=("cancelled", "cancelled by the client"))
    await harness.store.transition(ids[1], TaskStatus.EXPIRED, error=("expired", "deadline passed"))
    code = await asyncio.to_thread(cli_main, ["--url", base_url(harness), "--api-key", CLIENT_KEY, "watch", *ids])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [f"{ids[0]} status pending", f"{ids[0]} status failed", f"{ids[0]} end ended failed",
                   f"{ids[1]} status pending", f"{ids[1]} status expired", f"{ids[1]} end ended expired"]
