"""Task stores: the TaskStore interface (five roles), its backends, and ``open_task_store`` to pick one."""

from __future__ import annotations

from subnet_proxy.config import Settings
from subnet_proxy.store.base import (
    AnswerStore,
    InvalidCursor,
    LeaseLost,
    Page,
    PurgeReport,
    StoreError,
    StoreMaintenance,
    TaskNotAccepting,
    TaskNotFound,
    TaskQueue,
    TaskRecords,
    TaskStore,
    Usage,
    UsageCounters,
    UsageLimits,
    UsageRow,
    WebhookOutbox,
)
from subnet_proxy.store.sqlite import SQLiteTaskStore

__all__ = [
    "AnswerStore",
    "InvalidCursor",
    "LeaseLost",
    "Page",
    "PurgeReport",
    "SQLiteTaskStore",
    "StoreError",
    "StoreMaintenance",
    "TaskNotAccepting",
    "TaskNotFound",
    "TaskQueue",
    "TaskRecords",
    "TaskStore",
    "Usage",
    "UsageCounters",
    "UsageLimits",
    "UsageRow",
    "WebhookOutbox",
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
