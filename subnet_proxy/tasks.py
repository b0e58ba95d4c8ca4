"""The task model: what a client asked, what miners answered, how it was judged, and the lifecycle.

Every status change goes through :func:`check_transition`, the one table of legal moves, and is
stamped into the task's timeline, so the status endpoint can show when each step happened and no
backend can invent a move the others would refuse.

    PENDING -> DISTRIBUTED -> DONE -> APPROVED
       |           |  ^        |
       |           v  |        v
       +------> FAILED / EXPIRED      (DISTRIBUTED -> PENDING: lease expired or released)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskIdSource:
    """Task ids: 32 lowercase hex characters, the one rule for every task, client or synthetic.

    Miners see task ids on the wire (``task_id`` of a synapse), so an id must not tell where or
    when its task was made: an id made another way for one source would set synthetic challenges
    apart from client tasks, and a clock in it would show how long a task waited. An id is 8 hex
    characters of a prefix drawn at random for each 1/16 s window (per process), then 24 of
    randomness of its own (96 bits). Why the window prefix: the ids of one window sort together, so
    the tasks one group commit writes land in a few pages of SQLite's task-id index instead of one
    page each (measured on 30,000 creates in groups of 13, as the ingest benchmark makes them:
    insert and commit 10 us a task instead of 21, checkpoints half as long); and as prefixes are random, not rising, a
    Firestore collection still takes writes all over its key range (no hot tail). What it tells
    anyone: that two tasks were made by one process within 1/16 s of each other, whatever made them.
    """

    WINDOWS_PER_S = 16

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._window: tuple[int, str] = (-1, "")

    def __call__(self) -> str:
        now = int(self._clock() * self.WINDOWS_PER_S)
        window = self._window  # one read: another thread may replace it meanwhile (either is fine)
        if window[0] != now:
            window = self._window = (now, os.urandom(4).hex())
        return window[1] + os.urandom(12).hex()


#: the process's task ids (``Task.task_id``'s default).
new_task_id = TaskIdSource()


class TaskKind(StrEnum):
    """The built-in kinds' names. Which kinds exist is the registry's to say (``subnet_proxy.kinds``):
    a task's kind is any registered name (``KindName``), these are only the ones shipped."""

    TRANSCRIPTION = "transcription"
    TTS = "tts"
    SUMMARIZATION = "summarization"


#: a kind's name on the wire, in URLs and in storage: a lowercase word.
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


def _builtin_member(name: str) -> str:
    """A built-in name as its TaskKind member (so ``task.kind is TaskKind.TTS`` keeps holding), any
    other name as it is: a kind registered elsewhere is a plain string."""
    try:
        return TaskKind(name)
    except ValueError:
        return name


#: a task kind's name. Whether it is registered is checked where the kind is used (the registry), not
#: here: the task model sits below the kinds and must load tasks of any kind.
KindName = Annotated[str, Field(pattern=KIND_PATTERN, examples=[k.value for k in TaskKind]),
                     AfterValidator(_builtin_member)]


class TaskStatus(StrEnum):
    PENDING = "pending"
    DISTRIBUTED = "distributed"
    DONE = "done"
    APPROVED = "approved"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.APPROVED, TaskStatus.FAILED, TaskStatus.EXPIRED})

#: the one table of legal moves; everything else raises IllegalTransition.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.DISTRIBUTED, TaskStatus.FAILED, TaskStatus.EXPIRED}),
    TaskStatus.DISTRIBUTED: frozenset(
        {TaskStatus.PENDING, TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.EXPIRED}
    ),
    TaskStatus.DONE: frozenset({TaskStatus.APPROVED, TaskStatus.FAILED, TaskStatus.EXPIRED}),
    TaskStatus.APPROVED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.EXPIRED: frozenset(),
}


class IllegalTransition(ValueError):
    """A status change the lifecycle table does not allow."""

    def __init__(self, task_id: str, current: TaskStatus, target: TaskStatus) -> None:
        super().__init__(f"task {task_id}: {current.value} -> {target.value} is not a legal transition")
        self.task_id = task_id
        self.current = current
        self.target = target


