"""One runner base for the validator's loops (forward, weights, resync, retention, synthetic).

Each loop is its own small class with a ``run_step``; the runner owns start, stop and the pause
between steps. A failing step is logged with its traceback and retried after a growing backoff:
a long-running validator must outlive a flaky chain endpoint or a full disk for a while, and the
log shows every failure (nothing is swallowed). ``stop`` ends the loop between steps.
"""

from __future__ import annotations

import abc
import asyncio
import logging

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


class LoopRunner(abc.ABC):
    """Runs ``run_step`` until stopped, pausing ``interval_s`` (or ``wait_next``) between steps."""

    name: str = "loop"

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self.steps = 0
        self.failures = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run_step(self) -> None:
        """One unit of the loop's work."""

    async def wait_next(self) -> None:
        """The pause before the next step; returns early when stopping."""
        await self.sleep(self.interval_s)

    async def sleep(self, seconds: float) -> None:
        """Sleep that a stop interrupts."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            pass

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Ask the loop to end and wait for its current step to finish."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                await self.run_step()
                self.steps += 1
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged with traceback, retried: the loop must outlive it
                self.failures += 1
                log.exception("%s: step failed; retrying in %.0f s", self.name, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            await self.wait_next()
