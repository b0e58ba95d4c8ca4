"""API keys: the ``KeyStore`` interface (``base``), its SQLite and Firestore backends, and ``open_key_store``."""

from __future__ import annotations

from subnet_proxy.config import Settings
from subnet_proxy.keys.base import (
    ApiKey,
    KeyNotFound,
    KeyStore,
    Role,
    hash_key,
    matches,
    new_key,
    new_webhook_secret,
    seeded_key_id,
)
from subnet_proxy.keys.webhook_secret import default_webhook_secret

__all__ = [
    "ApiKey",
    "KeyNotFound",
    "KeyStore",
    "Role",
    "hash_key",
    "default_webhook_secret",
    "matches",
    "new_key",
    "new_webhook_secret",
    "open_key_store",
    "seed_configured_keys",
    "seeded_key_id",
]


def open_key_store(settings: Settings) -> KeyStore:
    """The key store for these settings: beside the tasks, so instances sharing a Firestore queue
    share their keys (collection ``api_keys``); else SQLite beside the task database (DATA_DIR/keys.db)."""
    if settings.store.backend == "firestore":
        from subnet_proxy.keys.firestore import FirestoreKeyStore

        return FirestoreKeyStore(settings.store)
    from subnet_proxy.keys.sqlite import SqliteKeyStore

    return SqliteKeyStore(settings.data_dir / "keys.db")


async def seed_configured_keys(keys: KeyStore, settings: Settings) -> list[ApiKey]:
    """Seed ``--proxy.api_key`` (clients) and ``--proxy.admin_key`` (admin) so runs can be scripted."""
    seeded = [await keys.seed(k, role=Role.CLIENT, name="configured") for k in settings.proxy.api_key]
    if settings.proxy.admin_key:
        seeded.append(await keys.seed(settings.proxy.admin_key, role=Role.ADMIN, name="configured admin"))
    return seeded
