"""Firestore KeyStore: API keys by hash in the ``api_keys`` collection, shared by every proxy instance.

With ``--store firestore`` several side-servers serve one queue, so a key created or revoked on one
of them must hold on all: the keys live beside the tasks. Document id = key id; the plaintext is
never stored, only ``sha256(key)``, looked up by an equality query (single-field index, automatic).
Seeding and revocation are transactions, so concurrent starts seed a configured key once.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.async_transaction import async_transactional

from subnet_proxy.config import StoreSettings
from subnet_proxy.firestore_client import async_client, close_client
from subnet_proxy.keys.base import ApiKey, KeyNotFound, KeyStore, Role, hash_key, matches, seeded_key_id
from subnet_proxy.tasks import utcnow


def _encode(api_key: ApiKey) -> dict[str, Any]:
    data = dataclasses.asdict(api_key)
    data["role"] = api_key.role.value
    return data


def _decode(snap: Any) -> ApiKey:
    """The ApiKey of an existing document snapshot."""
    data = snap.to_dict()
    return ApiKey(**{**data, "role": Role(data["role"])})


class FirestoreKeyStore(KeyStore):
    def __init__(self, settings: StoreSettings, *, client: firestore.AsyncClient | None = None) -> None:
        self._client = client or async_client(settings)
        self._keys = self._client.collection(settings.firestore_prefix + "api_keys")

    async def _insert(self, api_key: ApiKey) -> None:
        await self._keys.document(api_key.key_id).create(_encode(api_key))

    async def seed(self, key: str, *, role: Role, name: str) -> ApiKey:
        ref = self._keys.document(seeded_key_id(key))

        @async_transactional
        async def seed(tx: Any) -> ApiKey:
            snap = await ref.get(transaction=tx)
            if snap.exists:
                api_key = dataclasses.replace(_decode(snap), role=role, revoked_at=None)
            else:
                api_key = ApiKey(key_id=ref.id, key_hash=hash_key(key), name=name, role=role, created_at=utcnow())
            tx.set(ref, _encode(api_key))
            return api_key

        result: ApiKey = await seed(self._client.transaction())
        return result

    async def authenticate(self, key: str) -> ApiKey | None:
        query = self._keys.where(filter=firestore.FieldFilter("key_hash", "==", hash_key(key))).limit(1)
        found = [_decode(s) async for s in query.stream()]
        if not found:
            return None
        api_key = found[0]
        return api_key if api_key.active and matches(api_key, key) else None

    async def get(self, key_id: str) -> ApiKey:
        if not key_id or "/" in key_id:
            raise KeyNotFound(key_id)
        snap = await self._keys.document(key_id).get()
        if not snap.exists:
            raise KeyNotFound(key_id)
        return _decode(snap)

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        keys = [_decode(s) async for s in self._keys.stream()]
        return sorted((k for k in keys if include_revoked or k.active), key=lambda k: (k.created_at, k.key_id))

    async def revoke(self, key_id: str, *, at: datetime | None = None) -> ApiKey:
        await self.get(key_id)
        ref = self._keys.document(key_id)

        @async_transactional
        async def revoke(tx: Any) -> ApiKey:
            snap = await ref.get(transaction=tx)
            if not snap.exists:
                raise KeyNotFound(key_id)
            api_key = _decode(snap)
            if api_key.revoked_at is None:
                api_key = dataclasses.replace(api_key, revoked_at=at or utcnow())
                tx.set(ref, _encode(api_key))
            return api_key

        result: ApiKey = await revoke(self._client.transaction())
        return result

    async def set_webhook_secret(self, key_id: str, secret: str | None) -> ApiKey:
        await self.get(key_id)
        try:
            await self._keys.document(key_id).update({"webhook_secret": secret})
        except gexc.NotFound as exc:  # deleted since the read
            raise KeyNotFound(key_id) from exc
        return await self.get(key_id)

    async def close(self) -> None:
        await close_client(self._client)
