"""One SQLite connection owned by one worker thread, so sqlite3's blocking calls stay off the event loop.

Calls from many coroutines queue on the thread in order and the connection is never shared across
threads. Writes run as one ``BEGIN IMMEDIATE`` transaction each: SQLite's single write lock is taken
up front, so a read-then-update cannot interleave with another connection's (other store objects or
processes on the same file); the busy timeout makes a loser wait instead of failing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 30.0


class SQLiteWorker:
    """Runs functions of a connection on a dedicated thread; the file and schema are made on first use."""

    def __init__(
        self,
        path: str | Path,
        schema: str,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        on_open: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._schema = schema
        self._busy_timeout_s = busy_timeout_s
        self._on_open = on_open
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def connection(self) -> sqlite3.Connection:
        """The connection; call on the worker thread only (inside a function given to run/read/write)."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
                self._transaction(conn, lambda c: [c.execute(s) for s in self._schema.split(";") if s.strip()])
                if self._on_open is not None:
                    self._on_open(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread."""
        if self._closed:
            raise RuntimeError(f"the SQLite store {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.run(lambda: fn(self.connection()))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in one write transaction (rolled back if it raises)."""
        return await self.run(lambda: self._transaction(self.connection(), fn))

    async def close(self) -> None:
        if self._closed:
            return

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self.run(shut)
        self._closed = True
        self._pool.shutdown(wait=False)
