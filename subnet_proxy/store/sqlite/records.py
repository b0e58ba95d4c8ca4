"""The SQLite store's ``TaskRecords``: create, read, list, move and count tasks.

A create and a move are quick writes (a few rows by key) on the event loop's connection; listings
and counts are reads on the worker thread.
"""

from __future__ import annotations

import sqlite3

from subnet_proxy.store import ops
from subnet_proxy.store.base import Page, StoreError, TaskRecords
from subnet_proxy.store.sqlite.core import SQLiteCore
from subnet_proxy.store.sqlite.schema import TASK_COLUMNS, task_row
from subnet_proxy.tasks import FinalResult, Task, TaskStatus, utcnow


class SQLiteRecords(SQLiteCore, TaskRecords):
    """The task rows themselves."""

    @staticmethod
    def _existing(conn: sqlite3.Connection, task: Task) -> Task:
        """The stored task a create of ``task`` repeats: same task id first, else same owner and key."""
        row = conn.execute("SELECT doc FROM tasks WHERE task_id = ?", (task.task_id,)).fetchone()
        if row is None and task.idempotency_key is not None:
            row = conn.execute(
                "SELECT doc FROM tasks WHERE owner = ? AND idempotency_key = ?", (task.owner, task.idempotency_key)
            ).fetchone()
        if row is None:
            raise StoreError(f"task {task.task_id} was neither inserted nor found")
        return Task.model_validate_json(row[0])

    async def create_task(self, task: Task) -> tuple[Task, bool]:
        ops.check_new(task)

        def work(conn: sqlite3.Connection) -> tuple[Task, bool]:
            # the insert is skipped when the task id or (owner, Idempotency-Key) is taken: the usual
            # case (a new task) costs one statement, a repeat one more to read what is stored
            inserted = conn.execute(
                f"INSERT OR IGNORE INTO tasks({TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", task_row(task)
            ).rowcount
            if not inserted:
                return self._existing(conn, task), False
            self._add_refs(conn, task.task_id, "input", task.blob_keys)
            return task, True

        stored, created = await self._db.write(work, quick=True)
        if created:
            self._wake.set()
        return stored, created

    async def get_task(self, task_id: str) -> Task:
        return await self._db.read(lambda conn: self._load(conn, task_id))

    async def find_idempotent(self, owner: str, idempotency_key: str) -> Task | None:
        found = await self._docs(Task, "SELECT doc FROM tasks WHERE owner = ? AND idempotency_key = ?", owner,
                                 idempotency_key)
        return found[0] if found else None

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        ops.check_limit(limit)
        scope = ops.listing_scope(status=status, owner=owner, kind=kind, newest_first=newest_first)
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        filters = (("status", None if status is None else TaskStatus(status).value), ("owner", owner), ("kind", kind))
        for column, value in filters:
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if cursor is not None:
            after_at, after_id = ops.decode_cursor(cursor, scope)
            past = "<" if newest_first else ">"
            where.append(f"(created_ts {past} ? OR (created_ts = ? AND task_id {past} ?))")
            params += [after_at.timestamp(), after_at.timestamp(), after_id]
        order = "created_ts DESC, task_id DESC" if newest_first else "created_ts, task_id"
        sql = f"SELECT doc FROM tasks WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"

        tasks = await self._docs(Task, sql, *params, limit + 1)
        return ops.page_of(tasks, limit, scope)

    async def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        reason: str | None = None,
        error: tuple[str, str] | None = None,
        claimer: str | None = None,
        result: FinalResult | None = None,
        only_if: frozenset[TaskStatus] | None = None,
    ) -> Task:
        ops.check_decision(task_id, target, result)
        return await self._update(
            task_id,
            lambda t: ops.transitioned(t, target, reason=reason, error=error, claimer=claimer, now=utcnow(),
                                       only_if=only_if),
            wake=target is TaskStatus.PENDING,
            result=result,
        )

    async def count_by_status(self) -> dict[TaskStatus, int]:
        def work(conn: sqlite3.Connection) -> dict[TaskStatus, int]:
            counts = {status: 0 for status in TaskStatus}
            for status, count in conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status"):
                counts[TaskStatus(status)] = count
            return counts

        return await self._db.read(work)
