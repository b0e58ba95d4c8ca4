"""The SQLite KeyStore: keys stored only hashed, seeding, revocation, limits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from subnet_proxy.config import NeuronSettings, ProxySettings, Settings
from subnet_proxy.keys import KeyNotFound, Role, open_key_store, seed_configured_keys
from subnet_proxy.keys.sqlite import SqliteKeyStore


async def test_create_authenticate_revoke(tmp_path: Path) -> None:
    keys = SqliteKeyStore(tmp_path / "keys.db")
    try:
        api_key, plaintext = await keys.create(name="acme", role=Role.CLIENT, rate_per_s=3.0, burst=4)
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
    finally:
        await keys.close()
    with sqlite3.connect(tmp_path / "keys.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert plaintext not in dump  # only the hash is stored


async def test_seeding_is_idempotent_and_reactivates(tmp_path: Path) -> None:
    settings = Settings(neuron=NeuronSettings(data_dir=str(tmp_path)),
                        proxy=ProxySettings(api_key=["k1-abcdefgh", "k2-abcdefgh"], admin_key="adm-abcdefgh"))
    keys = open_key_store(settings)
    try:
        first = await seed_configured_keys(keys, settings)
        assert [k.role for k in first] == [Role.CLIENT, Role.CLIENT, Role.ADMIN]
        await keys.revoke(first[0].key_id)
        again = await seed_configured_keys(keys, settings)
        assert [k.key_id for k in again] == [k.key_id for k in first]
        assert (await keys.authenticate("k1-abcdefgh")) is not None
        assert len(await keys.list()) == 3
    finally:
        await keys.close()
