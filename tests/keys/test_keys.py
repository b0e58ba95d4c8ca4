"""The KeyStore contract, on every backend: keys stored only hashed, authentication, revocation,
per-key limits, daily quotas and roles, shared by every store object (server instance) on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from subnet_proxy.config import ProxySettings, Settings
from subnet_proxy.keys import KeyNotFound, KeyStore, Role, open_key_store, seed_configured_keys
from subnet_proxy.keys.base import KEY_PREFIX, hash_key, seeded_key_id
from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.tasks import utcnow
from tests.keys.conftest import KeyBackend


def configured(*client_keys: str, admin: str | None = None) -> Settings:
    """Settings carrying ``--proxy.api_key`` / ``--proxy.admin_key`` (all ``seed_configured_keys`` reads)."""
    return Settings(proxy=ProxySettings(api_key=list(client_keys), admin_key=admin))


async def test_open_key_store_picks_the_backend(key_backend: KeyBackend) -> None:
    keys = open_key_store(key_backend.settings)
    try:
        assert isinstance(keys, key_backend.store_class)
    finally:
        await keys.close()


async def test_create_authenticate_revoke(keys: KeyStore, key_backend: KeyBackend) -> None:
    api_key, plaintext = await keys.create(name="acme", role=Role.CLIENT, rate_per_s=3.0, burst=4)
    assert plaintext.startswith(KEY_PREFIX) and api_key.key_hash == hash_key(plaintext)
    assert (api_key.name, api_key.role, api_key.active) == ("acme", Role.CLIENT, True)
    assert (await keys.authenticate(plaintext)) == api_key
    assert await keys.authenticate(plaintext + "x") is None
    assert (api_key.rate_per_s, api_key.burst, api_key.max_in_flight) == (3.0, 4, None)
    revoked = await keys.revoke(api_key.key_id)
    assert revoked.revoked_at is not None and not revoked.active
    assert (await keys.revoke(api_key.key_id)).revoked_at == revoked.revoked_at
    assert await keys.authenticate(plaintext) is None
    assert await keys.list() == [] and len(await keys.list(include_revoked=True)) == 1
    with pytest.raises(KeyNotFound):
        await keys.revoke("k_missing")

    stored = await key_backend.stored_text()
    assert api_key.key_hash in stored and plaintext not in stored  # only the hash is stored


async def test_a_key_made_on_one_instance_works_and_is_revoked_on_all(open_keys: Callable[[], KeyStore]) -> None:
    server_a, server_b = open_keys(), open_keys()
    api_key, plaintext = await server_a.create(name="acme", role=Role.CLIENT, rate_per_s=2.5, max_in_flight=3)
    assert await server_b.authenticate(plaintext) == api_key
    assert await server_b.authenticate(plaintext + "x") is None
    assert await server_b.get(api_key.key_id) == api_key

    revoked = await server_b.revoke(api_key.key_id)
    assert revoked.revoked_at is not None
    assert await server_a.authenticate(plaintext) is None
    assert (await server_a.revoke(api_key.key_id)).revoked_at == revoked.revoked_at  # first time stands
    assert await server_a.list() == [] and await server_a.list(include_revoked=True) == [revoked]
    with pytest.raises(KeyNotFound):
        await server_a.revoke("k_missing")
    with pytest.raises(KeyNotFound):
        await server_a.get("a/b")


@pytest.mark.parametrize("key_id", ["k_missing", "a/b", ""])
async def test_get_of_an_unknown_key_raises(keys: KeyStore, key_id: str) -> None:
    with pytest.raises(KeyNotFound) as raised:
        await keys.get(key_id)
    assert raised.value.key_id == key_id


async def test_revoke_records_the_given_time_and_keeps_the_first(keys: KeyStore) -> None:
    api_key, plaintext = await keys.create(name="acme", role=Role.CLIENT)
    first = utcnow() - timedelta(hours=1)
    revoked = await keys.revoke(api_key.key_id, at=first)
    assert revoked.revoked_at == first
    assert (await keys.revoke(api_key.key_id, at=utcnow())).revoked_at == first
    assert (await keys.get(api_key.key_id)).revoked_at == first


async def test_per_key_limits_and_roles_are_kept(keys: KeyStore) -> None:
    admin, admin_plain = await keys.create(name="ops", role=Role.ADMIN, rate_per_s=2.5, burst=7, max_in_flight=3)
    client, client_plain = await keys.create(name="acme", role=Role.CLIENT)
    assert await keys.get(admin.key_id) == admin
    assert (admin.role, admin.rate_per_s, admin.burst, admin.max_in_flight) == (Role.ADMIN, 2.5, 7, 3)
    assert (client.role, client.rate_per_s, client.burst, client.max_in_flight) == (Role.CLIENT, None, None, None)
    authenticated = await keys.authenticate(admin_plain)
    assert authenticated is not None and authenticated.role is Role.ADMIN
    authenticated = await keys.authenticate(client_plain)
    assert authenticated is not None and authenticated.role is Role.CLIENT


async def test_list_is_oldest_first_and_hides_revoked_keys(keys: KeyStore) -> None:
    made = [(await keys.create(name=f"k{n}", role=Role.CLIENT))[0] for n in range(3)]
    await keys.revoke(made[1].key_id)
    everything = await keys.list(include_revoked=True)
    assert [k.key_id for k in everything] == [k.key_id for k in sorted(made, key=lambda k: (k.created_at, k.key_id))]
    assert [k.key_id for k in await keys.list()] == [k.key_id for k in everything if k.key_id != made[1].key_id]


async def test_seeding_is_idempotent_and_reactivates(keys: KeyStore) -> None:
    settings = configured("k1-abcdefgh", "k2-abcdefgh", admin="adm-abcdefgh")
    first = await seed_configured_keys(keys, settings)
    assert [k.role for k in first] == [Role.CLIENT, Role.CLIENT, Role.ADMIN]
    assert [k.key_id for k in first] == [seeded_key_id(k) for k in ("k1-abcdefgh", "k2-abcdefgh", "adm-abcdefgh")]
    await keys.revoke(first[0].key_id)
    again = await seed_configured_keys(keys, settings)
    assert [k.key_id for k in again] == [k.key_id for k in first]
    assert again[0].active and again[0].created_at == first[0].created_at
    authenticated = await keys.authenticate("k1-abcdefgh")
    assert authenticated is not None and authenticated.key_id == first[0].key_id
    assert len(await keys.list()) == 3


async def test_seeding_again_sets_the_role_and_keeps_the_record(keys: KeyStore) -> None:
    seeded = await keys.seed("promoted-abcdefgh", role=Role.CLIENT, name="first name")
    promoted = await keys.seed("promoted-abcdefgh", role=Role.ADMIN, name="second name")
    assert promoted.key_id == seeded.key_id and promoted.role is Role.ADMIN
    assert (promoted.name, promoted.created_at) == ("first name", seeded.created_at)
    assert await keys.get(seeded.key_id) == promoted


async def test_concurrent_starts_seed_each_configured_key_once(open_keys: Callable[[], KeyStore]) -> None:
    settings = configured("client-key-abcdefgh", admin="admin-key-abcdefgh")
    server_a, server_b = open_keys(), open_keys()
    seeded_a, seeded_b = await asyncio.gather(
        seed_configured_keys(server_a, settings), seed_configured_keys(server_b, settings)
    )
    assert [k.key_id for k in seeded_a] == [k.key_id for k in seeded_b]
    assert [k.role for k in seeded_a] == [Role.CLIENT, Role.ADMIN]
    assert len(await server_a.list()) == 2

    await server_a.revoke(seeded_a[0].key_id)
    again = await seed_configured_keys(server_b, settings)  # a restart re-activates a configured key
    assert again[0].active and again[0].created_at == seeded_a[0].created_at
    authenticated = await server_a.authenticate("client-key-abcdefgh")
    assert authenticated is not None and authenticated.key_id == seeded_a[0].key_id


async def test_daily_quotas_are_kept_and_default_to_none(open_keys: Callable[[], KeyStore]) -> None:
    keys = open_keys()
    capped, plaintext = await keys.create(name="trial", role=Role.CLIENT, daily_tasks=100, daily_audio_s=600.5,
                                          daily_chars=50_000)
    other_instance = open_keys()
    assert await other_instance.get(capped.key_id) == capped == await other_instance.authenticate(plaintext)
    assert (capped.daily_tasks, capped.daily_audio_s, capped.daily_chars) == (100, 600.5, 50_000)
    seeded = await keys.seed("configured-key-abcdefgh", role=Role.CLIENT, name="configured")
    assert (seeded.daily_tasks, seeded.daily_audio_s, seeded.daily_chars) == (None, None, None)


async def test_a_key_file_from_before_quotas_gains_the_columns(tmp_path: Path) -> None:
    """A keys.db written before quotas existed opens, keeps its keys, and takes quotas from then on."""
    with contextlib.closing(sqlite3.connect(tmp_path / "keys.db")) as conn, conn:
        conn.execute("CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, name TEXT NOT "
                     "NULL, role TEXT NOT NULL, rate_per_s REAL, burst INTEGER, max_in_flight INTEGER, created_at "
                     "TEXT NOT NULL, revoked_at TEXT)")
        conn.execute("INSERT INTO api_keys VALUES ('k_old', ?, 'old', 'client', NULL, 5, NULL, ?, NULL)",
                     (hash_key("old-plaintext"), utcnow().isoformat()))
    keys = SqliteKeyStore(tmp_path / "keys.db")
    try:
        old = await keys.authenticate("old-plaintext")
        assert old is not None and (old.key_id, old.burst, old.daily_tasks) == ("k_old", 5, None)
        new, _ = await keys.create(name="new", role=Role.CLIENT, daily_tasks=3)
        assert (await keys.get(new.key_id)).daily_tasks == 3
    finally:
        await keys.close()
