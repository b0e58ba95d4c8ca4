"""The SQLite store's ``TaskQueue``: claims under a lease, and the new-task wake-up.

A claim reads and updates its tasks in one ``BEGIN IMMEDIATE`` transaction on the worker thread, so
it cannot interleave with another claimer's, even in another process. Lease renewals, releases and
assignments are quick writes on the event loop's connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from subnet_proxy.store import ops
from subnet_proxy.store.base import TaskQueue
from subnet_proxy.store.sqlite.core import SQLiteCore
from subnet_proxy.tasks import Task, utcnow
from subnet_proxy.waits import wait_set


def claim_statements(kinds: int) -> tuple[str, str]:
    """The claim's two reads: pending tasks, and distributed ones whose lease has lapsed (each with
    ``kinds`` kind parameters, 0 for any kind), both oldest first. Two index-ordered reads merged by the
    caller: one query with ``pending OR lapsed`` cannot walk the (status, created_ts) index in order, so
    SQLite sorted every pending task on each claim (62 ms a claim with a backlog of 17,000, on the
    thread every write waits for)."""
    kind_filter = f" AND kind IN ({', '.join('?' * kinds)})" if kinds else ""
    order = " ORDER BY created_ts, task_id LIMIT ?"
    return (
        "SELECT created_ts, task_id, doc FROM tasks WHERE status = 'pending'" + kind_filter + order,
        "SELECT created_ts, task_id, doc FROM tasks WHERE status = 'distributed' AND lease_ts <= ?"
        + kind_filter + order,
    )


class SQLiteQueue(SQLiteCore, TaskQueue):
    """The work queue over the ``tasks`` table."""

    async def claim_tasks(
        self,
        claimer: str,
        *,
        limit: int,
        lease_s: float,
        kinds: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> list[Task]:
        at, kind_values = ops.check_claim(limit=limit, lease_s=lease_s, now=now, kinds=kinds)
        if kind_values == []:
            return []
        kinds_args = tuple(kind_values or ())
        pending_sql, lapsed_sql = claim_statements(len(kinds_args))

        def work(conn: sqlite3.Connection) -> list[Task]:
            rows = conn.execute(pending_sql, (*kinds_args, limit)).fetchall()
            rows += conn.execute(lapsed_sql, (at.timestamp(), *kinds_args, limit)).fetchall()
            taken = []
            for _, _, doc in sorted(rows)[:limit]:
                task = ops.claimed(Task.model_validate_json(doc), claimer, lease_s=lease_s, now=at)
                self._save(conn, task)
                taken.append(task)
            return taken

        return await self._db.write(work)

    async def renew_lease(self, task_id: str, claimer: str, *, lease_s: float) -> Task:
        ops.check_lease_s(lease_s)
        return await self._update(task_id, lambda t: ops.renewed(t, claimer, lease_s=lease_s, now=utcnow()))

    async def release_task(self, task_id: str, claimer: str, *, reason: str = "released") -> Task:
        return await self._update(
            task_id, lambda t: ops.released(t, claimer, reason=reason, now=utcnow()), wake=True
        )

    async def assign_miners(self, task_id: str, claimer: str, miners: list[tuple[int, str]]) -> Task:
        return await self._update(task_id, lambda t: ops.with_miners(t, claimer, miners, now=utcnow()))

    def _changed_elsewhere(self) -> bool:
        """True when another connection committed since we last looked (``PRAGMA data_version``, no
        table read). Any commit counts, not only creates and releases: a needless wake-up costs one
        empty claim, at most one per ``poll_s``, where counting creates cost every create a write."""
        version = self._db.connection().execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return False
        self._data_version = version
        return True

    async def wait_for_task(self, timeout: float) -> bool:
        """Wakes at once on this object's own create/release (an asyncio event, latched so a create
        between a claim and this wait is not missed); other processes' creates are noticed within
        ``poll_s`` by a data-version check that reads no table unless something was committed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._wake.is_set():
                self._wake.clear()
                return True
            if await self._db.run(self._changed_elsewhere):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await wait_set(self._wake, min(self._poll_s, remaining))
