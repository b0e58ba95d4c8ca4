"""What only the embedded store must show: separate processes on one file, and a free event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from subnet_proxy.store import SQLiteTaskStore, TaskNotFound
from subnet_proxy.store.sqlite import maintenance as sqlite_maintenance
from subnet_proxy.store.sqlite.queue import claim_statements
from subnet_proxy.tasks import TaskInput, TaskStatus, utcnow
from tests.store.factories import make_task

ROOT = Path(__file__).resolve().parents[2]

#: a claimer process: waits until every claimer is ready, then claims in batches until none is left
CLAIMER = """
import asyncio, json, sys, time
from pathlib import Path
from subnet_proxy.store import SQLiteTaskStore, TaskNotFound

async def main(db, name, ready_dir, peers, lease_s, once):
    store = SQLiteTaskStore(db)
    await store.ping()
    Path(ready_dir, name).touch()
    while len(list(Path(ready_dir).iterdir())) < peers:
        await asyncio.sleep(0.001)
    got = []
    while batch := await store.claim_tasks(name, limit=5, lease_s=lease_s):
        got += [t.task_id for t in batch]
        if once:
            break
        await asyncio.sleep(0.001)
    await store.close()
    print(json.dumps(got))

db, name, ready_dir, peers, lease_s, once = sys.argv[1:]
asyncio.run(main(db, name, ready_dir, int(peers), float(lease_s), once == "once"))
"""


def _claimers(db: Path, ready: Path, names: list[str], *, lease_s: float = 300, once: bool = False) -> list[list[str]]:
    ready.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(db), name, str(ready), str(len(names)), str(lease_s),
             "once" if once else "all"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs)
    return [json.loads(out) for out in outputs]


async def _seed(db: Path, count: int) -> tuple[SQLiteTaskStore, list[str]]:
    store = SQLiteTaskStore(db)
    ids = [(await store.create_task(make_task(n)))[0].task_id for n in range(count)]
    return store, ids


async def test_two_processes_claim_each_task_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    store, ids = await _seed(db, 300)
    a, b = await asyncio.to_thread(_claimers, db, tmp_path / "ready", ["proc-a", "proc-b"])
    assert a and b, "both processes should have won some claims"
    assert len(a) + len(b) == 300, "a task was claimed twice or lost"
    assert sorted(a + b) == sorted(ids)
    for name, got in (("proc-a", a), ("proc-b", b)):
        assert (await store.get_task(got[-1])).lease_owner == name
    await store.close()


async def test_a_dead_process_lease_expires_and_its_tasks_come_back(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    store, ids = await _seed(db, 5)
    [dead] = await asyncio.to_thread(_claimers, db, tmp_path / "ready", ["dead"], lease_s=600, once=True)
    assert sorted(dead) == sorted(ids)
    assert await store.claim_tasks("alive", limit=10, lease_s=60) == []
    after_lease = utcnow() + timedelta(seconds=601)
    back = await store.claim_tasks("alive", limit=10, lease_s=60, now=after_lease)
    assert sorted(t.task_id for t in back) == sorted(ids)
    assert [s.status for s in back[0].timeline][-2:] == [TaskStatus.PENDING, TaskStatus.DISTRIBUTED]
    await store.close()


async def test_a_locked_database_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """Another connection holds the write lock for 0.5 s: our write waits, the loop keeps running."""
    db = tmp_path / "tasks.db"
    store = SQLiteTaskStore(db)
    await store.ping()
    locked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold_lock() -> float:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        loop.call_soon_threadsafe(locked.set)
        time.sleep(0.5)
        released = time.monotonic()
        conn.execute("COMMIT")
        conn.close()
        return released

    holder = asyncio.create_task(asyncio.to_thread(hold_lock))
    await locked.wait()
    gaps: list[float] = []

    async def tick() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()

    ticker = asyncio.create_task(tick())
    await store.create_task(make_task(1))
    finished = time.monotonic()
    ticker.cancel()
    released = await holder
    assert finished >= released, "the write should have waited for the lock"
    # blocked, the loop would have stalled for the whole wait (about 0.5 s) in one gap
    assert len(gaps) >= 5 and max(gaps) < 0.35
    assert (await store.count_by_status())[TaskStatus.PENDING] == 1
    await store.close()


async def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    await store.ping()
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.ping()


async def test_a_create_failing_inside_a_group_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A create that fails after its row was inserted (a fault injected into the blob-reference step)
    raises to its own caller and leaves no row; the creates committed with it are stored and wake
    a waiter."""
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    tasks = [make_task(n) for n in range(10)]
    doomed = tasks[5].task_id
    add_refs = SQLiteTaskStore._add_refs

    def failing_add_refs(conn: sqlite3.Connection, task_id: str, source: str, keys: list[str]) -> None:
        if task_id == doomed:
            raise sqlite3.OperationalError("injected fault")
        add_refs(conn, task_id, source, keys)

    monkeypatch.setattr(SQLiteTaskStore, "_add_refs", staticmethod(failing_add_refs))
    results = await asyncio.gather(*(store.create_task(task) for task in tasks), return_exceptions=True)
    assert isinstance(results[5], sqlite3.OperationalError)
    assert [r for i, r in enumerate(results) if i != 5] == [(t, True) for i, t in enumerate(tasks) if i != 5]
    assert await store.wait_for_task(0.0) is True
    assert (await store.count_by_status())[TaskStatus.PENDING] == 9
    with pytest.raises(TaskNotFound):
        await store.get_task(doomed)
    await store.close()


async def test_blobs_in_use_scans_the_references_in_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``blob_refs`` has no blob-key index: ``blobs_in_use`` scans it a few rows a call. Keys in
    the first, a middle and the last step are found, unknown ones are not, and a reference made
    between two steps (past the rows already scanned) is seen."""
    monkeypatch.setattr(sqlite_maintenance, "SCAN_ROWS", 2)
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    keys = [f"{n:064x}" for n in range(1, 8)]
    for n, key in enumerate(keys):
        await store.create_task(make_task(n, input=TaskInput(audio_blob=key)))
    with closing(sqlite3.connect(tmp_path / "tasks.db")) as conn:
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "blob_refs_key" not in indexes

    late_key = "e" * 64
    reads = 0
    read = store._db.read

    async def counting_read(fn):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        if reads == 3:  # the scan is under way: a new task refers to one more blob
            await store.create_task(make_task(99, input=TaskInput(audio_blob=late_key)))
        return await read(fn)

    monkeypatch.setattr(store._db, "read", counting_read)
    wanted = [keys[0], keys[3], keys[6], late_key, "f" * 64]
    assert await store.blobs_in_use(wanted) == {keys[0], keys[3], keys[6], late_key}
    assert reads == 1 + 4  # the highest rowid, then rows (0, 2], (2, 4], (4, 6], (6, ...)
    await store.close()


@pytest.mark.parametrize("kinds", [0, 1, 3])
async def test_a_claim_walks_the_status_index_without_sorting_the_backlog(tmp_path: Path, kinds: int) -> None:
    """A claim reads only the few oldest rows: neither read sorts the matching tasks (a temporary B-tree),
    which made each claim cost the whole backlog (62 ms at 17,000 pending tasks)."""
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    await store.ping()
    await store.close()
    with closing(sqlite3.connect(tmp_path / "tasks.db")) as conn:
        for sql in claim_statements(kinds):
            args = (time.time(),) * sql.count("lease_ts") + ("summarization",) * kinds + (8,)
            plan = " | ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
            assert "USING INDEX tasks_status_order" in plan and "TEMP B-TREE" not in plan, plan
