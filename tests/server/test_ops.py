"""Operations through a real server: health, metrics, miners, OpenAPI + docs, request ids, access log, shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import time
from pathlib import Path

import aiohttp
import pytest
from openapi_spec_validator import validate

from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.server import create_app, start_server
from subnet_proxy.server.app import endpoints
from subnet_proxy.store import SQLiteTaskStore
from tests.server.conftest import CLIENT_KEY, Harness, auth, error_of, make_settings, start_harness, stop_harness


async def test_health_reports_readiness_counts_and_miners(harness: Harness) -> None:
    await harness.client.post("/api/v1/summarization", json={"text": "hi"}, headers=auth())
    resp = await harness.client.get("/api/v1/health")
    assert resp.status == 200
    health = await resp.json()
    assert health["status"] == "ok" and health["live"] and health["ready"]
    assert {name: c["ok"] for name, c in health["checks"].items()} == {"store": True, "blobs": True, "chain": True}
    assert health["checks"]["chain"]["detail"] == {"netuid": 1, "block": 100, "neurons": 5}
    assert health["tasks"]["pending"] == 1 and health["tasks"]["approved"] == 0
    assert health["miners_available"] == 4  # every serving neuron but this server
    assert health["quorum_members"] is None  # no peers given: every permitted validator counts
    assert health["version"] and health["uptime_s"] >= 0
    assert CLIENT_KEY not in await resp.text()


async def test_health_not_ready_when_a_check_fails(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = SQLiteTaskStore(settings.data_dir / "tasks.db")
    blobs = LocalBlobStore(settings.data_dir / "blobs")
    keys = SqliteKeyStore(settings.data_dir / "keys.db")

    async def broken() -> None:
        raise ConnectionRefusedError("wandb at 10.1.2.3 refused")

    app = create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=lambda: None, own_hotkey="",
                     health_checks={"telemetry": broken}, quorum_members=lambda: frozenset({"me", "peer"}))
    gc.unfreeze()
    async with aiohttp.ClientSession() as session:
        server = await start_server(app, settings, host="127.0.0.1", port=0)
        # the start-up heap is out of the collector's full passes (they were the ingest p99 tail)
        assert gc.get_freeze_count() > 0
        try:
            async with session.get(server.url + "/api/v1/health") as resp:
                health = await resp.json()
                assert resp.status == 503
        finally:
            await server.stop()
    for closeable in (store, blobs, keys):
        await closeable.close()
    assert health["ready"] is False and health["status"] == "degraded"
    assert health["checks"]["telemetry"] == {"ok": False, "error": "ConnectionRefusedError", "detail": None}
    assert health["checks"]["chain"]["ok"] is False and health["miners_available"] == 0
    assert health["quorum_members"] == 2  # this validator and the peer it found
    assert "10.1.2.3" not in json.dumps(health)  # nothing secret: class names only


async def test_metrics_exposition(harness: Harness) -> None:
    for _ in range(2):  # the second is counted on the cached label children of the first
        await harness.client.post("/api/v1/summarization", json={"text": "hi"}, headers=auth())
    await harness.client.get("/api/v1/task/abc/status", headers=auth())
    text = await (await harness.client.get("/metrics")).text()
    assert 'subnet_proxy_http_requests_total{method="POST",route="/api/v1/summarization",status="202"} 2.0' in text
    assert 'route="/api/v1/task/{task_id}/status",status="404"' in text  # templates, not ids
    assert 'subnet_proxy_tasks_submitted_total{kind="summarization"} 2.0' in text
    assert 'subnet_proxy_tasks{status="pending"} 2.0' in text
    assert 'subnet_proxy_miner_score{uid="3"} 0.75' in text  # no hotkey label: series bounded by uid slots
    assert "hotkey=" not in text
    assert "subnet_proxy_http_request_seconds_bucket" in text


async def test_miners_table(harness: Harness) -> None:
    body = await (await harness.client.get("/api/v1/miners")).json()
    assert [m["uid"] for m in body["miners"]] == [3, 4]
    expected = {"uid": 3, "hotkey": harness.neurons.miner_1.ss58_address, "ema_score": 0.75, "latency_s": 0.2,
                "success_rate": 1.0, "last_weight": 0.6}
    assert {k: body["miners"][0][k] for k in expected} == expected


async def test_openapi_document_validates_and_covers_every_route(harness: Harness) -> None:
    doc = await (await harness.client.get("/api/v1/openapi.json")).json()
    validate(doc)
    for ep in endpoints():
        assert ep.method.lower() in doc["paths"][ep.path], ep.path
    schemas = doc["components"]["schemas"]
    assert schemas["SummarizationRequest"]["additionalProperties"] is False
    assert schemas["TTSRequest"]["properties"]["text"]["maxLength"] == 2_000
    transcription = doc["paths"]["/api/v1/transcription"]["post"]
    assert set(transcription["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert set(transcription["responses"]) >= {"202", "400", "413", "415", "429"}


async def test_docs_page_is_local(harness: Harness) -> None:
    resp = await harness.client.get("/docs")
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "/api/v1/openapi.json" in page
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page), "the docs page must load nothing from outside"


async def test_request_ids_and_json_errors_for_unknown_routes(harness: Harness) -> None:
    resp = await harness.client.get("/api/v1/nothing-here", headers={"X-Request-ID": "trace-123"})
    assert resp.status == 404 and await error_of(resp) == "not_found"
    assert resp.headers["X-Request-ID"] == "trace-123"
    resp = await harness.client.delete("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.status == 405 and await error_of(resp) == "method_not_allowed"
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])


async def test_access_log_names_the_key_id_never_the_key(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="subnet_proxy.access"):
        await harness.client.post("/api/v1/summarization", json={"text": "hi"}, headers=auth())
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "subnet_proxy.access"]
    assert lines and lines[-1]["caller"] == await harness.client_key_id()
    assert lines[-1]["status"] == 202 and lines[-1]["route"] == "/api/v1/summarization"
    assert CLIENT_KEY not in caplog.text


async def test_graceful_shutdown_finishes_in_flight_requests(tmp_path: Path) -> None:
    h = await start_harness(tmp_path)
    try:
        task = await h.distributed_task()
        app = create_app(h.settings, store=h.store, blobs=h.blobs, keys=h.keys, metagraph=lambda: None,
                         own_hotkey="")
        server = await start_server(app, h.settings, host="127.0.0.1", port=0)
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/api/v1/task/{task.task_id}/result"
            waiting = asyncio.create_task(session.get(url, params={"wait": "30"}, headers=auth()))
            while h.store.events.waiting() == 0:  # the long-poll is in flight, parked on the task
                await asyncio.sleep(0.01)
            started = time.monotonic()
            await server.stop()
            resp = await waiting
            assert resp.status == 202  # the long-poll ended early with an answer, not a dropped connection
            assert (await resp.json())["status"] == "distributed"
            assert time.monotonic() - started < 5
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(server.url + "/api/v1/health")
    finally:
        await stop_harness(h)
