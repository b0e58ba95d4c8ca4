"""Per-key rate limits (token bucket, 429 + Retry-After) and the concurrency cap, through a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from subnet_proxy.server import CONTEXT
from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.limits import Limiter, Limits, TokenBucket
from subnet_proxy.tasks import TaskStatus
from tests.server.conftest import ADMIN_KEY, Harness, auth, error_of, start_harness, stop_harness


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    now = bucket.stamp
    assert [bucket.take(now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert abs(bucket.take(now) - 0.5) < 1e-9  # one token takes 1/rate seconds
    assert bucket.take(now + 0.5) == 0.0
    assert bucket.take(now + 10) == 0.0 and bucket.tokens <= 3  # never more than the burst


async def test_rate_limit_answers_429_with_retry_after(harness: Harness) -> None:
    resp = await harness.client.post("/api/v1/admin/keys", json={"name": "slow", "rate_per_s": 0.2, "burst": 2},
                                     headers=auth(ADMIN_KEY))
    key = (await resp.json())["key"]
    statuses = []
    for _ in range(3):
        resp = await harness.client.post("/api/v1/summarization", json={"text": "hi"}, headers=auth(key))
        statuses.append(resp.status)
    assert statuses == [202, 202, 429]
    assert await error_of(resp) == "rate_limited"
    assert int(resp.headers["Retry-After"]) == 5  # 1 token at 0.2/s
    # other keys are not affected
    resp = await harness.client.post("/api/v1/summarization", json={"text": "hi"}, headers=auth())
    assert resp.status == 202
    metrics = await (await harness.client.get("/metrics")).text()
    assert "subnet_proxy_rate_limited_total 1.0" in metrics


async def test_concurrency_cap(tmp_path: Path) -> None:
    h = await start_harness(tmp_path, max_in_flight=2, watch_poll_s=5.0)
    try:
        task = await h.distributed_task()
        url = f"/api/v1/task/{task.task_id}/result"
        waiting = [asyncio.create_task(h.client.get(url, params={"wait": "20"}, headers=auth())) for _ in range(2)]
        limiter = h.client.app[CONTEXT].limiter
        key_id = await h.client_key_id()
        while limiter.in_flight(key_id) < 2:  # both long-polls admitted and parked
            await asyncio.sleep(0.01)
        resp = await h.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth())
        assert resp.status == 429 and await error_of(resp) == "too_many_in_flight"
        assert resp.headers["Retry-After"] == "1"
        resp = await h.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth(ADMIN_KEY))
        assert resp.status == 200  # per key, not global
        await h.store.transition(task.task_id, TaskStatus.FAILED, error=("x", "stop waiting"))  # wakes both waiters
        assert [r.status for r in await asyncio.gather(*waiting)] == [409, 409]
        resp = await h.client.get(f"/api/v1/task/{task.task_id}/status", headers=auth())
        assert resp.status == 200  # slots are given back
    finally:
        await stop_harness(h)


async def test_limiter_releases_slot_on_error() -> None:
    limiter = Limiter()
    limits = Limits(rate_per_s=100, burst=100, max_in_flight=1)
    for _ in range(3):
        try:
            async with limiter.admit("k", limits):
                raise ApiError(400, "boom", "handler failed")
        except ApiError:
            pass
    async with limiter.admit("k", limits):
        pass
