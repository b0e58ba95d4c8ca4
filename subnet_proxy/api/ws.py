"""The messages of ``GET /api/v1/ws`` (JSON text frames), shared by the server, the client and OpenAPI.

Client -> server::

    {"type": "subscribe", "task_ids": ["<id>", ...], "since": "<ISO time>"}   # since: optional
    {"type": "subscribe", "all": true}                                         # every own task from now on
    {"type": "unsubscribe", "task_ids": ["<id>", ...]}   or   {"type": "unsubscribe", "all": true}

Server -> client::

    {"type": "subscribed", "task_ids": [...], "all": false, "refused": [...]}   # refused: unknown or not yours
    {"type": "unsubscribed", "task_ids": [...], "all": false}
    {"type": "event", "task_id": "...", "event": "status|response|result|end", "at": "<ISO time>", "data": {...}}
    {"type": "error", "error": {"code": "...", "message": "..."}}

``data`` is what the task's server-sent events carry. A subscription replays the task's events so
far, then sends each new one; ``since`` replays only those at or after it: a client that reconnects
passes the ``at`` of the last event it got for the task and receives that event again (at least
once), then every later one. ``end`` is the task's last event; its subscription then ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

#: the subprotocol a client offers (and the server selects); browsers offer ``bearer.<API key>`` too.
WS_PROTOCOL = "subnet-proxy.v1"
#: the prefix of the subprotocol that carries the API key (a browser cannot set headers on a WebSocket).
KEY_PROTOCOL_PREFIX = "bearer."
#: close code of a connection whose client reads too slowly: its bounded outgoing queue overflowed.
CLOSE_SLOW_CONSUMER = 4008
#: close code when the server shuts down (RFC 6455 "going away").
CLOSE_GOING_AWAY = 1001

TaskId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subscribe(_Message):
    """Follow these tasks (your own; an admin key any), or ``all`` of your tasks as they change."""

    type: Literal["subscribe"]
    task_ids: list[TaskId] = Field(default_factory=list, max_length=1000)
    all: bool = False
    since: datetime | None = Field(None, description="Replay only the events at or after this instant.")

    @model_validator(mode="after")
    def _one_target(self) -> Subscribe:
        if bool(self.task_ids) == self.all:
            raise ValueError("give either task_ids or all=true")
        return self


class Unsubscribe(_Message):
    type: Literal["unsubscribe"]
    task_ids: list[TaskId] = Field(default_factory=list, max_length=1000)
    all: bool = False


class ClientMessage(RootModel[Annotated[Subscribe | Unsubscribe, Field(discriminator="type")]]):
    """What a client sends."""


class Subscribed(_Message):
    type: Literal["subscribed"] = "subscribed"
    task_ids: list[str]
    all: bool = False
    refused: list[str] = Field(default_factory=list, description="Unknown task ids, or another client's.")


class Unsubscribed(_Message):
    type: Literal["unsubscribed"] = "unsubscribed"
    task_ids: list[str]
    all: bool = False


class TaskEvent(_Message):
    type: Literal["event"] = "event"
    task_id: str
    event: Literal["status", "response", "result", "end"]
    at: datetime
    data: dict[str, Any]


class WsErrorDetail(_Message):
    code: str
    message: str


class WsError(_Message):
    type: Literal["error"] = "error"
    error: WsErrorDetail


class ServerMessage(RootModel[Annotated[Subscribed | Unsubscribed | TaskEvent | WsError,
                                        Field(discriminator="type")]]):
    """What the server sends."""


class WatchState:
    """A client's side of following tasks across reconnects: what to subscribe to (each task from the
    instant of its last event), which replayed events it already had, and when it is done."""

    def __init__(self, task_ids: list[str], *, everything: bool, since: datetime | None) -> None:
        self.everything, self.all_since = everything, since
        #: the tasks still followed by id -> the instant of the last event received (or ``since``).
        self.open: dict[str, datetime | None] = dict.fromkeys(task_ids, since)
        self._at_last: dict[str, set[str]] = {}

    def subscriptions(self) -> list[Subscribe]:
        by_since: dict[datetime | None, list[str]] = {}
        for task_id, since in self.open.items():
            by_since.setdefault(since, []).append(task_id)
        subs = [Subscribe(type="subscribe", task_ids=ids, since=since) for since, ids in by_since.items()]
        if self.everything:
            subs.append(Subscribe(type="subscribe", all=True, since=self.all_since))
        return subs

    def accept(self, event: TaskEvent, raw: str) -> bool:
        """False for an event received before (replayed at its ``since``); records the others."""
        if self.everything and (self.all_since is None or event.at > self.all_since):
            self.all_since = event.at
        last = self.open.get(event.task_id)
        seen = self._at_last.setdefault(event.task_id, set())
        if last is not None and event.at == last and raw in seen:
            return False
        if last is None or event.at > last:
            seen.clear()
            if event.task_id in self.open:
                self.open[event.task_id] = event.at
        seen.add(raw)
        if event.event == "end":
            self.open.pop(event.task_id, None)
            self._at_last.pop(event.task_id, None)
        return True

    @property
    def done(self) -> bool:
        return not self.open and not self.everything
