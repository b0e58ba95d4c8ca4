"""Usage and quotas through a real side-server: counted at the door, reported per key, enforced with 429;
and ``DELETE /api/v1/task/{id}`` cancelling like ``POST .../cancel``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from subnet_proxy import cli
from subnet_proxy.client import ProxyClient, ProxyError
from subnet_proxy.server.quota import seconds_to_next_day
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, Harness, auth, error_of
from tests.server.test_submit import audio_form

TEXT = "Counted at the door. " * 5  # 105 characters


def base_url(h: Harness) -> str:
    return str(h.client.make_url("")).rstrip("/")


async def post(h: Harness, path: str, key: str, *, idem: str | None = None, **kw: object) -> tuple[int, dict]:
    headers = {**auth(key), **({"Idempotency-Key": idem} if idem else {})}
    resp = await h.client.post(path, headers=headers, **kw)  # type: ignore[arg-type]
    return resp.status, {**(await resp.json()), "_headers": dict(resp.headers)}


async def test_usage_counts_two_kinds_once_per_task_and_admins_see_every_key(harness: Harness,
                                                                          wav_bytes: bytes) -> None:
    for _ in range(2):  # the second is a replay: counted once
        status, _ = await post(harness, "/api/v1/summarization", CLIENT_KEY, idem="same", json={"text": TEXT})
        assert status == 202
    status, _ = await post(harness, "/api/v1/transcription", CLIENT_KEY, data=audio_form(wav_bytes))
    assert status == 202
    status, _ = await post(harness, "/api/v1/tts", OTHER_KEY, json={"text": "Hello there"})
    assert status == 202

    resp = await harness.client.get("/api/v1/usage", params={"days": "3"}, headers=auth())
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    today = datetime.now(UTC).date().isoformat()
    assert report["until"] == today and len(report["keys"]) == 1
    mine = report["keys"][0]
    assert mine["key_id"] == await harness.client_key_id() and mine["quota"] is None
    assert mine["kinds"] == {"summarization": {"tasks": 1, "audio_s": 0.0, "chars": len(TEXT)},
                             "transcription": {"tasks": 1, "audio_s": 1.0, "chars": 0}}
    assert mine["total"] == {"tasks": 2, "audio_s": 1.0, "chars": len(TEXT)}
    assert [(d["day"], d["total"]["tasks"]) for d in mine["days"]] == [(today, 2)]

    resp = await harness.client.get("/api/v1/usage", params={"key": await harness.client_key_id(OTHER_KEY)},
                                    headers=auth())
    assert resp.status == 403 and await error_of(resp) == "admin_only"
    every = await (await harness.client.get("/api/v1/usage", headers=auth(ADMIN_KEY))).json()
    totals = {k["key_id"]: k["total"]["tasks"] for k in every["keys"]}
    assert totals == {await harness.client_key_id(): 2, await harness.client_key_id(OTHER_KEY): 1}
    other = await harness.client_key_id(OTHER_KEY)
    one = await (await harness.client.get("/api/v1/usage", params={"key": other}, headers=auth(ADMIN_KEY))).json()
    assert [(k["key_id"], k["kinds"]) for k in one["keys"]] == [(other, {"tts": {"tasks": 1, "audio_s": 0.0,
                                                                                 "chars": 11}})]
    resp = await harness.client.get("/api/v1/usage", params={"days": "0"}, headers=auth())
    assert resp.status == 400 and await error_of(resp) == "invalid_request"

    # the client library and the CLI read the same report
    async with ProxyClient(base_url(harness), api_key=CLIENT_KEY) as client:
        assert (await client.usage(days=3)).model_dump(mode="json") == report


async def test_a_quota_refuses_with_429_until_the_next_utc_day_and_spares_other_keys(harness: Harness) -> None:
    async with ProxyClient(base_url(harness), api_key=ADMIN_KEY) as admin:
        created = await admin.create_key("trial", daily_tasks=3, daily_chars=10_000)
    assert (created.daily_tasks, created.daily_chars, created.daily_audio_s) == (3, 10_000, None)
    # six submissions at once against three tasks a day: exactly three get through
    outcomes = await asyncio.gather(*(post(harness, "/api/v1/summarization", created.key, idem=f"k{n}",
                                           json={"text": TEXT}) for n in range(6)))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [202, 202, 202, 429, 429, 429]
    refused = next(body for status, body in outcomes if status == 429)
    assert refused["error"]["code"] == "quota_exceeded" and "3 tasks" in refused["error"]["message"]
    retry_after = int(refused["_headers"]["Retry-After"])
    assert 0 < retry_after <= 86_400 and abs(retry_after - seconds_to_next_day(datetime.now(UTC))) <= 2
    # a replay of an accepted request still gets its task, and counts nothing more
    accepted = next(n for n, (status, _) in enumerate(outcomes) if status == 202)
    status, body = await post(harness, "/api/v1/summarization", created.key, idem=f"k{accepted}",
                              json={"text": TEXT})
    assert status == 202 and body["_headers"]["Idempotent-Replayed"] == "true"
    assert body["task_id"] == outcomes[accepted][1]["task_id"]
    status, _ = await post(harness, "/api/v1/summarization", CLIENT_KEY, json={"text": TEXT})
    assert status == 202  # another key is unaffected
    report = await (await harness.client.get("/api/v1/usage", headers=auth(created.key))).json()
    assert report["keys"][0]["total"]["tasks"] == 3
    assert report["keys"][0]["quota"] == {"daily_tasks": 3, "daily_audio_s": None, "daily_chars": 10_000}

    table = await asyncio.to_thread(run_cli_usage, base_url(harness), created.key)
    assert "daily quota: 3 tasks, 10000 chars" in table and "summarization" in table
    assert table.splitlines()[-1].split() == ["total", "3", "0.0", str(3 * len(TEXT))]


def run_cli_usage(url: str, key: str) -> str:
    """``subnet-proxy usage`` (table), then ``--json``, which must say the same; the table's text."""
    import contextlib
    import io

    outputs = []
    for extra in ([], ["--json"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(["--url", url, "--api-key", key, "usage", "--days", "2", *extra]) == 0
        outputs.append(out.getvalue())
    assert json.loads(outputs[1])["keys"][0]["total"]["tasks"] == 3
    return outputs[0].strip()


async def test_delete_cancels_like_post_cancel(harness: Harness) -> None:
    status, body = await post(harness, "/api/v1/summarization", CLIENT_KEY, json={"text": TEXT})
    task_id = body["task_id"]
    resp = await harness.client.delete(f"/api/v1/task/{task_id}", headers=auth(OTHER_KEY))
    assert resp.status == 404 and await error_of(resp) == "task_not_found"
    resp = await harness.client.delete(f"/api/v1/task/{task_id}", headers=auth())
    assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert view["status"] == "failed" and view["error"]["code"] == "cancelled"
    resp = await harness.client.delete(f"/api/v1/task/{task_id}", headers=auth())
    assert resp.status == 409 and await error_of(resp) == "task_closed"
    async with ProxyClient(base_url(harness), api_key=CLIENT_KEY) as client:
        with pytest.raises(ProxyError) as closed:
            await client.cancel(task_id)
    assert closed.value.code == "task_closed"
