"""One runner base for the validator's loops (forward, weights, resync, retention, synthetic).

Each loop is its own small class with a ``run_step``; the runner owns start, stop and the pause
between steps. A failing step is logged with its traceback and retried after a growing backoff:
a long-running validator must outlive a flaky chain endpoint or a full disk for a while, and the
log shows every failure (nothing is swallowed). ``stop`` ends the loop between steps.

The runner keeps what health needs to tell a stalled loop from a quiet one: when it started, when a
step last succeeded, and the failures in a row with the last one's class name.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time

from subnet_proxy.waits import wait_set

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


class LoopRunner(abc.ABC):
    """Runs ``run_step`` until stopped, pausing ``interval_s`` (or ``wait_next``) between steps."""

    name: str = "loop"

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self.steps = 0
        self.failures = 0
        #: failures since the last successful step, and the class name of the last one.
        self.consecutive_failures = 0
        self.last_error: str | None = None
        #: ``time.monotonic()`` at start and at the end of the last successful step (None: not yet).
        self.started_at: float | None = None
        self.last_ok_at: float | None = None
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
        await wait_set(self._stopping, seconds)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self.stopping

    def start(self) -> None:
        if self._task is None:
            self.started_at = time.monotonic()
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
                self.consecutive_failures = 0
                self.last_ok_at = time.monotonic()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged with traceback, retried: the loop must outlive it
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = type(exc).__name__
                log.exception("%s: step failed; retrying in %.0f s", self.name, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            await self.wait_next()
