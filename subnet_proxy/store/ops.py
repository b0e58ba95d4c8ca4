"""The store rules every backend applies the same way: leases, claims, checked moves, cursors, blob refs.

Backends differ in how they make a change atomic (an SQLite ``BEGIN IMMEDIATE``, a Firestore
transaction), not in what the change is. Keeping the "what" here as pure functions of a ``Task`` means
the conformance suite tests one set of rules, whichever backend applies them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from subnet_proxy.store.base import InvalidCursor, LeaseLost, Page, TaskNotAccepting
from subnet_proxy.tasks import (
    FinalResult,
    IllegalTransition,
    MinerResponse,
    Task,
    TaskError,
    TaskStatus,
    utcnow,
)

#: statuses a passed ``deadline`` moves to EXPIRED (the others are final already).
OVERDUE_STATUSES = (TaskStatus.PENDING, TaskStatus.DISTRIBUTED, TaskStatus.DONE)
DEADLINE_ERROR = "deadline"
#: the error code of a task its client cancelled (a FAILED task, not a status of its own).
CANCELLED_ERROR = "cancelled"


def instant(at: datetime | None) -> datetime:
    """``at`` (or now); a naive time is refused, since it would compare against UTC by accident."""
    if at is None:
        return utcnow()
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times given to the store must be timezone-aware")
    return at


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")
    return limit


def check_lease_s(lease_s: float) -> float:
    if not lease_s > 0:
        raise ValueError(f"lease_s must be positive, not {lease_s!r}")
    return lease_s


def check_claim(*, limit: int, lease_s: float, now: datetime | None,
                kinds: Iterable[str] | None) -> tuple[datetime, list[str] | None]:
    """A claim's arguments checked: its instant, and the kind names it may take (None: any; an empty
    list: none, the claim takes nothing)."""
    check_limit(limit)
    check_lease_s(lease_s)
    return instant(now), None if kinds is None else [str(kind) for kind in kinds]


def check_new(task: Task) -> None:
    """A task enters the store PENDING; anything else would skip a checked transition."""
    if task.status is not TaskStatus.PENDING:
        raise ValueError(f"task {task.task_id}: a new task must be pending, not {task.status.value}")


def holds_lease(task: Task, claimer: str) -> bool:
    """A claimer holds a lease until another claimer takes the task (an expired but untaken lease
    still lets its holder finish: nobody else has started the work)."""
    return task.status is TaskStatus.DISTRIBUTED and task.lease_owner == claimer


def require_lease(task: Task, claimer: str) -> None:
    if not holds_lease(task, claimer):
        raise LeaseLost(task.task_id, claimer)


def claimable(task: Task, now: datetime) -> bool:
    if task.status is TaskStatus.PENDING:
        return True
    return (
        task.status is TaskStatus.DISTRIBUTED
        and task.lease_expires_at is not None
        and task.lease_expires_at <= now
    )


def claimed(task: Task, claimer: str, *, lease_s: float, now: datetime) -> Task:
    """The task taken by ``claimer``; an expired lease first goes back to PENDING in the timeline.
    A backend filters with ``claimable`` inside its transaction; a task that is not raises here."""
    if not claimable(task, now):
        raise ValueError(f"task {task.task_id} is not claimable ({task.status.value}, lease {task.lease_expires_at})")
    if task.status is TaskStatus.DISTRIBUTED:
        task = task.moved(TaskStatus.PENDING, at=now, reason=f"lease of {task.lease_owner} expired")
    task = task.moved(TaskStatus.DISTRIBUTED, at=now, reason=f"claimed by {claimer}")
    return task.model_copy(update={"lease_owner": claimer, "lease_expires_at": now + timedelta(seconds=lease_s)})


def renewed(task: Task, claimer: str, *, lease_s: float, now: datetime) -> Task:
    require_lease(task, claimer)
    return task.model_copy(update={"lease_expires_at": now + timedelta(seconds=lease_s), "updated_at": now})


def released(task: Task, claimer: str, *, reason: str, now: datetime) -> Task:
    require_lease(task, claimer)
    return task.moved(TaskStatus.PENDING, at=now, reason=reason)


def with_miners(task: Task, claimer: str, miners: list[tuple[int, str]], *, now: datetime) -> Task:
    """Miners added once each (a retry may pick some again), and one more dispatch attempt."""
    require_lease(task, claimer)
    assigned = list(task.assigned)
    for uid, hotkey in miners:
        if (uid, hotkey) not in assigned:
            assigned.append((uid, hotkey))
    return task.model_copy(update={"assigned": assigned, "attempts": task.attempts + 1, "updated_at": now})


def transitioned(
    task: Task,
    target: TaskStatus,
    *,
    reason: str | None,
    error: tuple[str, str] | None,
    claimer: str | None,
    now: datetime,
    only_if: frozenset[TaskStatus] | None = None,
) -> Task:
    """The checked move behind ``TaskStore.transition``: lease first, then the caller's ``only_if``
    statuses, then the lifecycle table."""
    if target is TaskStatus.DISTRIBUTED:
        raise ValueError("a task becomes distributed only by claim_tasks (it needs a lease)")
    if error is not None and target not in (TaskStatus.FAILED, TaskStatus.EXPIRED):
        raise ValueError(f"an error is recorded only on failed/expired, not {target.value}")
    if claimer is not None:
        require_lease(task, claimer)
    if only_if is not None and task.status not in only_if:
        raise IllegalTransition(task.task_id, task.status, target)
    moved = task.moved(target, at=now, reason=reason)
    if error is not None:
        moved = moved.model_copy(update={"error": TaskError(code=error[0], message=error[1])})
    return moved


def overdue(task: Task, now: datetime) -> bool:
    return task.status in OVERDUE_STATUSES and task.deadline is not None and task.deadline <= now


def expired_by_deadline(task: Task, now: datetime) -> Task:
    if not overdue(task, now):
        raise ValueError(f"task {task.task_id} is not overdue")
    deadline = task.deadline.isoformat() if task.deadline else "?"
    return transitioned(
        task,
        TaskStatus.EXPIRED,
        reason=DEADLINE_ERROR,
        error=(DEADLINE_ERROR, f"not finished by its deadline {deadline}"),
        claimer=None,
        now=now,
    )


def require_accepting(task: Task, only_if: frozenset[TaskStatus] | None) -> None:
    """The check behind ``record_response(only_if=...)``, run inside the backend's atomic step."""
    if only_if is not None and task.status not in only_if:
        raise TaskNotAccepting(task.task_id, task.status)