def check_transition(task_id: str, current: TaskStatus, target: TaskStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(task_id, current, target)


class _Model(BaseModel):
    # NaN/Infinity would be written to JSON as null and then fail every read of the row: refuse them.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Transition(_Model):
    """One step of the timeline."""

    status: TaskStatus
    at: datetime
    reason: str | None = None


class TaskError(_Model):
    code: str
    message: str


class TaskInput(_Model):
    """What the miners are asked. Audio lives in the BlobStore; ``audio_blob`` is its key."""

    audio_blob: str | None = None
    audio_format: str | None = None
    audio_seconds: float | None = None
    language: str | None = None
    text: str | None = None
    voice: str | None = None
    max_words: int | None = None


class Task(_Model):
    """A unit of work, from client submission (or a synthetic challenge) to its final result."""

    task_id: str = Field(default_factory=new_task_id)
    kind: KindName
    status: TaskStatus = TaskStatus.PENDING
    owner: str = Field(description="API key id of the client, or 'synthetic:<validator hotkey>'.")
    idempotency_key: str | None = None
    input: TaskInput
    #: known answer of a synthetic challenge; never shown to clients or miners.
    ground_truth: str | None = None
    synthetic: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deadline: datetime | None = None
    timeline: list[Transition] = Field(default_factory=list)
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    #: (uid, hotkey) of the miners this task was sent to; only they may answer it.
    assigned: list[tuple[int, str]] = Field(default_factory=list)
    error: TaskError | None = None
    #: where the client asked for webhook events (checked at the door: http(s), a public host).
    callback_url: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if not self.timeline:
            self.timeline.append(Transition(status=self.status, at=self.created_at))

    @property
    def blob_keys(self) -> list[str]:
        """Blobs this task's input refers to (outputs are referenced by responses and results)."""
        return [self.input.audio_blob] if self.input.audio_blob else []

    def moved(self, target: TaskStatus, *, at: datetime | None = None, reason: str | None = None) -> "Task":
        """A copy of this task moved to ``target``; raises IllegalTransition where the table says no."""
        check_transition(self.task_id, self.status, target)
        at = at or utcnow()
        update: dict[str, Any] = {
            "status": target,
            "updated_at": at,
            "timeline": [*self.timeline, Transition(status=target, at=at, reason=reason)],
        }
        if target is not TaskStatus.DISTRIBUTED:
            update.update(lease_owner=None, lease_expires_at=None)
        return self.model_copy(update=update)


ResponseState = Literal["ok", "invalid", "timeout", "error"]


class MinerResponse(_Model):
    """One miner's answer to one task, keyed by (task_id, hotkey): recorded once, never twice.

    ``latency_s`` is what the validator measured; a miner never reports its own timing or score.
    Audio outputs live in the BlobStore under ``output_blob``.
    """

    task_id: str
    hotkey: str
    uid: int
    state: ResponseState
    latency_s: float | None = None
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    output_blob: str | None = None
    output_format: str | None = None
    output_sample_rate: int | None = None
    status_code: int | None = None
    message: str | None = None
    received_at: datetime = Field(default_factory=utcnow)
    #: set by the store: true for the first valid (state == "ok") response of the task.
    is_first: bool = False

    @property
    def valid(self) -> bool:
        return self.state == "ok"


class MinerReward(_Model):
    uid: int
    hotkey: str
    reward: float = Field(ge=0.0, le=1.0)
    breakdown: dict[str, float] = Field(default_factory=dict)


class Evaluation(_Model):
    """One validator's judgement of every answer to a task (once per validator per task)."""

    task_id: str
    validator_hotkey: str
    rewards: list[MinerReward]
    stake: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)


class FinalResult(_Model):
    """The answer a client gets: the best valid response, chosen by evaluation."""

    task_id: str
    kind: KindName
    hotkey: str
    uid: int
    score: float
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    output_blob: str | None = None
    output_format: str | None = None
    output_sample_rate: int | None = None
    decided_at: datetime = Field(default_factory=utcnow)


WebhookState = Literal["pending", "delivered", "failed"]


class WebhookDelivery(_Model):
    """One webhook event of one task and how its delivery went: the store's outbox row.

    Kept in the store from the moment the event happens, so a restart resumes what was pending. The
    event's JSON (``body``) is fixed when it is made: every attempt sends the same bytes, signed anew
    with the time of the attempt. ``owner`` is the API key whose webhook secret signs it (else the
    validator's). ``next_attempt_at`` is when a worker may take it (pushed out while one holds it).
    """

    event_id: str
    task_id: str
    owner: str
    url: str
    event_type: str
    body: str
    created_at: datetime
    next_attempt_at: datetime
    state: WebhookState = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class MinerStat(_Model):
    """What the validator knows of one miner: the public ``GET /api/v1/miners`` row and metrics."""

    uid: int
    hotkey: str
    ema_score: float
    latency_s: float | None = None
    success_rate: float | None = None
    last_weight: float | None = None
    attempts: int = 0
    consecutive_failures: int = 0
