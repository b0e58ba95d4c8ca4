"""The TaskStore interface: every backend (SQLite, Firestore) keeps tasks behind these operations.

The validator loop, the side-server and the retention job talk to this interface only, and one
conformance suite (``tests/store``) runs against every backend, so a backend cannot drift. It is
five roles, split where the callers split (each backend implements them in one module per role)::

    TaskRecords       create, read, list, move along the lifecycle, count   (server, approval)
    TaskQueue         claim under a lease, renew, release, assign, wait      (validator loop)
    AnswerStore       responses, evaluations, the final result               (dispatcher, server)
    StoreMaintenance  expiry, purge, blobs in use, ping, close               (retention, health)
    UsageCounters     what each key used, per UTC day and kind; quota checks  (the door, usage)
    WebhookOutbox     webhook events waiting for delivery, and how each went (the webhook worker)
    TaskStore         all five: what every backend is

Errors::

    StoreError
     +-- TaskNotFound        the task id is unknown
     +-- LeaseLost           the caller no longer holds the task's lease
     +-- TaskNotAccepting    the task's status refuses the write (``record_response(only_if=...)``)
     +-- InvalidCursor       a paging cursor this store did not hand out (also a ValueError)
     +-- IllegalTransition   (from subnet_proxy.tasks) the lifecycle table refuses the move
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from subnet_proxy.tasks import (
    Evaluation,
    FinalResult,
    MinerResponse,
    Task,
    TaskStatus,
    WebhookDelivery,
)


class StoreError(Exception):
    """Base of the store's own errors."""


class TaskNotFound(StoreError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} not found")
        self.task_id = task_id


class LeaseLost(StoreError):
    def __init__(self, task_id: str, claimer: str) -> None:
        super().__init__(f"task {task_id}: {claimer} does not hold its lease")
        self.task_id = task_id
        self.claimer = claimer


class TaskNotAccepting(StoreError):
    """A conditional write was refused because the task is not in an allowed status; nothing was
    stored. ``status`` is the status the store saw in the same atomic step."""

    def __init__(self, task_id: str, status: TaskStatus) -> None:
        super().__init__(f"task {task_id} is {status.value}; it does not accept this write")
        self.task_id = task_id
        self.status = status


class InvalidCursor(StoreError, ValueError):
    def __init__(self, cursor: str) -> None:
        super().__init__("invalid paging cursor")
        self.cursor = cursor[:80]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; pass ``next_cursor`` back to get the next (None: no more)."""

    tasks: list[Task]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a retention pass deleted, and the blobs those rows referenced (for the BlobStore)."""

    task_ids: list[str] = field(default_factory=list)
    blob_keys: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Usage:
    """What tasks used: how many, seconds of input audio, characters of input text."""

    tasks: int = 0
    audio_s: float = 0.0
    chars: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.tasks + other.tasks, self.audio_s + other.audio_s, self.chars + other.chars)

    def __neg__(self) -> Usage:
        return Usage(-self.tasks, -self.audio_s, -self.chars)


