"""One SQLite connection owned by one worker thread, so sqlite3's blocking calls stay off the event loop.

Calls from many coroutines queue on the thread in order (one deque, one wake-up event: cheaper per
call than a ThreadPoolExecutor, whose submit was a measurable share of a submit's CPU) and the
connection is never shared across threads. Writes run inside a ``BEGIN IMMEDIATE`` transaction:
SQLite's single write lock is taken up front, so a read-then-update cannot interleave with another
connection's (other store objects or processes on the same file); the busy timeout makes a loser
wait instead of failing.

Group commit: the writes that queue up while the thread is busy are committed together, in one
transaction of at most ``MAX_GROUP`` writes. A write that raises is rolled back alone and raises to
its own caller; the others are unaffected (the group runs in one savepoint, and again with one
savepoint a write when something in it failed). Every caller
returns only after the shared ``COMMIT`` (a failed ``COMMIT`` raises to all of them), so a returned
write is exactly as durable as it was with one transaction per write, and one transaction's fixed
cost (lock, WAL frame, commit, thread hand-off back to the event loop) is paid once per group.

Quick writes on the event loop: a write its caller marks ``quick`` (a handful of rows found by key:
a create, a status move, a response) may run on the event loop's own connection instead, grouped the
same way with the other quick writes of one loop iteration. It is tried only where it cannot block:
the connection has no busy timeout (``BEGIN IMMEDIATE`` fails at once when another connection holds
the write lock, and the group then goes to the worker thread, which waits for it), commits do not
fsync (``synchronous=NORMAL``; a ``durable`` worker sends every write to the thread) and that
connection never checkpoints (the worker thread does, every ``CHECKPOINT_EVERY`` loop commits, and
makes a long WAL start over: ``_after_checkpoint``; without that, under steady load it grew without
end, 1.1 GB in 16 s of the ingest benchmark, every page read slower for it). Why:
profiled under 64 concurrent submits, handing each group to the thread and back cost more CPU than
the SQL did (GIL hand-offs between two busy threads), about 0.05 ms of a submit's 0.2 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
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
#: loop-connection commits between two checkpoints run on the worker thread (SQLite's own automatic
#: checkpoint comes after about 1000 WAL pages; a group of creates writes about 10-20).
CHECKPOINT_EVERY = 32
#: a WAL longer than this (16 MB of 4 KB pages) is made to start over (``_after_checkpoint``).
WAL_RESTART_PAGES = 4_096
#: the WAL file is cut back to this size when it starts over (SQLite leaves it at its largest).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


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
        durable: bool = False,
    ) -> None:
        self.path = Path(path)
        self._schema = schema
        self._busy_timeout_s = busy_timeout_s
        self._on_open = on_open
        self._durable = durable
        self._conn: sqlite3.Connection | None = None
        # the quick-write path: the first event loop that makes a quick write owns it
        self._home_loop: asyncio.AbstractEventLoop | None = None
        self._loop_conn: sqlite3.Connection | None = None
        self._quick: list[_Job] = []
        self._loop_commits = 0
        self._checkpointing = False
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
                self._configure(conn, busy_timeout_s=self._busy_timeout_s)
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

    def _configure(self, conn: sqlite3.Connection, *, busy_timeout_s: float) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")

    def _loop_connection(self) -> sqlite3.Connection:
        """The event loop's connection (made on the loop: a connect and three pragmas, no waiting)."""
        if self._loop_conn is None:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            try:
                self._configure(conn, busy_timeout_s=0)
                conn.execute("PRAGMA wal_autocheckpoint=0")
            except BaseException:
                conn.close()
                raise
            self._loop_conn = conn
        return self._loop_conn

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the SQLite store {self.path} is closed")

    def _enqueue(self, fn: Callable[..., Any], *, write: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._hand_to_thread([_Job(fn, write, loop, future)])
        return future

    def _hand_to_thread(self, jobs: list[_Job]) -> None:
        self._jobs.extend(jobs)
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
                    self._thread.start()
        if not self._ready.is_set():
            self._ready.set()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread."""
        self._check_open()
        result: T = await self._enqueue(lambda: fn(*args), write=False)
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.run(lambda: fn(self.connection()))

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """``fn(connection)`` committed in a write transaction, possibly shared with other writes
        (group commit); rolled back and raised here if ``fn`` raises. ``fn`` may be called twice
        (when another write of its group fails, each is run again alone): keep it free of effects
        outside the connection. ``quick``: ``fn`` touches a few rows by key and may run on the event
        loop (module docstring); never mark a scan or a bulk delete quick."""
        self._check_open()
        if quick and not self._durable and not self._checkpointing:
            loop = asyncio.get_running_loop()
            if self._home_loop is None:
                self._home_loop = loop
            if loop is self._home_loop and self._conn is not None:  # the thread made file and schema
                future: asyncio.Future[T] = loop.create_future()
                self._quick.append(_Job(fn, True, loop, future))
                if len(self._quick) == 1:
                    loop.call_soon(self._commit_quick)
                return await future
        result: T = await self._enqueue(fn, write=True)
        return result

    def _commit_quick(self) -> None:
        """On the event loop: the quick writes of this iteration in one transaction on the loop's
        connection, or on the worker thread when the write lock is taken (or the connection fails).
        (Handing just the COMMIT to a thread was tried and measured slower: the hand-off cost more
        than the WAL writes it moved.)"""
        group, self._quick = self._quick[:MAX_GROUP], self._quick[MAX_GROUP:]
        loop = asyncio.get_running_loop()
        if self._quick:  # more than a group's worth: the rest in the next iteration
            loop.call_soon(self._commit_quick)
        if not group:
            return
        if self._checkpointing:  # queued before the checkpoint began: behind it on the thread
            self._hand_to_thread(group)
            return
        try:
            conn = self._loop_connection()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:  # locked (no waiting here) or unusable: the thread waits or reports it
            self._hand_to_thread(group)
            return
        outcomes = self._run_writes(conn, group)
        self._commit(conn, outcomes)
        _settle(outcomes)
        self._loop_commits += 1
        if self._loop_commits % CHECKPOINT_EVERY == 0:
            job = _Job(self._checkpoint, False, loop, loop.create_future())
            job.future.add_done_callback(lambda done: self._after_checkpoint(loop, done))
            self._hand_to_thread([job])

    def _after_checkpoint(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[int]) -> None:
        """A checkpoint beside the loop's writes copies most of the WAL but, as they go on, never all
        of it, and only a wholly copied WAL starts over. Once it holds more than
        ``WAL_RESTART_PAGES``, one checkpoint runs with the quick writes sent to the thread until it
        is done (behind it, not beside it): it copies the rest and the next write starts the WAL
        over. That pause is two fsyncs long (20-60 ms on the machines measured under heavy writes),
        so it is kept for when the WAL is large; under light load the WAL starts over by itself.
        (Another process writing steadily to the same file can still keep it from starting over,
        until a lull: SQLite offers no way to make a writer it does not own wait.)"""
        if self._closed or done.cancelled() or done.exception() is not None or done.result() <= WAL_RESTART_PAGES:
            return
        self._checkpointing = True
        job = _Job(self._checkpoint, False, loop, loop.create_future())
        job.future.add_done_callback(lambda _: setattr(self, "_checkpointing", False))
        self._hand_to_thread([job])

    def _checkpoint(self) -> int:
        """On the worker thread: copy the WAL into the database (PASSIVE: it waits for nobody; a reader
        in another process may keep it from finishing, and the next one goes on from there). The
        WAL's length in pages (0 when the checkpoint failed: it is retried with the next one)."""
        try:
            _, wal_pages, _ = self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            return 0
        return int(wal_pages)

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
        try:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:  # nothing of the group ran: every caller sees why
            outcomes = [_Outcome(write.future, error=exc) for write in group]
        else:
            outcomes = self._run_writes(conn, group)
            self._commit(conn, outcomes)
        self._deliver(group, outcomes)

    @staticmethod
    def _run_writes(conn: sqlite3.Connection, group: list[_Job]) -> list[_Outcome]:
        """The writes in the transaction ``conn`` has begun, each failing alone. They first run
        together inside one savepoint (two statements a group instead of two a write: about 3 us a
        write); should one raise, that savepoint is rolled back and each write runs again inside a
        savepoint of its own. Should SQLite itself fail (not a write), the transaction is rolled back
        and every caller gets that error."""
        try:
            conn.execute("SAVEPOINT batch")
            values = [write.fn(conn) for write in group]
            conn.execute("RELEASE batch")
            return [_Outcome(write.future, value) for write, value in zip(group, values, strict=True)]
        except BaseException:  # someone's write failed: find whose, one savepoint each
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK TO batch")
                    conn.execute("RELEASE batch")
        outcomes = [_Outcome(write.future) for write in group]
        try:
            for write, outcome in zip(group, outcomes, strict=True):
                conn.execute("SAVEPOINT write")
                try:
                    outcome.value = write.fn(conn)
                except BaseException as exc:  # this caller's own failure: undo its changes only
                    outcome.error = exc
                    conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
        except BaseException as exc:
            SQLiteWorker._abandon(conn, outcomes, exc)
        return outcomes

    @staticmethod
    def _commit(conn: sqlite3.Connection, outcomes: list[_Outcome]) -> None:
        """COMMIT what ``_run_writes`` did (nothing if it rolled back); a failed COMMIT keeps nothing and
        reaches every caller."""
        if not conn.in_transaction:
            return
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            SQLiteWorker._abandon(conn, outcomes, exc)

    @staticmethod
    def _abandon(conn: sqlite3.Connection, outcomes: list[_Outcome], exc: BaseException) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # a failed rollback: SQLite rolls back itself
                conn.execute("ROLLBACK")
        for outcome in outcomes:
            if outcome.error is None:
                outcome.error = exc

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
        while self._quick:  # quick writes not yet run: now, before the thread's queue is closed
            self._commit_quick()
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        if self._thread is None:  # never used: no thread, no connection
            return

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._stopped = True

        await self._enqueue(shut, write=False)
