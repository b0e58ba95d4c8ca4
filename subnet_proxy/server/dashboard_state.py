"""The one dashboard state every open page shares: rebuilt when the monitor's version moved, at most once
per ``PUSH_S``, and at least every ``MAX_AGE_S`` (counts moved by other processes, ages)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: how often a live feed looks for a new state (and the shortest time between two rebuilds).
PUSH_S = 1.0
#: the oldest a state is served.
MAX_AGE_S = 10.0


class SharedState:
    """The latest dashboard state, rebuilt on demand under the rules of the module docstring."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.builds = 0
        self._version: int | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, version: int, build: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        async with self._lock:
            since = time.monotonic() - self._at
            if self.state is None or since >= MAX_AGE_S or (version != self._version and since >= PUSH_S):
                self.state = await build()
                self.builds += 1
                self._version, self._at = version, time.monotonic()
            return self.state
