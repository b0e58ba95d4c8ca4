"""One SQLite connection owned by one worker thread, so sqlite3's blocking calls stay off the event loop.

Calls from many coroutines queue on the thread in order (one deque, one wake-up event: cheaper per
call than a ThreadPoolExecutor, whose submit was a measurable share of a submit's CPU) and the
connection is never shared across threads. Writes run inside a ``BEGIN IMMEDIATE`` transaction:
SQLite's single write lock is taken up front, so a read-then-update cannot interleave with another
connection's (other store objects or processes on the same file); the busy timeout makes a loser
wait instead of failing.

Group commit: the writes that queue up while the thread is busy are committed together, in one
transaction of at most ``MAX_GROUP`` writes, each inside its own savepoint. A write that raises rolls
back its own savepoint only and raises to its own caller; the others are unaffected. Every caller
returns only after the shared ``COMMIT`` (a failed ``COMMIT`` raises to all of them), so a returned
write is exactly as durable as it was with one transaction per write, and one transaction's fixed
cost (lock, WAL frame, commit, thread hand-off back to the event loop) is paid once per group.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 30.0
#: the most writes committed in one transaction: bounds how long the write lock is held at once.
MAX_GROUP = 128


@dataclass(slots=True)
class _Job:
    """A call queued for the thread: a write (``fn(connection)`` in a transaction) or a plain call."""

    fn: Callable[..., Any]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Outcome:
    future: asyncio.Future[Any]
    value: Any = None
    error: BaseException | None = None


def _settle(outcomes: list[_Outcome]) -> None:
    """On the callers' event loop: hand each caller its own result or exception."""
    for outcome in outcomes:
        if outcome.future.done():  # the caller was cancelled; its write still happened
            continue
        if outcome.error is not None:
            outcome.future.set_exception(outcome.error)
        else:
            outcome.future.set_result(outcome.value)


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
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # appended on event loops, drained on the worker thread (deque appends/pops are thread-safe);
        # ``_ready`` is set after an append, cleared by the thread before it drains
        self._jobs: deque[_Job] = deque()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False

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
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in self._schema.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                if self._on_open is not None:
                    self._on_open(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the SQLite store {self.path} is closed")

    def _enqueue(self, fn: Callable[..., Any], *, write: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.append(_Job(fn, write, loop, future))
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
                    self._thread.start()
        if not self._ready.is_set():
            self._ready.set()
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread."""
        self._check_open()
        result: T = await self._enqueue(lambda: fn(*args), write=False)
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.run(lambda: fn(self.connection()))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` committed in a write transaction, possibly shared with other writes
        (group commit); rolled back and raised here if ``fn`` raises."""
        self._check_open()
        result: T = await self._enqueue(fn, write=True)
        return result

    def _serve(self) -> None:
        """The worker thread: runs the queued jobs in order, consecutive writes as one group, until
        ``close`` has run. The event is cleared before draining, so a job queued after the drain
        always finds it set again."""
        while not self._stopped:
            self._ready.wait()
            self._ready.clear()
            while self._jobs and not self._stopped:
                job = self._jobs.popleft()
                if not job.write:
                    outcome = _Outcome(job.future)
                    try:
                        outcome.value = job.fn()
                    except BaseException as exc:  # the caller's to handle
                        outcome.error = exc
                    self._deliver([job], [outcome])
                    continue
                group = [job]
                while self._jobs and self._jobs[0].write and len(group) < MAX_GROUP:
                    group.append(self._jobs.popleft())
                self._commit_group(group)

    def _commit_group(self, group: list[_Job]) -> None:
        outcomes = [_Outcome(write.future) for write in group]
        try:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for write, outcome in zip(group, outcomes, strict=True):
                    conn.execute("SAVEPOINT write")
                    try:
                        outcome.value = write.fn(conn)
                    except BaseException as exc:  # this caller's own failure: undo its changes only
                        outcome.error = exc
                        conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as exc:  # nothing of the group was committed: every caller sees why
            for outcome in outcomes:
                if outcome.error is None:
                    outcome.error = exc
        self._deliver(group, outcomes)

    @staticmethod
    def _deliver(group: list[_Job], outcomes: list[_Outcome]) -> None:
        """One wake-up per event loop for the whole group, not one per write."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for write, outcome in zip(group, outcomes, strict=True):
            by_loop.setdefault(write.loop, []).append(outcome)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop is closed: its callers are gone
                continue

    async def close(self) -> None:
        """Writes queued before the close are committed first; later calls raise RuntimeError."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:  # never used: no thread, no connection
            return

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._stopped = True

        await self._enqueue(shut, write=False)
