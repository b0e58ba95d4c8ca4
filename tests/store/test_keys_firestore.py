"""The Firestore KeyStore on the emulator: one key set shared by every instance on the same database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from subnet_proxy.config import NeuronSettings, ProxySettings, Settings
from subnet_proxy.keys import KeyNotFound, KeyStore, Role, open_key_store, seed_configured_keys
from subnet_proxy.keys.firestore import FirestoreKeyStore
from tests.store.emulators import clear_firestore, emulator_host, firestore_settings, unique_name

pytestmark = pytest.mark.firestore


@pytest.fixture
async def settings(tmp_path: Path) -> AsyncIterator[Settings]:
    emulator_host("FIRESTORE_EMULATOR_HOST")
    project = unique_name("keys")
    yield Settings(
        neuron=NeuronSettings(data_dir=str(tmp_path)),
        store=firestore_settings(project, firestore_prefix="t_"),
        proxy=ProxySettings(api_key=["client-key-abcdefgh"], admin_key="admin-key-abcdefgh"),
    )
    await asyncio.to_thread(clear_firestore, project)


@pytest.fixture
async def two_instances(settings: Settings) -> AsyncIterator[tuple[KeyStore, KeyStore]]:
    first, second = open_key_store(settings), open_key_store(settings)
    yield first, second
    await first.close()
    await second.close()


async def test_open_key_store_follows_the_task_store(two_instances: tuple[KeyStore, KeyStore]) -> None:
    assert all(isinstance(keys, FirestoreKeyStore) for keys in two_instances)


async def test_a_key_made_on_one_instance_works_and_is_revoked_on_all(
    two_instances: tuple[KeyStore, KeyStore],
) -> None:
    server_a, server_b = two_instances
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


async def test_concurrent_starts_seed_each_configured_key_once(
    settings: Settings, two_instances: tuple[KeyStore, KeyStore]
) -> None:
    server_a, server_b = two_instances
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