@dataclass(frozen=True, slots=True)
class UsageLimits:
    """A key's daily caps (None: no cap on that measure)."""

    tasks: int | None = None
    audio_s: float | None = None
    chars: int | None = None

    def exceeded(self, totals: Usage) -> list[str]:
        """The measures ``totals`` goes beyond (empty: within every cap)."""
        caps = (("tasks", self.tasks, totals.tasks), ("audio_s", self.audio_s, totals.audio_s),
                ("chars", self.chars, totals.chars))
        return [name for name, cap, used in caps if cap is not None and used > cap + 1e-9]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One counter: what ``owner`` used on UTC ``day`` with tasks of ``kind``."""

    owner: str
    day: date
    kind: str
    usage: Usage


class TaskRecords(abc.ABC):
    """The tasks themselves: create, read, list and move along the lifecycle.

    Every side of the proxy uses these: the side-server creates and reads client tasks, the
    synthetic loop creates challenges, the dispatcher and approval move a task to DONE, APPROVED or
    FAILED, health counts statuses. Kept apart from the queue: these name one task (a lease is
    checked only when the caller says it holds one, ``transition(claimer=...)``), where the queue
    decides which tasks a validator gets.
    """

    @abc.abstractmethod
    async def create_task(self, task: Task) -> tuple[Task, bool]:
        """Store a new PENDING task. With ``task.idempotency_key`` set, a second create by the same
        owner with the same key returns the first task and ``False`` instead of a duplicate."""

    @abc.abstractmethod
    async def get_task(self, task_id: str) -> Task:
        """The task, or TaskNotFound."""

    @abc.abstractmethod
    async def find_idempotent(self, owner: str, idempotency_key: str) -> Task | None:
        """The task ``owner`` created with ``idempotency_key``, if any (a replay refused by a quota
        still gets the task its first request made)."""

    @abc.abstractmethod
    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        """Tasks oldest first (``newest_first``: newest first, as a client's own listing shows them),
        optionally filtered, paged by an opaque cursor. A cursor from another listing (other filters or
        order) or none at all is InvalidCursor."""

    @abc.abstractmethod
    async def transition(
        self,
        task_id: str,
        target: TaskStatus,
        *,
        reason: str | None = None,
        error: tuple[str, str] | None = None,
        claimer: str | None = None,
        result: FinalResult | None = None,
        only_if: frozenset[TaskStatus] | None = None,
    ) -> Task:
        """Move a task along the lifecycle (checked by ``subnet_proxy.tasks.check_transition``),
        atomically. With ``claimer`` the caller must hold the lease (LeaseLost otherwise); with
        ``only_if`` the task must be in one of those statuses (IllegalTransition otherwise: a client's
        cancel must not fail a task that became DONE since it was read).
        ``error`` (code, message) is recorded on FAILED/EXPIRED. ``result`` (only with APPROVED) is
        stored as the final result in the same atomic step, so of two validators approving at once
        only the one whose move succeeds writes it; the other gets IllegalTransition and writes
        nothing."""

    @abc.abstractmethod
    async def count_by_status(self) -> dict[TaskStatus, int]:
        """Counts of every status (zero included), for health and metrics."""


class TaskQueue(abc.ABC):
    """The work queue the validator loop drives: claim under a lease, keep it, give it back.

    Only the forward loop and its dispatcher use these; each call names the claimer holding the
    lease (LeaseLost when it no longer does), and ``wait_for_task`` is how an idle validator sleeps
    until there is work without polling the database.
    """

    @abc.abstractmethod
    async def claim_tasks(
        self,
        claimer: str,
        *,
        limit: int,
        lease_s: float,
        kinds: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> list[Task]:
        """Atomically move up to ``limit`` of the oldest claimable tasks to DISTRIBUTED under a lease
        held by ``claimer``. Claimable: PENDING, or DISTRIBUTED whose lease has expired (that task
        goes back to PENDING in its timeline first). Two claimers never get the same task."""

    @abc.abstractmethod
    async def renew_lease(self, task_id: str, claimer: str, *, lease_s: float) -> Task:
        """Extend the lease; LeaseLost when ``claimer`` no longer holds it."""

    @abc.abstractmethod
    async def release_task(self, task_id: str, claimer: str, *, reason: str = "released") -> Task:
        """Give a DISTRIBUTED task back (DISTRIBUTED -> PENDING), e.g. on shutdown."""

    @abc.abstractmethod
    async def assign_miners(self, task_id: str, claimer: str, miners: list[tuple[int, str]]) -> Task:
        """Add (uid, hotkey) pairs to the task's assigned miners and count a dispatch attempt."""

    @abc.abstractmethod
    async def wait_for_task(self, timeout: float) -> bool:
        """Wait until a task may be claimable (a create or a release) or ``timeout`` passes, without
        polling the database in a loop. True when woken by a new task."""


class AnswerStore(abc.ABC):
    """What is said about a task: the miners' responses, the validators' evaluations, the final result.

    Written once per (task, miner) or (task, validator) by the dispatcher, the side-server's signed
    endpoints and approval; read by evaluation and the result endpoints. Records hang off an existing
    task (TaskNotFound otherwise) and are deleted with it by ``StoreMaintenance.purge``.
    """

    @abc.abstractmethod
    async def record_response(
        self, response: MinerResponse, *, only_if: frozenset[TaskStatus] | None = None
    ) -> tuple[MinerResponse, bool]:
        """Store a miner's answer once per (task_id, hotkey); a repeat returns the stored one and
        ``False``. The first valid response of a task is stored with ``is_first=True``; the
        first-answer mark only ever names a stored valid response (no failure leaves it dangling).
        With ``only_if``, the task's status is checked in the same atomic step as the write and
        TaskNotAccepting is raised (nothing stored) unless it is one of them: an answer cannot land
        on a task that was evaluated or failed between a caller's check and its write."""

    @abc.abstractmethod
    async def list_responses(self, task_id: str) -> list[MinerResponse]:
        """Every response to the task, in the order received."""

    @abc.abstractmethod
    async def first_response(self, task_id: str) -> MinerResponse | None:
        """The first valid response, as soon as one exists."""

    @abc.abstractmethod
    async def record_evaluation(self, evaluation: Evaluation) -> bool:
        """Store a validator's evaluation once per (task_id, validator_hotkey); False if a repeat."""

    @abc.abstractmethod
    async def list_evaluations(self, task_id: str) -> list[Evaluation]: ...

    @abc.abstractmethod
    async def set_final_result(self, result: FinalResult) -> None:
        """Record (or replace) the task's final result, whatever its status (approval writes its
        result with ``transition(..., result=...)`` instead, so it is written once per decision)."""

    @abc.abstractmethod
    async def get_final_result(self, task_id: str) -> FinalResult | None: ...


class StoreMaintenance(abc.ABC):
    """Upkeep of the store as a whole rather than of one task: retention, readiness, shutdown.

    Retention (``subnet_proxy.retention``) ends overdue tasks, deletes old finished ones and asks
    which blobs are still referenced; health pings; the owner closes. None of it is on a request's
    or a dispatch's path.
    """

    @abc.abstractmethod
    async def purge(self, *, status: TaskStatus, older_than: datetime, limit: int = 500) -> PurgeReport:
        """Delete up to ``limit`` tasks in ``status`` last updated before ``older_than``, with their
        responses, evaluations and result. Reports the blob keys they referenced."""

    @abc.abstractmethod
    async def expire_overdue(self, *, now: datetime | None = None, limit: int = 500) -> list[str]:
        """Move up to ``limit`` PENDING, DISTRIBUTED or DONE tasks whose ``deadline`` has passed to
        EXPIRED (error code ``"deadline"``, any lease dropped) and return their ids. Run by retention,
        so a task whose validator vanished still ends, and the client sees why."""

    @abc.abstractmethod
    async def blobs_in_use(self, keys: Iterable[str]) -> set[str]:
        """Of ``keys``, those some remaining task, response or result still refers to (blobs are
        content-addressed and may be shared, so retention must not delete a shared one)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise when the backend cannot be reached (readiness)."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class UsageCounters(abc.ABC):
    """Per key, UTC day and kind: how many tasks and how much input they carried, counted at the door.

    The side-server counts each accepted submission here (and checks a key's daily quota in the same
    step), so a usage report or a quota check reads a few counters instead of scanning tasks.
    """

    @abc.abstractmethod
    async def count_usage(self, owner: str, kind: str, used: Usage, *, day: date,
                          limits: UsageLimits | None = None) -> tuple[bool, Usage | None]:
        """Add ``used`` (negative: give back) to ``owner``'s counter of ``day`` and ``kind``. Without
        ``limits`` it is always counted, blindly (``(True, None)``: no read, the cheap path every
        submission of a key without quotas takes). With ``limits`` it is counted only when
        ``owner``'s totals of ``day`` over every kind, with it, stay within them, atomically: of
        concurrent counts against one quota, the ones counted never sum beyond it; the totals the
        check saw come back with whether it was counted."""

    @abc.abstractmethod
    async def usage(self, *, since: date, owner: str | None = None) -> list[UsageRow]:
        """Every counter from ``since`` on (of ``owner``, or of every key), by owner, day, kind."""


class WebhookOutbox(abc.ABC):
    """The webhook events of tasks, durable until delivered or given up: the side-server's webhook
    worker takes the due ones, sends them and writes back how it went; the status endpoint shows
    them. Rows hang off their task and are deleted with it by ``StoreMaintenance.purge``.
    """

    @abc.abstractmethod
    async def add_webhook(self, delivery: WebhookDelivery) -> bool:
        """Store a new event once per ``event_id``; False (nothing written) when it already exists."""

    @abc.abstractmethod
    async def due_webhooks(self, *, now: datetime, limit: int, lease_s: float) -> list[WebhookDelivery]:
        """Take up to ``limit`` pending events whose ``next_attempt_at`` has come, soonest first, and push
        their ``next_attempt_at`` to ``now + lease_s`` in the same atomic step: another worker (another
        process on the same store) does not take them while this one sends, and a worker that died
        holding them leaves them due again when the lease ends."""

    @abc.abstractmethod
    async def save_webhook(self, delivery: WebhookDelivery) -> None:
        """Write an event's state after an attempt (delivered, failed for good, or its next attempt)."""

    @abc.abstractmethod
    async def list_webhooks(self, task_id: str) -> list[WebhookDelivery]:
        """The task's events, oldest first."""


class TaskStore(TaskRecords, TaskQueue, AnswerStore, StoreMaintenance, UsageCounters, WebhookOutbox):
    """Durable task state shared by the side-server and the validator loop: every role at once.

    What every backend provides and what the embedding code passes around; a caller that needs only
    one role may take that role instead (retention takes ``StoreMaintenance``).
    """
