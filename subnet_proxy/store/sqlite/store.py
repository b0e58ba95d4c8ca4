"""The embedded TaskStore: one SQLite file in WAL mode, safe for several store objects and processes.

Calls run on a dedicated worker thread (``SQLiteWorker``), except the quick writes (a create, a
status move, a response: a few rows by key), which run on the event loop's own connection where
they cannot block (``sqlite_worker``'s docstring says when); each write runs inside a ``BEGIN
IMMEDIATE`` transaction (writes queued together share one: group commit,
each in its own savepoint), so a claim's read-then-update cannot interleave with another claimer's,
even in another process. The state changes themselves are the backend-agnostic rules of
``store.ops``; the tables are in ``sqlite_schema``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from subnet_proxy.sqlite_worker import DEFAULT_BUSY_TIMEOUT_S, SQLiteWorker
from subnet_proxy.store import ops
from subnet_proxy.store.base import Page, PurgeReport, StoreError, TaskNotFound, TaskStore
from subnet_proxy.store.sqlite.schema import SCHEMA, TASK_COLUMNS, task_row, ts
from subnet_proxy.tasks import (
    Evaluation,
    FinalResult,
    MinerResponse,
    Task,
    TaskKind,
    TaskStatus,
    utcnow,
)

DEFAULT_POLL_S = 2.0
#: ``blob_refs`` rows one call of ``blobs_in_use`` scans (about 20 ms of the worker thread).
SCAN_ROWS = 50_000

M = TypeVar("M", bound=BaseModel)


class SQLiteTaskStore(TaskStore):
    """TaskStore on one SQLite file; safe for several store objects and processes on that file."""

    def __init__(
        self,
        path: str | Path,
        *,
        poll_s: float = DEFAULT_POLL_S,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        durable: bool = False,
    ) -> None:
        """``durable``: every commit is flushed to disk (``synchronous=FULL``, on the worker thread)."""
        self.path = Path(path)
        self._poll_s = poll_s
        self._db = SQLiteWorker(path, SCHEMA, busy_timeout_s=busy_timeout_s, on_open=self._opened, durable=durable)
        # in-process wake-up (create/release by this object); touched only on the event loop
        self._wake = asyncio.Event()
        # cross-process wake-up state; touched only on the worker thread
        self._data_version = -1

    def _opened(self, conn: sqlite3.Connection) -> None:
        """Start the cross-process wake-up state from what the file holds now."""
        self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]

    async def _docs(self, model: type[M], sql: str, *params: object) -> list[M]:
        """The models stored in the ``doc`` column of the rows ``sql`` selects."""

        def work(conn: sqlite3.Connection) -> list[M]:
            return [model.model_validate_json(doc) for (doc,) in conn.execute(sql, params).fetchall()]

        return await self._db.read(work)

    @staticmethod
    def _load(conn: sqlite3.Connection, task_id: str) -> Task:
        row = conn.execute("SELECT doc FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return Task.model_validate_json(row[0])

    @staticmethod
    def _save(conn: sqlite3.Connection, task: Task) -> None:
        conn.execute(
            "UPDATE tasks SET status = ?, updated_ts = ?, lease_ts = ?, deadline_ts = ?, doc = ? WHERE task_id = ?",
            (
                task.status.value,
                ts(task.updated_at),
                ts(task.lease_expires_at),
                ts(task.deadline),
                task.model_dump_json(),
                task.task_id,
            ),
        )

    @staticmethod
    def _add_refs(conn: sqlite3.Connection, task_id: str, source: str, keys: list[str]) -> None:
        if not keys:
            return
        conn.executemany(
            "INSERT OR IGNORE INTO blob_refs(task_id, source, blob_key) VALUES (?, ?, ?)",
            [(task_id, source, key) for key in keys],
        )

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

    async def _update(
        self,
        task_id: str,
        change: Callable[[Task], Task],
        *,
        wake: bool = False,
        result: FinalResult | None = None,
    ) -> Task:
        """Load, change (pure; may raise) and save one task, and its final ``result`` if given, in one
        transaction."""

        def work(conn: sqlite3.Connection) -> Task:
            task = change(self._load(conn, task_id))
            self._save(conn, task)
            if result is not None:
                self._write_result(conn, result)
            return task

        task = await self._db.write(work, quick=True)
        if wake:
            self._wake.set()
        return task

    # -- tasks ---------------------------------------------------------------------------------------
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

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        ops.check_limit(limit)
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if status is not None:
            where.append("status = ?")
            params.append(TaskStatus(status).value)
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if cursor is not None:
            after_at, after_id = ops.decode_cursor(cursor)
            where.append("(created_ts > ? OR (created_ts = ? AND task_id > ?))")
            params += [after_at.timestamp(), after_at.timestamp(), after_id]
        sql = f"SELECT doc FROM tasks WHERE {' AND '.join(where)} ORDER BY created_ts, task_id LIMIT ?"

        tasks = await self._docs(Task, sql, *params, limit + 1)
        return ops.page_of(tasks, limit)

    async def claim_tasks(
        self,
        claimer: str,
        *,
        limit: int,
        lease_s: float,
        kinds: Iterable[TaskKind] | None = None,
        now: datetime | None = None,
    ) -> list[Task]:
        ops.check_limit(limit)
        ops.check_lease_s(lease_s)
        at = ops.instant(now)
        kind_values = [TaskKind(kind).value for kind in kinds] if kinds is not None else None
        sql = (
            "SELECT doc FROM tasks WHERE (status = 'pending' OR (status = 'distributed' AND lease_ts <= ?))"
            + (f" AND kind IN ({', '.join('?' * len(kind_values))})" if kind_values else "")
            + " ORDER BY created_ts, task_id LIMIT ?"
        )
        if kind_values == []:
            return []

        def work(conn: sqlite3.Connection) -> list[Task]:
            rows = conn.execute(sql, (at.timestamp(), *(kind_values or []), limit)).fetchall()
            taken = []
            for (doc,) in rows:
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

    async def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        reason: str | None = None,
        error: tuple[str, str] | None = None,
        claimer: str | None = None,
        result: FinalResult | None = None,
    ) -> Task:
        ops.check_decision(task_id, target, result)
        return await self._update(
            task_id,
            lambda t: ops.transitioned(t, target, reason=reason, error=error, claimer=claimer, now=utcnow()),
            wake=target is TaskStatus.PENDING,
            result=result,
        )

    # -- responses, evaluations, results -------------------------------------------------------------
    async def record_response(
        self, response: MinerResponse, *, only_if: frozenset[TaskStatus] | None = None
    ) -> tuple[MinerResponse, bool]:
        def work(conn: sqlite3.Connection) -> tuple[MinerResponse, bool]:
            ops.require_accepting(self._load(conn, response.task_id), only_if)
            row = conn.execute(
                "SELECT doc FROM responses WHERE task_id = ? AND hotkey = ?", (response.task_id, response.hotkey)
            ).fetchone()
            if row is not None:
                return MinerResponse.model_validate_json(row[0]), False
            first_exists = conn.execute(
                "SELECT 1 FROM responses WHERE task_id = ? AND is_first = 1", (response.task_id,)
            ).fetchone()
            stored = ops.first_marked(response, first_exists=first_exists is not None)
            conn.execute(
                "INSERT INTO responses(task_id, hotkey, is_first, doc) VALUES (?, ?, ?, ?)",
                (stored.task_id, stored.hotkey, int(stored.is_first), stored.model_dump_json()),
            )
            self._add_refs(conn, stored.task_id, f"response:{stored.hotkey}", ops.response_blobs(stored))
            return stored, True

        return await self._db.write(work, quick=True)

    async def list_responses(self, task_id: str) -> list[MinerResponse]:
        return await self._docs(MinerResponse, "SELECT doc FROM responses WHERE task_id = ? ORDER BY seq", task_id)

    async def first_response(self, task_id: str) -> MinerResponse | None:
        found = await self._docs(MinerResponse, "SELECT doc FROM responses WHERE task_id = ? AND is_first = 1", task_id)
        return found[0] if found else None

    async def record_evaluation(self, evaluation: Evaluation) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            self._load(conn, evaluation.task_id)
            cursor = conn.execute(
                "INSERT OR IGNORE INTO evaluations(task_id, validator_hotkey, doc) VALUES (?, ?, ?)",
                (evaluation.task_id, evaluation.validator_hotkey, evaluation.model_dump_json()),
            )
            return cursor.rowcount == 1

        return await self._db.write(work, quick=True)

    async def list_evaluations(self, task_id: str) -> list[Evaluation]:
        return await self._docs(Evaluation, "SELECT doc FROM evaluations WHERE task_id = ? ORDER BY seq", task_id)

    async def set_final_result(self, result: FinalResult) -> None:
        def work(conn: sqlite3.Connection) -> None:
            self._load(conn, result.task_id)
            self._write_result(conn, result)

        await self._db.write(work, quick=True)

    @classmethod
    def _write_result(cls, conn: sqlite3.Connection, result: FinalResult) -> None:
        """Store (or replace) the final result and its blob references, in the caller's transaction."""
        conn.execute(
            "INSERT OR REPLACE INTO final_results(task_id, doc) VALUES (?, ?)",
            (result.task_id, result.model_dump_json()),
        )
        conn.execute("DELETE FROM blob_refs WHERE task_id = ? AND source = 'result'", (result.task_id,))
        cls._add_refs(conn, result.task_id, "result", ops.result_blobs(result))

    async def get_final_result(self, task_id: str) -> FinalResult | None:
        found = await self._docs(FinalResult, "SELECT doc FROM final_results WHERE task_id = ?", task_id)
        return found[0] if found else None

    # -- health, notification, retention -------------------------------------------------------------
    async def count_by_status(self) -> dict[TaskStatus, int]:
        def work(conn: sqlite3.Connection) -> dict[TaskStatus, int]:
            counts = {status: 0 for status in TaskStatus}
            for status, count in conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status"):
                counts[TaskStatus(status)] = count
            return counts

        return await self._db.read(work)

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
            try:
                await asyncio.wait_for(self._wake.wait(), min(self._poll_s, remaining))
            except TimeoutError:
                pass

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
                for table in ("blob_refs", "responses", "evaluations", "final_results", "tasks"):
                    conn.execute(f"DELETE FROM {table} WHERE task_id = ?", (task_id,))
            return PurgeReport(task_ids=ids, blob_keys=keys)

        return await self._db.write(work)

    async def blobs_in_use(self, keys: Iterable[str]) -> set[str]:
        """A scan of ``blob_refs`` (no index on the blob key: ``sqlite_schema``), in rowid ranges of
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
