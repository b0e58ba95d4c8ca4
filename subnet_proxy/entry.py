"""What the two neuron entry points share: flags, then the extras check, then the neuron until SIGINT/SIGTERM.

The entry points (``subnet_proxy.validator.main``, ``subnet_proxy.miner.main``) hand ``run_neuron`` a
loader that imports the neuron only after its extra is known to be installed, so ``--help`` works
on a base install and a missing extra is one line naming it, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

from subnet_proxy.config import Settings, build_settings
from subnet_proxy.extras import MissingExtra, require
from subnet_proxy.heap import fix_mmap_threshold, limit_arenas
from subnet_proxy.telemetry import setup_logging

Neuron = Callable[[Settings, asyncio.Event], Awaitable[None]]
#: imports a neuron: its run coroutine and the set-up errors that end it with status 1 and one log line.
NeuronLoader = Callable[[], tuple[Neuron, tuple[type[BaseException], ...]]]


def serve_until_signal(neuron: Neuron, settings: Settings) -> None:
    """Run ``neuron(settings, stop)`` on a new event loop; SIGINT/SIGTERM set ``stop`` (a graceful stop)."""

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await neuron(settings, stop)

    asyncio.run(serve())


def run_neuron(argv: Sequence[str] | None, *, role: str, description: str, load: NeuronLoader,
               sections: Sequence[str] | None = None) -> int:
    """The exit status of one neuron run: 0 after a graceful stop, 1 after a set-up problem (logged)."""
    limit_arenas()  # before any thread: a neuron runs for weeks (heap.py)
    fix_mmap_threshold()
    settings = build_settings(argv, description, sections=sections)
    setup_logging(settings.logging)
    log = logging.getLogger(f"subnet_proxy.{role}")
    try:
        require(settings, role)
    except MissingExtra as exc:
        log.error("%s cannot start: %s", role, exc)
        return 1
    neuron, errors = load()
    try:
        serve_until_signal(neuron, settings)
    except errors as exc:
        log.error("%s cannot start: %s", role, exc)
        return 1
    return 0
