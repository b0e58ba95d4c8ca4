"""The embedded TaskStore: one SQLite file in WAL mode, safe for several store objects and processes.

Calls run on a dedicated worker thread (``SQLiteWorker``), except the quick writes (a create, a
status move, a response: a few rows by key), which run on the event loop's own connection where
they cannot block (``sqlite_worker``'s docstring says when); each write runs inside a ``BEGIN
IMMEDIATE`` transaction (writes queued together share one: group commit,
each in its own savepoint), so a claim's read-then-update cannot interleave with another claimer's,
even in another process. The state changes themselves are the backend-agnostic rules of
``store.ops``; the tables are in ``schema``.

One module per role of the interface (``records``, ``queue``, ``answers``, ``maintenance``, ``usage``,
``webhooks``), each
over the shared ``core`` (the worker and the rows several roles write); this class joins them.
"""

from __future__ import annotations

from subnet_proxy.store.base import TaskStore
from subnet_proxy.store.sqlite.answers import SQLiteAnswers
from subnet_proxy.store.sqlite.maintenance import SQLiteMaintenance
from subnet_proxy.store.sqlite.queue import SQLiteQueue
from subnet_proxy.store.sqlite.records import SQLiteRecords
from subnet_proxy.store.sqlite.usage import SQLiteUsage
from subnet_proxy.store.sqlite.webhooks import SQLiteWebhooks


class SQLiteTaskStore(SQLiteRecords, SQLiteQueue, SQLiteAnswers, SQLiteMaintenance, SQLiteUsage, SQLiteWebhooks,
                      TaskStore):
    """TaskStore on one SQLite file; safe for several store objects and processes on that file.

    ``SQLiteTaskStore(path, *, poll_s=2.0, busy_timeout_s=..., durable=False)`` (``SQLiteCore``)."""
