"""Task stores: the TaskStore interface, its backends, and ``open_task_store`` to pick one from Settings."""

from __future__ import annotations

from subnet_proxy.config import Settings
from subnet_proxy.store.base import (
    InvalidCursor,
    LeaseLost,
    Page,
    PurgeReport,
    StoreError,
    TaskNotAccepting,
    TaskNotFound,
    TaskStore,
)
from subnet_proxy.store.sqlite import SQLiteTaskStore

__all__ = [
    "InvalidCursor",
    "LeaseLost",
    "Page",
    "PurgeReport",
    "SQLiteTaskStore",
    "StoreError",
    "TaskNotAccepting",
    "TaskNotFound",
    "TaskStore",
    "open_task_store",
]


def open_task_store(settings: Settings) -> TaskStore:
    """The TaskStore ``settings.store.backend`` names. Cloud modules are imported only when chosen,
    so the embedded default needs none of the Google libraries."""
    store = settings.store
    if store.backend == "sqlite":
        path = store.sqlite_path or settings.data_dir / "tasks.db"
        return SQLiteTaskStore(path, poll_s=store.poll_s, durable=store.fsync)
    if store.backend == "firestore":
        from subnet_proxy.store.firestore import FirestoreTaskStore

        return FirestoreTaskStore.from_settings(settings)
    raise ValueError(f"unknown task store backend {store.backend!r}")