def check_decision(task_id: str, target: TaskStatus, result: FinalResult | None) -> None:
    """A result goes with ``transition`` only as the APPROVED decision of that same task."""
    if result is None:
        return
    if target is not TaskStatus.APPROVED:
        raise ValueError(f"a final result is stored only with approved, not {target.value}")
    if result.task_id != task_id:
        raise ValueError(f"the result is for task {result.task_id}, not {task_id}")


def first_marked(response: MinerResponse, *, first_exists: bool) -> MinerResponse:
    """The response as stored: ``is_first`` is the store's decision, never the caller's."""
    return response.model_copy(update={"is_first": response.valid and not first_exists})


def listing_scope(*, status: TaskStatus | None, owner: str | None, kind: str | None, newest_first: bool) -> str | None:
    """What a newest-first cursor is bound to (its filters), so a cursor handed out for one listing is
    refused by another instead of silently skipping into it. Oldest-first cursors carry none: the peers'
    DONE listings keep reading the cursors they were given before newest-first listings existed."""
    if not newest_first:
        return None
    filters = json.dumps(["desc", None if status is None else TaskStatus(status).value, owner,
                          None if kind is None else str(kind)])
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def page_of(fetched: list[Task], limit: int, scope: str | None = None) -> Page:
    """A listing page from up to ``limit + 1`` tasks in listing order: the one past the limit only
    says that there is a next page, whose cursor is the last task shown."""
    tasks = fetched[:limit]
    return Page(tasks=tasks, next_cursor=encode_cursor(tasks[-1], scope) if len(fetched) > limit else None)


def encode_cursor(task: Task, scope: str | None = None) -> str:
    """The position after ``task`` in (created_at, task_id) order (and the listing it belongs to, see
    ``listing_scope``), opaque to callers."""
    position: list[str] = [task.created_at.isoformat(), task.task_id]
    raw = json.dumps(position if scope is None else [*position, scope]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str | None = None) -> tuple[datetime, str]:
    """The position in ``cursor``; InvalidCursor when it is not one, or belongs to another listing."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, task_id, *rest = json.loads(raw)
        at = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursor(cursor) from exc
    if not isinstance(task_id, str) or at.tzinfo is None or rest != ([] if scope is None else [scope]):
        raise InvalidCursor(cursor)
    return at, task_id


def response_blobs(response: MinerResponse) -> list[str]:
    return [response.output_blob] if response.output_blob else []


def result_blobs(result: FinalResult) -> list[str]:
    return [result.output_blob] if result.output_blob else []
