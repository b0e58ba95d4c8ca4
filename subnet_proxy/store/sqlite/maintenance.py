"""The SQLite store's ``StoreMaintenance``: deadline expiry, retention's purge and blob scan, ping, close.

All of it runs on the worker thread (none is a quick write): expiry and purge as one transaction a
batch, the blob scan in steps so the other calls go on in between.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from subnet_proxy.store import ops
from subnet_proxy.store.base import PurgeReport, StoreMaintenance
from subnet_proxy.store.sqlite.core import SQLiteCore
from subnet_proxy.tasks import Task, TaskStatus

#: ``blob_refs`` rows one call of ``blobs_in_use`` scans (about 20 ms of the worker thread).
SCAN_ROWS = 50_000


class SQLiteMaintenance(SQLiteCore, StoreMaintenance):
    """Upkeep of the whole file."""

    async def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> list[str]:
        ops.check_limit(limit)
        at = ops.instant(now)
        statuses = [status.value for status in ops.OVERDUE_STATUSES]

        def work(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT doc FROM tasks WHERE deadline_ts IS NOT NULL AND deadline_ts <= ? "
                f"AND status IN ({', '.join('?' * len(statuses))}) ORDER BY deadline_ts LIMIT ?",
                (at.timestamp(), *statuses, limit),
            ).fetchall()
            expired = []
            for (doc,) in rows:
                task = ops.expired_by_deadline(Task.model_validate_json(doc), at)
                self._save(conn, task)
                expired.append(task.task_id)
            return expired

        return await self._db.write(work)

    async def purge(self, *, status: TaskStatus, older_than: datetime, limit: int = 500) -> PurgeReport:
        ops.check_limit(limit)
        ops.instant(older_than)
        def work(conn: sqlite3.Connection) -> PurgeReport:
            ids = [
                task_id
                for (task_id,) in conn.execute(
                    # created_ts <= updated_ts: the first bound lets the status index narrow the scan
                    "SELECT task_id FROM tasks WHERE status = ? AND created_ts < ? AND updated_ts < ? "
                    "ORDER BY created_ts LIMIT ?",
                    (TaskStatus(status).value, older_than.timestamp(), older_than.timestamp(), limit),
                )
            ]
            keys: set[str] = set()
            for task_id in ids:
                refs = conn.execute("SELECT blob_key FROM blob_refs WHERE task_id = ?", (task_id,))
                keys.update(key for (key,) in refs)
                for table in ("blob_refs", "responses", "evaluations", "final_results", "webhooks", "tasks"):
                    conn.execute(f"DELETE FROM {table} WHERE task_id = ?", (task_id,))
            return PurgeReport(task_ids=ids, blob_keys=keys)

        return await self._db.write(work)

    async def blobs_in_use(self, keys: Iterable[str]) -> set[str]:
        """A scan of ``blob_refs`` (no index on the blob key: ``schema``), in rowid ranges of
        ``SCAN_ROWS``, each one call of the worker thread so other calls go on in between. The last
        range is open-ended: a reference made while the scan runs is seen unless it comes after."""
        wanted = json.dumps(sorted(set(keys)))
        if wanted == "[]":
            return set()
        top = await self._db.read(lambda conn: conn.execute("SELECT max(rowid) FROM blob_refs").fetchone()[0])
        used: set[str] = set()
        low = 0
        while True:
            high = low + SCAN_ROWS if top is not None and low + SCAN_ROWS < top else None

            def work(conn: sqlite3.Connection, low: int = low, high: int | None = high) -> list[str]:
                return [key for (key,) in conn.execute(
                    "SELECT DISTINCT blob_key FROM blob_refs WHERE rowid > ? AND (? IS NULL OR rowid <= ?) "
                    "AND blob_key IN (SELECT value FROM json_each(?))", (low, high, high, wanted))]

            used.update(await self._db.read(work))
            if high is None:
                return used
            low = high

    async def ping(self) -> None:
        await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self._db.close()
