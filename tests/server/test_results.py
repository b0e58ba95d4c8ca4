"""Status, results, long-poll and SSE through a real server, with progress made by the store as the loop would."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from protocol import b64encode, encode_audio
from subnet_proxy.tasks import FinalResult, MinerResponse, TaskKind, TaskStatus
from tests.conftest import tone
from tests.server.conftest import ADMIN_KEY, OTHER_KEY, Harness, auth, error_of, start_harness, stop_harness


async def test_status_shows_timeline_first_answer_progress_and_result(harness: Harness) -> None:
    task = await harness.distributed_task()
    resp = await harness.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth())
    view = await resp.json()
    assert resp.status == 200
    assert [s["status"] for s in view["timeline"]] == ["pending", "distributed"]
    assert view["first_response"] is None and view["result"] is None
    assert view["miners"] == [{"uid": 3, "state": "waiting", "latency_s": None},
                              {"uid": 4, "state": "waiting", "latency_s": None}]

    answer = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_2,
                                  {"task_id": task.task_id, "text": "a quick summary"})
    assert answer.status == 200
    view = await (await harness.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth())).json()
    assert view["first_response"]["uid"] == 4 and view["first_response"]["text"] == "a quick summary"
    states = {m["uid"]: m["state"] for m in view["miners"]}
    assert states == {3: "waiting", 4: "ok"}
    assert view["miners"][1]["latency_s"] >= 0

    await harness.store.transition(task.task_id, TaskStatus.DONE, claimer="loop")
    await harness.store.set_final_result(FinalResult(task_id=task.task_id, kind=task.kind, hotkey="hk", uid=4,
                                                     score=0.8, text="a quick summary"))
    await harness.store.transition(task.task_id, TaskStatus.APPROVED)
    view = await (await harness.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth())).json()
    assert view["status"] == "approved" and view["result"]["score"] == 0.8
    assert [s["status"] for s in view["timeline"]] == ["pending", "distributed", "done", "approved"]


async def test_another_clients_task_is_not_found(harness: Harness) -> None:
    task = await harness.distributed_task()
    for path in ("status", "result", "events"):
        resp = await harness.client.get(f"/api/v1/task/{task.task_id}/{path}", headers=auth(OTHER_KEY))
        assert resp.status == 404 and await error_of(resp) == "task_not_found", path
        resp = await harness.client.get(f"/api/v1/task/no-such-task/{path}", headers=auth())
        assert resp.status == 404 and await error_of(resp) == "task_not_found", path
    # an admin key may look at any task
    resp = await harness.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth(ADMIN_KEY))
    assert resp.status == 200


async def test_result_long_poll_wakes_on_the_answer(tmp_path: Path) -> None:
    # the store re-read interval is far longer than the test: only the change notification can wake it
    harness = await start_harness(tmp_path, watch_poll_s=60.0)
    try:
        await _long_poll_wakes(harness)
    finally:
        await stop_harness(harness)


async def _long_poll_wakes(harness: Harness) -> None:
    task = await harness.distributed_task()
    url = f"/api/v1/task/{task.task_id}/result"
    resp = await harness.client.get(url, headers=auth())
    assert resp.status == 202 and (await resp.json())["status"] == "distributed"
    assert resp.headers["Retry-After"] == "1"

    async def answer_later() -> None:
        while harness.store.events.waiting() == 0:  # the request is parked on the task
            await asyncio.sleep(0.01)
        await harness.store.record_response(MinerResponse(task_id=task.task_id, hotkey=task.assigned[0][1],
                                                          uid=task.assigned[0][0], state="ok", text="woken"))

    started = time.monotonic()
    later = asyncio.create_task(answer_later())
    resp = await harness.client.get(url, params={"wait": "20"}, headers=auth())
    elapsed = time.monotonic() - started
    await later
    assert resp.status == 200 and resp.headers["X-Result-Stage"] == "first"
    body = await resp.json()
    assert body == {"task_id": task.task_id, "kind": "summarization", "stage": "first", "uid": 3, "text": "woken",
                    "segments": None, "score": None}
    assert elapsed < 10, elapsed  # woken by the write, not by the 20 s wait nor the 60 s re-read

    # ?stage=final waits for the evaluated result only; a short wait runs out with 202
    resp = await harness.client.get(url, params={"wait": "0.2", "stage": "final"}, headers=auth())
    assert resp.status == 202
    resp = await harness.client.get(url, params={"wait": "-1"}, headers=auth())
    assert resp.status == 400 and await error_of(resp) == "invalid_request"


async def test_tts_result_is_audio_bytes(harness: Harness) -> None:
    task = await harness.distributed_task(kind=TaskKind.TTS, text="Say this.")
    audio = encode_audio(tone(0.5, rate=22_050), 22_050, "wav")
    resp = await harness.client.get(f"/api/v1/task/{task.task_id}/result", headers=auth())
    assert resp.status == 202
    answer = await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_1,
                                  {"task_id": task.task_id, "audio_b64": b64encode(audio), "audio_format": "wav"})
    assert answer.status == 200, await answer.text()
    resp = await harness.client.get(f"/api/v1/task/{task.task_id}/result", headers=auth())
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/wav"
    assert await resp.read() == audio
    view = await (await harness.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth())).json()
    assert view["first_response"]["audio_url"] == f"/api/v1/task/{task.task_id}/result?stage=any"


async def test_failed_and_expired_tasks_answer_errors(harness: Harness) -> None:
    failed = await harness.distributed_task()
    await harness.store.transition(failed.task_id, TaskStatus.FAILED, error=("no_valid_response", "nobody answered"))
    resp = await harness.client.get(f"/api/v1/task/{failed.task_id}/result", params={"wait": "5"}, headers=auth())
    assert resp.status == 409 and await error_of(resp) == "task_failed"
    assert "nobody answered" in (await resp.json())["error"]["message"]
    expired = await harness.distributed_task()
    await harness.store.transition(expired.task_id, TaskStatus.EXPIRED, error=("expired", "deadline passed"))
    resp = await harness.client.get(f"/api/v1/task/{expired.task_id}/result", headers=auth())
    assert resp.status == 410 and await error_of(resp) == "task_expired"
    view = await (await harness.client.get(f"/api/v1/task/{expired.task_id}/status", headers=auth())).json()
    assert view["error"] == {"code": "expired", "message": "deadline passed"}


async def read_events(harness: Harness, task_id: str) -> list[tuple[str, dict]]:
    resp = await harness.client.get(f"/api/v1/task/{task_id}/events", headers=auth())
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    events: list[tuple[str, dict]] = []
    event = ""
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            events.append((event, json.loads(line[5:])))
            if event == "end":
                break
    return events


async def test_sse_streams_the_lifecycle(harness: Harness) -> None:
    task = await harness.distributed_task()

    async def progress() -> None:
        await asyncio.sleep(0.2)
        await harness.store.record_response(MinerResponse(task_id=task.task_id, hotkey=task.assigned[0][1],
                                                          uid=3, state="ok", text="s", latency_s=0.2))
        await asyncio.sleep(0.1)
        await harness.store.transition(task.task_id, TaskStatus.DONE, claimer="loop")
        await harness.store.set_final_result(FinalResult(task_id=task.task_id, kind=task.kind, hotkey="h", uid=3,
                                                         score=0.9, text="s"))
        await harness.store.transition(task.task_id, TaskStatus.APPROVED)

    mover = asyncio.create_task(progress())
    events = await asyncio.wait_for(read_events(harness, task.task_id), timeout=10)
    await mover
    names = [name for name, _ in events]
    assert names[:2] == ["status", "status"]  # pending, distributed replayed at connect
    assert names[-1] == "end" and events[-1][1] == {"status": "approved", "closing": False}
    assert ("response", {"uid": 3, "state": "ok", "latency_s": 0.2, "first": True}) in events
    result = [data for name, data in events if name == "result"]
    assert len(result) == 1 and result[0]["score"] == 0.9
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses == ["pending", "distributed", "done", "approved"]


async def test_tts_result_redirects_to_a_signed_url_when_the_blob_store_signs(harness: Harness, monkeypatch) -> None:
    task = await harness.distributed_task(kind=TaskKind.TTS, text="Say this.")
    audio = encode_audio(tone(0.2), 16_000, "wav")
    await harness.signed("POST", "/api/v1/miner/response", harness.neurons.miner_1,
                         {"task_id": task.task_id, "audio_b64": b64encode(audio)})
    signed: list[tuple[str, int]] = []

    async def signed_url(key: str, *, expires_s: int) -> str:  # what a GCS store answers (backend tested apart)
        signed.append((key, expires_s))
        return f"http://127.0.0.1:9/signed/{key}"

    monkeypatch.setattr(harness.blobs, "signed_url", signed_url)
    resp = await harness.client.get(f"/api/v1/task/{task.task_id}/result", headers=auth(), allow_redirects=False)
    assert resp.status == 307 and resp.headers["X-Result-Stage"] == "first"
    [(key, ttl)] = signed
    assert resp.headers["Location"] == f"http://127.0.0.1:9/signed/{key}"
    assert ttl == harness.settings.blobs.signed_url_ttl_s and await harness.blobs.get(key) == audio
