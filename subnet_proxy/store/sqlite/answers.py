"""The SQLite store's ``AnswerStore``: responses, evaluations and the final result of a task.

Every write here is a quick write (a few rows by key) on the event loop's connection; each first
reads its task in the same transaction, so a record never lands on a task that does not exist.
"""

from __future__ import annotations

import sqlite3

from subnet_proxy.store import ops
from subnet_proxy.store.base import AnswerStore
from subnet_proxy.store.sqlite.core import SQLiteCore
from subnet_proxy.tasks import Evaluation, FinalResult, MinerResponse, TaskStatus


class SQLiteAnswers(SQLiteCore, AnswerStore):
    """The ``responses``, ``evaluations`` and ``final_results`` tables."""

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

    async def get_final_result(self, task_id: str) -> FinalResult | None:
        found = await self._docs(FinalResult, "SELECT doc FROM final_results WHERE task_id = ?", task_id)
        return found[0] if found else None
