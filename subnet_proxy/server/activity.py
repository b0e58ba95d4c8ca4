"""Uploads the side-server is taking in now, so a validator's background work in the same process yields to them.

A validator runs its side-server and its forward loop on one event loop, in one process whose
threads share one GIL. Without this, a burst of submissions and the loop working through the
tasks it brings compete for the same CPU, and clients wait on both (measured in
``scripts/bench_ingest.py``: the ingest rate halved, p99 latency in the hundreds of ms). The
side-server counts its POST requests in flight here (task submissions, miner deliveries: the
requests a client waits on to hand work over; GET long-polls and event streams are left out, they
stay open for minutes); the forward loop, when one is in flight as it is about to claim more tasks,
waits until none has been for ``SETTLE_S``, or ``--neuron.yield_to_ingest_s`` has passed, whichever
comes first. Submissions are taken in first and queue in the store; the loop still claims at least
once per that period, so a sustained flood slows dispatch down to a floor and never stops it.
"""

from __future__ import annotations

import asyncio
import time

#: how long no upload may be in flight before it counts as quiet: under a flood the count touches 0
#: between one batch of answers and the next requests (the load generator answers in lockstep).
SETTLE_S = 0.05


class IngestActivity:
    """POST requests in flight on the side-server, and a wait for a quiet moment (none for ``SETTLE_S``)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._idle_since = time.monotonic()

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight == 1:
            self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle_since = time.monotonic()
            self._idle.set()

    async def quiet(self, max_wait_s: float) -> bool:
        """Wait until no upload has been in flight for ``SETTLE_S``, at most ``max_wait_s``; whether it got quiet."""
        deadline = time.monotonic() + max_wait_s
        while True:
            now = time.monotonic()
            idle_for = now - self._idle_since if self.in_flight == 0 else 0.0
            if idle_for >= SETTLE_S:
                return True
            if now >= deadline:
                return False
            if self.in_flight:
                try:
                    async with asyncio.timeout(deadline - now):
                        await self._idle.wait()
                except TimeoutError:
                    return False
            else:
                await asyncio.sleep(min(SETTLE_S - idle_for, deadline - now))
