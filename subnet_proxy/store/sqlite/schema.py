"""The tables of the embedded TaskStore, and how a Task maps onto a row of ``tasks``.

Each table keeps its model as JSON in ``doc`` and copies out only the columns it filters or orders
on (times as epoch seconds). ``tasks`` has one index besides its keys, ``(status, created_ts,
task_id)``: every query the store runs starts from a status (claims, the DONE listing, expiry over
the live statuses, retention over a finished one; a task is updated after it was created, so
``created_ts`` bounds a retention scan too), and each index more cost every create about 2 us and
a page of WAL (three were dropped for that; files made before lose them when next opened).
``blob_refs`` names every blob a task, its responses or its final result refer to, so retention can
tell which content-addressed blobs are still shared. It has no index on the blob key: content keys
are random, so such an index took a page of WAL and about 17 us of each upload's create (the
ingest benchmark's largest store cost after the blob itself); retention, hourly, scans the table
instead (``SQLiteTaskStore.blobs_in_use``: 0.36 s for a million references, in 20 ms steps).
``usage`` holds one counter row per key, UTC day and kind; its key is its only index (a key's report
and quota check read that key's rows of a day; an admin's report of every key scans it).
``webhooks`` is the webhook outbox (``WebhookOutbox``): its indexes serve the worker's "due now"
query and a task's listing; only tasks that asked for webhooks write to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from subnet_proxy.tasks import Task

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    idempotency_key TEXT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ts REAL NOT NULL,
    updated_ts REAL NOT NULL,
    lease_ts REAL,
    deadline_ts REAL,
    doc TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idem ON tasks(owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_status_order ON tasks(status, created_ts, task_id);
-- a client's own listing (newest first: the index read backwards)
CREATE INDEX IF NOT EXISTS tasks_owner_order ON tasks(owner, created_ts, task_id);
DROP INDEX IF EXISTS tasks_order;
DROP INDEX IF EXISTS tasks_status_updated;
DROP INDEX IF EXISTS tasks_deadline;
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    hotkey TEXT NOT NULL,
    is_first INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE(task_id, hotkey)
);
CREATE TABLE IF NOT EXISTS evaluations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    validator_hotkey TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE(task_id, validator_hotkey)
);
CREATE TABLE IF NOT EXISTS final_results (
    task_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_refs (
    task_id TEXT NOT NULL,
    source TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    PRIMARY KEY(task_id, source, blob_key)
);
DROP INDEX IF EXISTS blob_refs_key;
-- what each key used, per UTC day (ISO text) and kind, counted at the door (store/sqlite/usage.py)
CREATE TABLE IF NOT EXISTS usage (
    owner TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    tasks INTEGER NOT NULL,
    audio_s REAL NOT NULL,
    chars INTEGER NOT NULL,
    PRIMARY KEY(owner, day, kind)
);

-- the webhook outbox: only tasks with a callback_url have rows (a few per task)
CREATE TABLE IF NOT EXISTS webhooks (
    event_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    state TEXT NOT NULL,
    next_ts REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(state, next_ts);
CREATE INDEX IF NOT EXISTS webhooks_task ON webhooks(task_id);
"""

TASK_COLUMNS = "task_id, owner, idempotency_key, kind, status, created_ts, updated_ts, lease_ts, deadline_ts, doc"


def ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def task_row(task: Task) -> tuple[Any, ...]:
    return (
        task.task_id,
        task.owner,
        task.idempotency_key,
        str(task.kind),
        task.status.value,
        ts(task.created_at),
        ts(task.updated_at),
        ts(task.lease_expires_at),
        ts(task.deadline),
        task.model_dump_json(),
    )
