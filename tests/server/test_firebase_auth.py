"""Firebase ID tokens as credentials, against the Firebase Auth emulator (``scripts/emulators.sh``).

Users sign up through the emulator's REST API (as the Firebase client SDK does) and present their
ID tokens to a real side-server; an admin is made with firebase-admin's custom claims. The emulator
issues unsigned tokens, which firebase-admin accepts only while FIREBASE_AUTH_EMULATOR_HOST is set,
so tokens for a past expiry or another project are made here by hand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from subnet_proxy.api.ws import KEY_PROTOCOL_PREFIX, WS_PROTOCOL
from subnet_proxy.client import ProxyClient, verify_webhook
from subnet_proxy.config import AuthSettings
from subnet_proxy.keys.firebase import FIREBASE_OWNER_PREFIX
from subnet_proxy.tasks import TaskStatus
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, Harness, auth, error_of, start_harness, stop_harness
from tests.store.emulators import emulator_host
from tests.webhook_receiver import until_webhooks, webhook_receiver

pytestmark = pytest.mark.firebase_auth


def emulator() -> tuple[str, str]:
    """(host:port, project) of the running Auth emulator."""
    return emulator_host("FIREBASE_AUTH_EMULATOR_HOST"), emulator_host("FIREBASE_AUTH_EMULATOR_PROJECT")


async def sign_in(host: str, email: str, *, new: bool) -> dict[str, Any]:
    """The emulator's answer to a sign-up or password sign-in: ``localId`` (the uid) and ``idToken``."""
    verb = "signUp" if new else "signInWithPassword"
    url = f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:{verb}?key=any-api-key"
    async with aiohttp.ClientSession() as session, session.post(
            url, json={"email": email, "password": "correct horse", "returnSecureToken": True}) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body


def set_role(host: str, project: str, uid: str, role: str) -> None:
    import firebase_admin
    from firebase_admin import auth as firebase_auth

    app = firebase_admin.initialize_app(options={"projectId": project}, name=f"test-{uuid.uuid4().hex}")
    try:
        firebase_auth.set_custom_user_claims(uid, {"role": role}, app=app)
    finally:
        firebase_admin.delete_app(app)


def unsigned_token(claims: dict[str, Any]) -> str:
    """A token as the emulator makes them (``alg: none``), with the claims given."""
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def firebase_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    _, project = emulator()
    h = await start_harness(tmp_path, auth_settings=AuthSettings(firebase_project=project))
    try:
        yield h
    finally:
        await stop_harness(h)


async def test_firebase_users_own_their_tasks_and_an_admin_claim_sees_all(firebase_harness: Harness) -> None:
    h = firebase_harness
    host, project = emulator()
    run = uuid.uuid4().hex[:8]
    alice, bob, admin = await asyncio.gather(*(sign_in(host, f"{name}-{run}@example.com", new=True)
                                               for name in ("alice", "bob", "admin")))
    await asyncio.to_thread(set_role, host, project, admin["localId"], "admin")
    admin = await sign_in(host, f"admin-{run}@example.com", new=False)  # a fresh token carries the claim

    resp = await h.client.post("/api/v1/summarization", json={"text": "Alice's text to summarize. " * 3},
                               headers=bearer(alice["idToken"]))
    assert resp.status == 202, await resp.text()
    task_id = (await resp.json())["task_id"]
    assert (await h.store.get_task(task_id)).owner == FIREBASE_OWNER_PREFIX + alice["localId"]
    resp = await h.client.get("/api/v1/tasks", headers=bearer(alice["idToken"]))
    assert [t["task_id"] for t in (await resp.json())["tasks"]] == [task_id]

    # another user (and an API key) neither sees nor cancels it; their listings are their own
    for headers in (bearer(bob["idToken"]), auth(CLIENT_KEY)):
        resp = await h.client.get(f"/api/v1/task/{task_id}/status", headers=headers)
        assert resp.status == 404 and await error_of(resp) == "task_not_found"
        resp = await h.client.post(f"/api/v1/task/{task_id}/cancel", headers=headers)
        assert resp.status == 404
        resp = await h.client.get("/api/v1/tasks", headers=headers)
        assert (await resp.json())["tasks"] == []
    resp = await h.client.get(f"/api/v1/task/{task_id}/status", headers=bearer(admin["idToken"]))
    assert resp.status == 200 and (await resp.json())["status"] == "pending"
    resp = await h.client.get("/api/v1/admin/keys", headers=bearer(bob["idToken"]))
    assert resp.status == 403 and await error_of(resp) == "admin_only"

    # the Python client sends an ID token as it sends a key
    async with ProxyClient(str(h.client.make_url("")), api_key=alice["idToken"]) as client:
        cancelled = await client.cancel(task_id)
    assert cancelled.status is TaskStatus.FAILED


