"""Uploads the side-server is taking in now, so a validator's background work in the same process yields to them.

A validator runs its side-server and its forward loop on one event loop, in one process whose
threads share one GIL. Without this, a burst of submissions and the loop working through the
tasks it brings compete for the same CPU, and clients wait on both (measured in
``scripts/bench_ingest.py``: the ingest rate halved, p99 latency in the hundreds of ms). The
side-server counts its POST requests in flight here (task submissions, miner deliveries: the
requests a client waits on to hand work over; GET long-polls and event streams are left out, they
stay open for minutes); the forward loop, before it claims more tasks, waits until none is in flight
or ``--neuron.yield_to_ingest_s`` has passed, whichever comes first. Submissions are taken in first
and queue in the store; the loop still claims at least once per that period, so a sustained flood
slows dispatch down to a floor and never stops it.
"""

from __future__ import annotations

import asyncio


class IngestActivity:
    """POST requests in flight on the side-server, and a wait for a moment with none."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight == 1:
            self._quiet.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._quiet.set()

    async def quiet(self, max_wait_s: float) -> bool:
        """Wait until no upload is in flight, at most ``max_wait_s``; whether it got quiet."""
        if self.in_flight == 0:
            return True
        if max_wait_s <= 0:
            return False
        try:
            async with asyncio.timeout(max_wait_s):
                await self._quiet.wait()
        except TimeoutError:
            return False
        return True
