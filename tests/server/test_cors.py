"""CORS through a real side-server: preflights and responses for an allowed origin, nothing for others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from subnet_proxy.config import ProxySettings, build_settings
from subnet_proxy.server.cors import EXPOSED_HEADERS, PREFLIGHT_MAX_AGE_S
from tests.server.conftest import ADMIN_KEY, Harness, auth, error_of, start_harness, stop_harness

ALLOWED = "https://app.example.com"
REFUSED = "https://evil.example.com"


@pytest.fixture
async def cors(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start_harness(tmp_path, cors_origins=[ALLOWED, "http://localhost:5173"])
    try:
        yield h
    finally:
        await stop_harness(h)


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, x-api-key, content-type, idempotency-key"}


def cors_headers(headers: object) -> set[str]:
    return {k.lower() for k in headers if k.lower().startswith("access-control-")}  # type: ignore[attr-defined]


async def test_preflight_of_an_allowed_origin_is_answered_204(cors: Harness) -> None:
    resp = await cors.client.options("/api/v1/summarization", headers=preflight_headers(ALLOWED))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in resp.headers["Access-Control-Allow-Methods"].split(", ")
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-api-key", "content-type", "idempotency-key"} <= allowed
    assert resp.headers["Access-Control-Max-Age"] == str(PREFLIGHT_MAX_AGE_S)
    assert "Origin" in resp.headers.getall("Vary")
    # a GET route's preflight names the route's own methods
    resp = await cors.client.options("/api/v1/task/abc/status", headers=preflight_headers(ALLOWED, "GET"))
    assert resp.status == 204 and "GET" in resp.headers["Access-Control-Allow-Methods"]
    assert "POST" not in resp.headers["Access-Control-Allow-Methods"]
    for path, method in (("/api/v1/tasks", "GET"), ("/api/v1/task/abc/cancel", "POST")):
        resp = await cors.client.options(path, headers=preflight_headers(ALLOWED, method))
        assert resp.status == 204 and method in resp.headers["Access-Control-Allow-Methods"], path


async def test_preflight_of_a_refused_origin_gets_no_cors_headers(cors: Harness) -> None:
    resp = await cors.client.options("/api/v1/summarization", headers=preflight_headers(REFUSED))
    assert resp.status == 405 and await error_of(resp) == "method_not_allowed"
    assert cors_headers(resp.headers) == set()


async def test_preflight_of_a_method_or_path_the_api_does_not_serve_is_refused(cors: Harness) -> None:
    resp = await cors.client.options("/api/v1/summarization", headers=preflight_headers(ALLOWED, "DELETE"))
    assert resp.status == 405
    assert "Access-Control-Allow-Methods" not in resp.headers
    resp = await cors.client.options("/api/v1/nowhere", headers=preflight_headers(ALLOWED))
    assert resp.status == 404 and await error_of(resp) == "not_found"
    assert "Access-Control-Allow-Methods" not in resp.headers


async def test_responses_to_an_allowed_origin_carry_the_origin_and_exposed_headers(cors: Harness) -> None:
    resp = await cors.client.post("/api/v1/summarization", json={"text": "Some text. " * 20},
                                  headers={**auth(), "Origin": ALLOWED, "Idempotency-Key": "k1"})
    assert resp.status == 202
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in resp.headers.getall("Vary")
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == set(EXPOSED_HEADERS) and "X-Request-ID" in resp.headers
    assert {"Retry-After", "Idempotent-Replayed", "X-Request-ID", "X-Result-Stage", "Location"} <= exposed
    # the other allowed origin is echoed as itself, never as the first one
    resp = await cors.client.get("/api/v1/health", headers={"Origin": "http://localhost:5173"})
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


async def test_errors_carry_the_cors_headers_so_a_browser_can_read_them(cors: Harness) -> None:
    resp = await cors.client.post("/api/v1/summarization", json={"text": "hi"}, headers={"Origin": ALLOWED})
    assert resp.status == 401 and await error_of(resp) == "missing_api_key"
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    resp = await cors.client.post("/api/v1/admin/keys", json={"name": "slow", "rate_per_s": 0.2, "burst": 2},
                                  headers=auth(ADMIN_KEY))
    key = (await resp.json())["key"]
    for _ in range(3):
        resp = await cors.client.post("/api/v1/summarization", json={"text": "hi"},
                                      headers={**auth(key), "Origin": ALLOWED})
    assert resp.status == 429 and "Retry-After" in resp.headers
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Retry-After" in resp.headers["Access-Control-Expose-Headers"]


async def test_a_refused_origin_gets_no_cors_headers(cors: Harness) -> None:
    resp = await cors.client.get("/api/v1/health", headers={"Origin": REFUSED})
    assert cors_headers(resp.headers) == set()
    assert "Origin" in resp.headers.getall("Vary")  # still: a cache must not serve it to an allowed origin


async def test_without_an_allow_list_there_are_no_cors_headers(harness: Harness) -> None:
    resp = await harness.client.options("/api/v1/summarization", headers=preflight_headers(ALLOWED))
    assert resp.status == 405 and cors_headers(resp.headers) == set()
    resp = await harness.client.get("/api/v1/health", headers={"Origin": ALLOWED})
    assert cors_headers(resp.headers) == set() and "Vary" not in resp.headers


def test_origins_are_flags_and_must_be_bare_origins() -> None:
    settings = build_settings(["--proxy.cors_origins", ALLOWED, "--proxy.cors_origins", "http://localhost:5173"], "t")
    assert settings.proxy.cors_origins == [ALLOWED, "http://localhost:5173"]
    assert ProxySettings().cors_origins == []
    for wrong in ("app.example.com", "https://app.example.com/", "https://app.example.com/path", "*"):
        with pytest.raises(ValidationError, match="cors_origins"):
            ProxySettings(cors_origins=[wrong])
