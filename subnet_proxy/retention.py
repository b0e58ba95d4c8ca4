"""Retention: end overdue tasks, delete old finished ones, then the blobs nothing refers to any more.

Backend-agnostic (it speaks only the store's ``StoreMaintenance`` role and the BlobStore
interface), so the validator loop and ``scripts/cleanup.py`` run the same pass on SQLite + local
files or Firestore + GCS.

Blobs are content-addressed and may be shared by several tasks (the same audio submitted twice), so
a blob is deleted only when ``blobs_in_use`` says no remaining task, response or result refers to
it. A blob uploaded for a task that is being created at that very moment could still lose that
race; the window is one purge batch, and such a task fails on a missing input rather than serving
wrong data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.config import RetentionSettings
from subnet_proxy.store.base import StoreMaintenance
from subnet_proxy.tasks import TaskStatus, utcnow

#: rows handled per store call; a pass loops until a batch comes back short
BATCH = 500


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one pass did: ids expired by deadline, ids deleted per status, blob keys deleted or kept."""

    expired: list[str] = field(default_factory=list)
    purged: dict[TaskStatus, list[str]] = field(default_factory=dict)
    blobs_deleted: list[str] = field(default_factory=list)
    blobs_kept: list[str] = field(default_factory=list)

    @property
    def purged_count(self) -> int:
        return sum(len(ids) for ids in self.purged.values())


def cutoffs(policy: RetentionSettings, now: datetime) -> dict[TaskStatus, datetime]:
    """Per final status, the last-update time before which a task is deleted."""
    done_before = now - timedelta(days=policy.done_days)
    failed_before = now - timedelta(days=policy.failed_days)
    return {
        TaskStatus.APPROVED: done_before,
        TaskStatus.FAILED: failed_before,
        TaskStatus.EXPIRED: failed_before,
    }


async def run_retention(
    store: StoreMaintenance,
    blobs: BlobStore,
    policy: RetentionSettings,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
) -> RetentionReport:
    """One retention pass. Safe to run from several processes at once: every step is idempotent."""
    now = now or utcnow()
    expired: list[str] = []
    while ids := await store.expire_overdue(now=now, limit=batch):
        expired += ids
        if len(ids) < batch:
            break

    purged: dict[TaskStatus, list[str]] = {}
    candidates: set[str] = set()
    for status, older_than in cutoffs(policy, now).items():
        purged[status] = []
        while True:
            report = await store.purge(status=status, older_than=older_than, limit=batch)
            purged[status] += report.task_ids
            candidates |= report.blob_keys
            if len(report.task_ids) < batch:
                break

    in_use = await store.blobs_in_use(candidates)
    deleted = []
    for key in sorted(candidates - in_use):
        if await blobs.delete(key):
            deleted.append(key)
    return RetentionReport(expired=expired, purged=purged, blobs_deleted=deleted, blobs_kept=sorted(in_use))
