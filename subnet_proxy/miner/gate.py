"""A priority gate in front of the engines: when every model slot is busy, the highest stake goes next.

bittensor's axon computes a priority but only uses it to order a no-op in its thread pool; the
forward functions all run at once on the axon's event loop. This gate makes the priority real: it
admits at most ``slots`` model calls (the engine workers) and hands each freed slot to the waiting
caller with the highest priority (first come first served among equals). A caller that gives up
while waiting (its synapse timed out) leaves the queue without ever taking a slot.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PriorityGate:
    """An asyncio semaphore whose waiters are woken by priority, highest first."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._free = slots
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    async def acquire(self, priority: float) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._order), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted in the same instant it was abandoned: pass the slot on
            raise

    def release(self) -> None:
        """Give the slot to the best waiter still waiting, else free it."""
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self._free += 1