async def test_expired_foreign_and_garbage_tokens_are_401_with_the_reason(firebase_harness: Harness) -> None:
    h = firebase_harness
    _, project = emulator()
    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": "someone",
              "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}
    cases = [
        (unsigned_token(claims), "expired", "expired"),
        (unsigned_token({**claims, "aud": "demo-another-project", "exp": now + 3600}), "invalid", "audience"),
        (unsigned_token({**claims, "exp": now + 3600, "role": "root"}), "invalid", "role"),
        ("eyJub3QiOiJhIHRva2VuIn0.garbage.x", "invalid", "not a valid Firebase ID token"),
    ]
    for token, reason, says in cases:
        resp = await h.client.get("/api/v1/tasks", headers=bearer(token))
        assert resp.status == 401, (reason, await resp.text())
        assert await error_of(resp) == "unauthorized"
        assert says in (await resp.json())["error"]["message"]
        assert resp.headers["WWW-Authenticate"] == f'Bearer error="invalid_token", error_description="{reason}"'
    # API keys work beside Firebase tokens
    assert (await h.client.get("/api/v1/tasks", headers=auth(CLIENT_KEY))).status == 200


async def test_a_firebase_user_through_the_websocket_webhooks_and_usage(tmp_path: Path) -> None:
    """A Firebase user (owner fb:<uid>, no key record) follows its task over a WebSocket with its ID token
    as the subprotocol, gets its webhook signed with the validator's secret, sees its usage (no quota), and
    an admin key sees that user's usage by its owner id."""
    host, project = emulator()
    h = await start_harness(tmp_path, local=True, auth_settings=AuthSettings(firebase_project=project))
    try:
        user = await sign_in(host, f"carol-{uuid.uuid4().hex[:8]}@example.com", new=True)
        owner = FIREBASE_OWNER_PREFIX + user["localId"]
        async with webhook_receiver() as receiver, h.client.ws_connect(
                "/api/v1/ws", protocols=(WS_PROTOCOL, KEY_PROTOCOL_PREFIX + user["idToken"])) as ws:
            await ws.send_json({"type": "subscribe", "all": True})
            resp = await h.client.post("/api/v1/summarization", headers=bearer(user["idToken"]),
                                       json={"text": "Carol's text to summarize. " * 3, "callback_url": receiver.url})
            assert resp.status == 202, await resp.text()
            task_id = (await resp.json())["task_id"]
            resp = await h.client.delete(f"/api/v1/task/{task_id}", headers=bearer(user["idToken"]))
            assert resp.status == 200, await resp.text()
            events = []
            while not events or events[-1] != "end":
                msg = json.loads((await ws.receive(timeout=5)).data)
                if msg["type"] == "event" and msg["task_id"] == task_id:
                    events.append(msg["event"])
            assert events == ["status", "status", "end"]
            got = await receiver.next_delivered()
        verify_webhook((h.settings.data_dir / "webhook_secret").read_text(), got.body, got.headers["X-Signature"])
        await until_webhooks(h.store, task_id, lambda hooks: hooks[0].state == "delivered")

        resp = await h.client.get("/api/v1/usage", headers=bearer(user["idToken"]))
        [mine] = (await resp.json())["keys"]
        assert (mine["key_id"], mine["total"]["tasks"], mine["quota"]) == (owner, 1, None)
        resp = await h.client.get("/api/v1/usage", params={"key": owner}, headers=auth(ADMIN_KEY))
        assert resp.status == 200, await resp.text()
        assert [(k["key_id"], k["total"]["tasks"]) for k in (await resp.json())["keys"]] == [(owner, 1)]
    finally:
        await stop_harness(h)
