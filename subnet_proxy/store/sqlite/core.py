"""What every role of the SQLite store shares: the worker over the file, and one task's read-change-write.

``SQLiteCore`` owns the ``SQLiteWorker`` (the event loop's connection for quick writes, the worker
thread for the rest), the in-process wake-up event and the rows more than one role writes: a task
(``_save``), its blob references (``_add_refs``) and its final result (``_write_result``, written by
approval's move to APPROVED as by ``set_final_result``). The role modules (``records``, ``queue``,
``answers``, ``maintenance``) add the operations on top of it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from subnet_proxy.sqlite_worker import DEFAULT_BUSY_TIMEOUT_S, SQLiteWorker
from subnet_proxy.store import ops
from subnet_proxy.store.base import TaskNotFound
from subnet_proxy.store.sqlite.schema import SCHEMA, ts
from subnet_proxy.tasks import FinalResult, Task

DEFAULT_POLL_S = 2.0

M = TypeVar("M", bound=BaseModel)


class SQLiteCore:
    """The connection state and row helpers of one store object on one SQLite file."""

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

    @classmethod
    def _write_result(cls, conn: sqlite3.Connection, result: FinalResult) -> None:
        """Store (or replace) the final result and its blob references, in the caller's transaction."""
        conn.execute(
            "INSERT OR REPLACE INTO final_results(task_id, doc) VALUES (?, ?)",
            (result.task_id, result.model_dump_json()),
        )
        conn.execute("DELETE FROM blob_refs WHERE task_id = ? AND source = 'result'", (result.task_id,))
        cls._add_refs(conn, result.task_id, "result", ops.result_blobs(result))

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
