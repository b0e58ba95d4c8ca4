"""The WebSocket hub: which connection follows which task, fed by the store's change feed.

One listener on ``TaskEvents`` (``store/watched.py``) marks changed tasks; one worker reads each
changed task once (``feed.read_snapshot``) and hands the snapshot to every connection following it,
so a task followed by a thousand clients costs one read per change and one encoding per event. A
connection follows tasks by id, or all of its key's tasks (``everything``: tasks are matched to
their owner, remembered per task id, so other owners' changes cost no read after the first).
Followed tasks are also re-read every ``--proxy.watch_poll_s`` (changes another process made are
not published here); tasks seen only through ``all`` are not.

Memory per connection is bounded: at most ``--proxy.ws_subscriptions`` followed tasks (the tasks an
``all`` subscription saw are forgotten oldest first past that, and every task once it ends: its id
alone is kept, as many as that bound, so a write after the end (a webhook attempt saved, a peer's
evaluation) does not replay its events as a newly seen task's), and at
most ``--proxy.ws_queue`` messages waiting to be sent: a client that reads slower than its events
arrive is closed with code 4008 (``CLOSE_SLOW_CONSUMER``) and its queue dropped, instead of the
queue growing. Messages are not compressed (a deflate context is about 256 KB a connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, OrderedDict, deque
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from subnet_proxy.api.ws import CLOSE_SLOW_CONSUMER
from subnet_proxy.config import ProxySettings
from subnet_proxy.keys import ApiKey
from subnet_proxy.server.feed import FeedCursor, FeedEvent, TaskSnapshot, read_snapshot
from subnet_proxy.store.base import TaskNotFound
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.waits import wait_set

log = logging.getLogger("subnet_proxy.server")

#: seconds a slow consumer's close handshake may take before its socket is dropped.
CLOSE_TIMEOUT_S = 5.0
#: changed tasks read at once by the worker.
_BATCH = 64
#: task owners remembered (owners never change), so changes of tasks nobody follows cost no read.
_OWNERS_KEPT = 65_536


def encode(task_id: str, event: FeedEvent) -> str:
    if event.wire is None:
        event.wire = json.dumps({"type": "event", "task_id": task_id, "event": event.name,
                                 "at": event.at.isoformat(), "data": event.data}, separators=(",", ":"))
    return event.wire


class WsConnection:
    """One client's socket: what it follows, and its bounded queue of messages being sent."""

    def __init__(self, ws: web.WebSocketResponse, api_key: ApiKey, settings: ProxySettings) -> None:
        self.ws = ws
        self.api_key = api_key
        self.queue_limit = settings.ws_queue
        self.max_follows = settings.ws_subscriptions
        #: tasks followed by id.
        self.cursors: dict[str, FeedCursor] = {}
        #: tasks seen through an ``all`` subscription (oldest change first), when ``all_since`` is set.
        self.seen: OrderedDict[str, FeedCursor] = OrderedDict()
        #: tasks seen through ``all`` that ended (oldest first): not seen again.
        self.ended: OrderedDict[str, None] = OrderedDict()
        self.everything = False
        self.all_since: datetime | None = None
        self.queue: deque[str] = deque()
        #: the most messages ever waiting at once (never above ``queue_limit``).
        self.high_water = 0
        self.closing = False
        self._ready = asyncio.Event()
        self._writer = asyncio.create_task(self._write())
        self._closer: asyncio.Task[None] | None = None

    def send(self, message: str | BaseModel) -> None:
        """Queue a message; past the bound the connection is closed as a slow consumer."""
        if self.closing:
            return
        if len(self.queue) >= self.queue_limit:
            self._close_slow()
            return
        self.queue.append(message if isinstance(message, str) else message.model_dump_json())
        self.high_water = max(self.high_water, len(self.queue))
        self._ready.set()

    def error(self, code: str, message: str) -> None:
        self.send(json.dumps({"type": "error", "error": {"code": code, "message": message}}))

    def cursor_for(self, task_id: str, owner: str) -> FeedCursor | None:
        """This connection's cursor for a changed task: followed by id, or seen through ``all``."""
        cursor = self.cursors.get(task_id)
        if cursor is not None or not self.everything or owner != self.api_key.key_id:
            return cursor
        cursor = self.seen.get(task_id)
        if cursor is None and task_id in self.ended:
            return None
        if cursor is None:
            cursor = self.seen[task_id] = FeedCursor(since=self.all_since)
            if len(self.seen) > self.max_follows:
                self.seen.popitem(last=False)
        else:
            self.seen.move_to_end(task_id)
        return cursor

    def deliver(self, snapshot: TaskSnapshot, cursor: FeedCursor) -> bool:
        """Send what ``cursor`` has not had of ``snapshot``; True when the task ended (stop following)."""
        task_id = snapshot.task.task_id
        for event in snapshot.events_after(cursor):
            self.send(encode(task_id, event))
        if cursor.ended:
            self.cursors.pop(task_id, None)
            if self.seen.pop(task_id, None) is not None:
                self.ended[task_id] = None
                if len(self.ended) > self.max_follows:
                    self.ended.popitem(last=False)
        return cursor.ended

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionResetError):
            while True:
                await self._ready.wait()
                while self.queue:
                    await self.ws.send_str(self.queue.popleft())
                self._ready.clear()

    def _close_slow(self) -> None:
        self.closing = True
        self.queue.clear()
        self._writer.cancel()
        log.info("closing a WebSocket of key %s: more than %d messages waiting (slow consumer)",
                 self.api_key.key_id, self.queue_limit)
        self._closer = asyncio.create_task(self.close(CLOSE_SLOW_CONSUMER, "slow consumer: messages came faster "
                                                      "than they were read"))

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code`` (behind what was already written); the socket is dropped if that stalls."""
        self.closing = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.TimeoutError, ConnectionResetError):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_S)

    async def stop(self) -> None:
        self._writer.cancel()
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)
        await asyncio.gather(self._writer, return_exceptions=True)


class WsHub:
    """Every open WebSocket connection and what it follows; one worker turns task changes into messages."""

    def __init__(self, store: WatchedStore, settings: ProxySettings) -> None:
        self.store = store
        self.settings = settings
        self.connections: set[WsConnection] = set()
        self.per_key: Counter[str] = Counter()
        self.followers: dict[str, set[WsConnection]] = {}
        self.everything: dict[str, set[WsConnection]] = {}
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._unlisten = store.events.listen(self._changed)

    # -- connections ------------------------------------------------------------------------------
    def open(self, conn: WsConnection) -> None:
        self.connections.add(conn)
        self.per_key[conn.api_key.key_id] += 1
        if self._worker is None:
            self._worker = asyncio.create_task(self._run())

    async def close(self, conn: WsConnection) -> None:
        for task_id in list(conn.cursors):
            self.unfollow(conn, task_id)
        self.unfollow_all(conn)
        self.connections.discard(conn)
        key_id = conn.api_key.key_id
        self.per_key[key_id] -= 1
        if self.per_key[key_id] <= 0:
            del self.per_key[key_id]
        await conn.stop()

    def follow(self, conn: WsConnection, task_id: str, cursor: FeedCursor) -> None:
        conn.cursors[task_id] = cursor
        self.followers.setdefault(task_id, set()).add(conn)

    def unfollow(self, conn: WsConnection, task_id: str) -> None:
        conn.cursors.pop(task_id, None)
        followers = self.followers.get(task_id)
        if followers is not None:
            followers.discard(conn)
            if not followers:
                del self.followers[task_id]

    def follow_all(self, conn: WsConnection, since: datetime | None) -> None:
        conn.everything, conn.all_since = True, since
        self.everything.setdefault(conn.api_key.key_id, set()).add(conn)

    def unfollow_all(self, conn: WsConnection) -> None:
        conn.everything = False
        conn.seen.clear()
        conn.ended.clear()
        owners = self.everything.get(conn.api_key.key_id)
        if owners is not None:
            owners.discard(conn)
            if not owners:
                del self.everything[conn.api_key.key_id]

    def deliver(self, conn: WsConnection, snapshot: TaskSnapshot) -> None:
        cursor = conn.cursor_for(snapshot.task.task_id, snapshot.task.owner)
        if cursor is not None and conn.deliver(snapshot, cursor):
            self.unfollow(conn, snapshot.task.task_id)

    # -- the change feed ----------------------------------------------------------------------------
    def _changed(self, task_id: str) -> None:
        owner = self._owners.get(task_id)
        if task_id in self.followers or (self.everything and (owner is None or owner in self.everything)):
            self._dirty.add(task_id)
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.settings.watch_poll_s
        while True:
            await wait_set(self._wake, next_poll - loop.time())
            self._wake.clear()
            if loop.time() >= next_poll:  # the backstop: changes other processes made
                self._dirty.update(self.followers)
                next_poll = loop.time() + self.settings.watch_poll_s
            while self._dirty:
                batch = [self._dirty.pop() for _ in range(min(_BATCH, len(self._dirty)))]
                await asyncio.gather(*(self._refresh(task_id) for task_id in batch))

    async def _refresh(self, task_id: str) -> None:
        try:
            task = await self.store.get_task(task_id)
        except TaskNotFound:  # purged: nothing more will happen to it
            for conn in list(self.followers.get(task_id, ())):
                self.unfollow(conn, task_id)
            return
        except Exception:  # the worker outlives a failing read; the next change or poll tries again
            log.exception("WebSocket hub: reading task %s failed", task_id)
            return
        self._owners[task_id] = task.owner
        if len(self._owners) > _OWNERS_KEPT:
            self._owners.popitem(last=False)
        targets = self.followers.get(task_id, set()) | self.everything.get(task.owner, set())
        if not targets:
            return
        try:
            snapshot = await read_snapshot(self.store, task)
        except Exception:
            log.exception("WebSocket hub: reading task %s's answers failed", task_id)
            return
        for conn in targets:
            self.deliver(conn, snapshot)

    async def shutdown(self, code: int, reason: str) -> None:
        """Close every connection (server shutdown) and stop the worker."""
        self._unlisten()
        await asyncio.gather(*(conn.close(code, reason) for conn in list(self.connections)))
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
