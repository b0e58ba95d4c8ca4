"""Group commit in the embedded store's worker: writes queued together share one transaction, each
caller still gets its own result or exception, and nothing is reported written unless it committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from subnet_proxy import sqlite_worker
from subnet_proxy.sqlite_worker import MAX_GROUP, SQLiteWorker
from tests.conftest import LoopTicks

Write = Callable[[sqlite3.Connection], object]

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS notes (name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS children (parent TEXT NOT NULL REFERENCES items(name) DEFERRABLE INITIALLY DEFERRED)
"""


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[SQLiteWorker]:
    worker = SQLiteWorker(tmp_path / "w.db", SCHEMA)
    await worker.read(lambda conn: conn.execute("PRAGMA foreign_keys=ON"))
    yield worker
    await worker.close()


async def _held(worker: SQLiteWorker, writes: Sequence[Write]) -> tuple[list[object], int]:
    """Run ``writes`` while the worker thread is held busy, so they all queue up and flush as one batch;
    their outcomes (results or exceptions) and how many COMMITs were run."""
    commits: list[str] = []
    await worker.read(lambda conn: conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None))
    gate = threading.Event()
    held = asyncio.ensure_future(worker.run(gate.wait))
    pending = [asyncio.ensure_future(worker.write(fn)) for fn in writes]
    await asyncio.sleep(0)  # every write is queued behind the held thread
    gate.set()
    await held
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    await worker.read(lambda conn: conn.set_trace_callback(None))
    return list(outcomes), len(commits)


