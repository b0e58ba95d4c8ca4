"""The embedded SQLite TaskStore: one WAL file (``store``), its tables (``schema``)."""

from subnet_proxy.store.sqlite.store import SQLiteTaskStore

__all__ = ["SQLiteTaskStore"]
