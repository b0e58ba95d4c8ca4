"""Admin key management through a real server: create, use, list, revoke; only admins may."""

from __future__ import annotations

from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, Harness, auth, error_of


async def test_create_use_list_revoke(harness: Harness) -> None:
    c = harness.client
    resp = await c.post("/api/v1/admin/keys", json={"name": "acme", "rate_per_s": 5, "burst": 7, "max_in_flight": 2},
                        headers=auth(ADMIN_KEY))
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    new_key, key_id = created["key"], created["key_id"]
    assert new_key.startswith("sp_") and len(new_key) > 40
    assert (created["role"], created["rate_per_s"], created["burst"], created["max_in_flight"]) == ("client", 5, 7, 2)

    # the new key works and owns what it submits
    resp = await c.post("/api/v1/summarization", json={"text": "hello"}, headers=auth(new_key))
    assert resp.status == 202
    task = await harness.store.get_task((await resp.json())["task_id"])
    assert task.owner == key_id

    listing = await (await c.get("/api/v1/admin/keys", headers=auth(ADMIN_KEY))).json()
    ids = {k["key_id"]: k for k in listing["keys"]}
    assert key_id in ids and "key" not in ids[key_id] and "key_hash" not in ids[key_id]
    assert new_key not in str(listing)

    resp = await c.delete(f"/api/v1/admin/keys/{key_id}", headers=auth(ADMIN_KEY))
    assert resp.status == 200 and (await resp.json())["revoked_at"] is not None
    resp = await c.post("/api/v1/summarization", json={"text": "hello"}, headers=auth(new_key))
    assert resp.status == 401 and await error_of(resp) == "invalid_api_key"
    listing = await (await c.get("/api/v1/admin/keys", headers=auth(ADMIN_KEY))).json()
    assert key_id not in {k["key_id"] for k in listing["keys"]}
    listing = await (await c.get("/api/v1/admin/keys", params={"include_revoked": "true"},
                                 headers=auth(ADMIN_KEY))).json()
    assert key_id in {k["key_id"] for k in listing["keys"]}


async def test_admin_only(harness: Harness) -> None:
    c = harness.client
    for method, path in (("POST", "/api/v1/admin/keys"), ("GET", "/api/v1/admin/keys"),
                         ("DELETE", "/api/v1/admin/keys/k_x")):
        resp = await c.request(method, path, json={"name": "x"}, headers=auth(CLIENT_KEY))
        assert resp.status == 403 and await error_of(resp) == "admin_only"
        resp = await c.request(method, path, json={"name": "x"})
        assert resp.status == 401 and await error_of(resp) == "missing_api_key"
    resp = await c.delete("/api/v1/admin/keys/k_unknown", headers=auth(ADMIN_KEY))
    assert resp.status == 404 and await error_of(resp) == "key_not_found"
    resp = await c.post("/api/v1/admin/keys", json={"name": "x", "role": "root"}, headers=auth(ADMIN_KEY))
    assert resp.status == 400 and await error_of(resp) == "invalid_request"
    resp = await c.post("/api/v1/admin/keys", json={"name": "x", "colour": "red"}, headers=auth(ADMIN_KEY))
    assert resp.status == 400 and await error_of(resp) == "unknown_field"