def _insert(name: str) -> Callable[[sqlite3.Connection], str]:
    def fn(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO items(name) VALUES (?)", (name,))
        return name

    return fn


async def _names(worker: SQLiteWorker, table: str = "items") -> set[str]:
    rows = await worker.read(lambda conn: conn.execute(f"SELECT name FROM {table}").fetchall())
    return {name for (name,) in rows}


async def test_queued_writes_commit_together_and_each_caller_gets_its_own_outcome(worker: SQLiteWorker) -> None:
    def fails_after_writing(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO notes(name) VALUES ('half-done')")
        raise ValueError("refused by the caller's own rule")

    writes = [_insert("a"), _insert("b"), fails_after_writing, _insert("a"), _insert("c")]
    outcomes, commits = await _held(worker, writes)
    assert commits == 1, "the queued writes should share one transaction"
    assert outcomes[:2] == ["a", "b"] and outcomes[4] == "c"
    assert isinstance(outcomes[2], ValueError) and "own rule" in str(outcomes[2])
    assert isinstance(outcomes[3], sqlite3.IntegrityError), "a duplicate fails only its own write"
    assert await _names(worker) == {"a", "b", "c"}
    assert await _names(worker, "notes") == set(), "a failed write's own changes are rolled back"


async def test_a_failed_commit_reaches_every_caller_and_keeps_nothing(worker: SQLiteWorker) -> None:
    def orphan(conn: sqlite3.Connection) -> str:  # a deferred foreign key: fails only at COMMIT
        conn.execute("INSERT INTO children(parent) VALUES ('nobody')")
        return "orphan"

    outcomes, commits = await _held(worker, [_insert("x"), orphan, _insert("y")])
    assert commits == 1, "one COMMIT was tried for the whole group, and it failed"
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes), outcomes
    assert await _names(worker) == set()
    assert await worker.write(_insert("z")) == "z", "the worker goes on after a failed group"
    assert await _names(worker) == {"z"}


async def test_groups_are_bounded(worker: SQLiteWorker) -> None:
    count = MAX_GROUP * 2 + 3
    outcomes, commits = await _held(worker, [_insert(f"n{i}") for i in range(count)])
    assert outcomes == [f"n{i}" for i in range(count)]
    assert commits == 3


async def test_writes_queued_before_close_are_committed_and_later_ones_refused(tmp_path: Path) -> None:
    worker = SQLiteWorker(tmp_path / "w.db", SCHEMA)
    pending = [asyncio.ensure_future(worker.write(_insert(f"k{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    await worker.close()
    assert await asyncio.gather(*pending) == [f"k{i}" for i in range(5)]
    with pytest.raises(RuntimeError, match="closed"):
        await worker.write(_insert("late"))
    reopened = SQLiteWorker(tmp_path / "w.db", SCHEMA)
    assert await _names(reopened) == {f"k{i}" for i in range(5)}
    await reopened.close()


# -- quick writes: on the event loop's own connection, never blocking it ---------------------------------
def _insert_noting_thread(name: str, threads: list[int]) -> Callable[[sqlite3.Connection], str]:
    def fn(conn: sqlite3.Connection) -> str:
        threads.append(threading.get_ident())
        conn.execute("INSERT INTO items(name) VALUES (?)", (name,))
        return name

    return fn


async def test_quick_writes_of_one_loop_iteration_commit_together_on_the_loop(worker: SQLiteWorker) -> None:
    await worker.write(_insert("first"))  # the thread makes the file and schema
    threads: list[int] = []
    writes = [_insert_noting_thread(f"q{i}", threads) for i in range(5)]
    half_done = _insert("q0")  # a duplicate: fails alone
    outcomes = await asyncio.gather(*(worker.write(fn, quick=True) for fn in [*writes, half_done]),
                                    return_exceptions=True)
    assert outcomes[:5] == [f"q{i}" for i in range(5)]
    assert isinstance(outcomes[5], sqlite3.IntegrityError)
    assert set(threads) == {threading.get_ident()}, "quick writes ran on the event loop's thread"
    assert await _names(worker) == {"first", *(f"q{i}" for i in range(5))}, "the thread's reads see them"


async def test_a_quick_write_waits_on_the_thread_when_another_connection_holds_the_lock(
    worker: SQLiteWorker, tmp_path: Path,
) -> None:
    await worker.write(_insert("first"))
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, say
    threads: list[int] = []
    try:
        async with LoopTicks() as ticks:
            pending = asyncio.ensure_future(worker.write(_insert_noting_thread("late", threads), quick=True))
            await asyncio.sleep(0.2)
            assert not pending.done(), "the write waits for the lock"
            # a loop blocked in the write would not tick at all; a loaded machine ticks less than 20 times
            assert ticks.count >= 3, "...on the worker thread: the event loop stayed free"
            other.execute("COMMIT")
            assert await pending == "late"
        assert threading.get_ident() not in threads, "the waiting write ran on the worker thread"
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")  # a failed check must not leave the worker waiting on the lock
        other.close()
    assert threads and threads[0] != threading.get_ident()
    assert "late" in await _names(worker)


async def test_a_durable_worker_writes_on_its_thread_with_full_sync(tmp_path: Path) -> None:
    worker = SQLiteWorker(tmp_path / "d.db", SCHEMA, durable=True)
    await worker.write(_insert("first"))
    threads: list[int] = []
    assert await worker.write(_insert_noting_thread("d", threads), quick=True) == "d"
    assert threads[0] != threading.get_ident(), "a commit that fsyncs never runs on the event loop"
    assert await worker.read(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    await worker.close()


async def test_the_thread_checkpoints_what_the_loop_commits(worker: SQLiteWorker,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_worker, "CHECKPOINT_EVERY", 3)
    checkpoints: list[int] = []
    real = worker._checkpoint
    monkeypatch.setattr(worker, "_checkpoint", lambda: (checkpoints.append(threading.get_ident()), real())[1])
    await worker.write(_insert("first"))
    for i in range(7):
        await worker.write(_insert(f"c{i}"), quick=True)
    await worker.read(lambda conn: None)  # the queued checkpoints have run
    assert len(checkpoints) == 2, "one checkpoint per CHECKPOINT_EVERY loop commits"
    assert threading.get_ident() not in checkpoints, "checkpoints (which fsync) run on the worker thread"
    autocheckpoint = worker._loop_connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert autocheckpoint == 0, "the loop's connection never checkpoints by itself"


async def test_quick_writes_pending_at_close_are_committed(tmp_path: Path) -> None:
    worker = SQLiteWorker(tmp_path / "w.db", SCHEMA)
    await worker.write(_insert("first"))
    pending = [asyncio.ensure_future(worker.write(_insert(f"p{i}"), quick=True)) for i in range(3)]
    await asyncio.sleep(0)  # queued, their commit not yet run
    await worker.close()
    assert await asyncio.gather(*pending) == ["p0", "p1", "p2"]
    reopened = SQLiteWorker(tmp_path / "w.db", SCHEMA)
    assert await _names(reopened) == {"first", "p0", "p1", "p2"}
    await reopened.close()


async def test_a_group_runs_once_unless_a_write_in_it_fails(worker: SQLiteWorker) -> None:
    """Writes share one savepoint; only when one fails is each run again in its own."""
    calls: list[str] = []

    def counted(name: str, *, fail: bool = False) -> Write:
        def fn(conn: sqlite3.Connection) -> str:
            calls.append(name)
            conn.execute("INSERT INTO items(name) VALUES (?)", (name,))
            if fail:
                raise ValueError(name)
            return name

        return fn

    outcomes, commits = await _held(worker, [counted("a"), counted("b")])
    assert outcomes == ["a", "b"] and calls == ["a", "b"] and commits == 1

    calls.clear()
    outcomes, _ = await _held(worker, [counted("c"), counted("d", fail=True), counted("e")])
    assert outcomes[0] == "c" and isinstance(outcomes[1], ValueError) and outcomes[2] == "e"
    assert calls == ["c", "d", "c", "d", "e"], "after the failure each write ran again alone"
    assert await _names(worker) == {"a", "b", "c", "e"}


async def test_a_long_wal_is_made_to_start_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under steady load a checkpoint beside the loop's writes never copies the whole WAL (here: it
    copies nothing and reports a long WAL), and only a wholly copied WAL starts over. So a long WAL
    gets one checkpoint with the quick writes held behind it on the thread, and starts over: the WAL
    file (as large as the WAL ever was; a WAL that starts over is rewritten in place) stays small."""
    monkeypatch.setattr(sqlite_worker, "CHECKPOINT_EVERY", 2)
    worker = SQLiteWorker(tmp_path / "w.db", SCHEMA)
    await worker.write(_insert("first"))
    real = worker._checkpoint
    alone: list[bool] = []

    def under_load() -> int:
        alone.append(worker._checkpointing)
        return real() if worker._checkpointing else sqlite_worker.WAL_RESTART_PAGES + 1

    monkeypatch.setattr(worker, "_checkpoint", under_load)
    row = "x" * 50_000
    for n in range(100):  # 5 MB through the WAL
        await worker.write(lambda conn, n=n: conn.execute("INSERT INTO notes(name) VALUES (?)", (f"{n}{row}",)),
                           quick=True)
        await worker.read(lambda conn: None)  # the checkpoints queued so far have run
    assert await worker.read(lambda conn: conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]) == 100
    assert alone.count(True) >= 20, "every long WAL got a checkpoint of its own"
    size = (tmp_path / "w.db-wal").stat().st_size
    assert size < 500_000, f"the WAL grew to {size} bytes: it never started over"
    await worker.close()
