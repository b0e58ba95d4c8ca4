"""What the two neuron entry points share: run a neuron's coroutine until SIGINT or SIGTERM.

The entry points (``subnet_proxy.validator.main``, ``subnet_proxy.miner.main``) parse flags and check
extras before they import the neuron, so this module imports nothing beyond the settings.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from subnet_proxy.config import Settings

Neuron = Callable[[Settings, asyncio.Event], Awaitable[None]]


def serve_until_signal(neuron: Neuron, settings: Settings) -> None:
    """Run ``neuron(settings, stop)`` on a new event loop; SIGINT/SIGTERM set ``stop`` (a graceful stop)."""

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await neuron(settings, stop)

    asyncio.run(serve())
