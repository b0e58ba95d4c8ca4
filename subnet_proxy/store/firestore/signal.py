"""The new-task signal of the Firestore store: a snapshot listener, or a short poll where none can run.

``wait_for_task`` must wake when any process adds (or releases) a task, without a database query
loop. The listener watches the oldest PENDING task (``status == pending``, ordered by ``created_at``,
limit 1): a change to that one-document window means there is claimable work. google-cloud-firestore
runs listeners only on its synchronous client (a gRPC stream in a background thread), so the signal
owns one, and hops each callback onto the event loop. Where a listener cannot serve (a proxy in
front of Firestore that cuts streams, ``--store.firestore_listen false``), it polls the same query
every ``poll_s`` seconds instead. Creates and releases in this process wake waiters at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from google.cloud import firestore

from subnet_proxy.firestore_client import close_client
from subnet_proxy.tasks import TaskStatus
from subnet_proxy.waits import wait_set


def pending_query(collection: Any) -> Any:
    """The oldest PENDING task (works on a sync or an async collection reference)."""
    return (
        collection.where(filter=firestore.FieldFilter("status", "==", TaskStatus.PENDING.value))
        .order_by("created_at")
        .limit(1)
    )


class NewTaskSignal:
    """One per store: ``wait`` returns True when a task may have become claimable."""

    def __init__(
        self,
        *,
        listen: bool,
        make_listener_collection: Callable[[], Any],
        oldest_pending: Callable[[], Awaitable[str | None]],
        poll_s: float,
    ) -> None:
        self._listen = listen
        self._make_listener_collection = make_listener_collection
        self._oldest_pending = oldest_pending
        self._last_oldest: str | None = None
        self._poll_s = poll_s
        self._event = asyncio.Event()
        self._watch: Any = None
        self._sync_client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def mode(self) -> str:
        return "listener" if self._listen else "poll"

    def notify(self) -> None:
        """A task was created or released in this process."""
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        if self._event.is_set():
            self._event.clear()
            return True
        if self._listen:
            await self._ensure_listener()
            return await self._wait_event(timeout)
        return await self._poll(timeout)

    async def _wait_event(self, timeout: float) -> bool:
        if not await wait_set(self._event, timeout):
            return False
        self._event.clear()
        return True

    async def _poll(self, timeout: float) -> bool:
        """Wake when the oldest PENDING task differs from the last poll's, as the listener does: a
        backlog nobody here claims (say, of other kinds) must not wake a waiter on every poll."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            oldest = await self._oldest_pending()
            changed = oldest is not None and oldest != self._last_oldest
            self._last_oldest = oldest
            if changed:
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            if await self._wait_event(min(self._poll_s, left)):
                return True

    async def _ensure_listener(self) -> None:
        if self._watch is not None:
            return
        self._loop = asyncio.get_running_loop()
        collection, self._sync_client = await asyncio.to_thread(self._make_listener_collection)
        self._watch = pending_query(collection).on_snapshot(self._on_snapshot)

    def _on_snapshot(self, docs: list[Any], changes: list[Any], read_time: Any) -> None:
        """Runs in the listener's thread: only hop onto the loop (the event is not thread-safe)."""
        loop = self._loop
        if docs and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._event.set)

    async def close(self) -> None:
        watch, client = self._watch, self._sync_client
        self._watch = self._sync_client = None
        if watch is not None:
            await asyncio.to_thread(watch.unsubscribe)
        if client is not None:
            await close_client(client)
