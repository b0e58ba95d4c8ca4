"""SQLite KeyStore: API keys by hash in one small table, queried from a worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from subnet_proxy.keys.base import ApiKey, KeyNotFound, KeyStore, Role, hash_key, matches, seeded_key_id
from subnet_proxy.tasks import utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    rate_per_s REAL,
    burst INTEGER,
    max_in_flight INTEGER,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    daily_tasks INTEGER,
    daily_audio_s REAL,
    daily_chars INTEGER,
    webhook_secret TEXT
)
"""
#: columns added since the table's first version: added to an older file when it is opened.
_ADDED = {"daily_tasks": "INTEGER", "daily_audio_s": "REAL", "daily_chars": "INTEGER", "webhook_secret": "TEXT"}
_COLUMNS = ("key_id, key_hash, name, role, rate_per_s, burst, max_in_flight, created_at, revoked_at, daily_tasks, "
            "daily_audio_s, daily_chars, webhook_secret")


def _row(row: tuple[Any, ...]) -> ApiKey:
    key_id, key_hash, name, role, rate, burst, in_flight, created, revoked, tasks, audio_s, chars, webhook_secret = row
    return ApiKey(
        key_id=key_id,
        key_hash=key_hash,
        name=name,
        role=Role(role),
        rate_per_s=rate,
        burst=burst,
        max_in_flight=in_flight,
        created_at=datetime.fromisoformat(created),
        revoked_at=datetime.fromisoformat(revoked) if revoked else None,
        daily_tasks=tasks,
        daily_audio_s=audio_s,
        daily_chars=chars,
        webhook_secret=webhook_secret,
    )


class SqliteKeyStore(KeyStore):
    """One connection guarded by a lock; every query runs in a thread so the event loop never blocks."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute(_SCHEMA)
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(api_keys)")}
        for column, sql_type in _ADDED.items():
            if column not in present:
                self._conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {sql_type}")
        self._lock = asyncio.Lock()

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._conn.execute(sql, params).fetchall())

    async def _insert(self, api_key: ApiKey) -> None:
        await self._run(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            (api_key.key_id, api_key.key_hash, api_key.name, api_key.role.value, api_key.rate_per_s,
             api_key.burst, api_key.max_in_flight, api_key.created_at.isoformat(), api_key.daily_tasks,
             api_key.daily_audio_s, api_key.daily_chars, api_key.webhook_secret),
        )

    async def seed(self, key: str, *, role: Role, name: str) -> ApiKey:
        key_id = seeded_key_id(key)
        await self._run(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, NULL, NULL, NULL, NULL) "
            "ON CONFLICT(key_id) DO UPDATE SET role = excluded.role, revoked_at = NULL",
            (key_id, hash_key(key), name, role.value, utcnow().isoformat()),
        )
        return await self.get(key_id)

    async def authenticate(self, key: str) -> ApiKey | None:
        rows = await self._run(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (hash_key(key),))
        if not rows:
            return None
        api_key = _row(rows[0])
        return api_key if api_key.active and matches(api_key, key) else None

    async def get(self, key_id: str) -> ApiKey:
        rows = await self._run(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        if not rows:
            raise KeyNotFound(key_id)
        return _row(rows[0])

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = await self._run(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, key_id")
        return [_row(r) for r in rows]

    async def revoke(self, key_id: str, *, at: datetime | None = None) -> ApiKey:
        await self.get(key_id)
        await self._run(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
            ((at or utcnow()).isoformat(), key_id),
        )
        return await self.get(key_id)

    async def set_webhook_secret(self, key_id: str, secret: str | None) -> ApiKey:
        await self.get(key_id)
        await self._run("UPDATE api_keys SET webhook_secret = ? WHERE key_id = ?", (secret, key_id))
        return await self.get(key_id)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._conn.close)
