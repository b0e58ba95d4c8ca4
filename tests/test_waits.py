"""``wait_set``: an event wait with a time limit that never loses a cancel (unlike 3.11's ``wait_for``)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from subnet_proxy.waits import wait_set


async def test_it_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5) is True
    assert await wait_set(event, 0) is True  # already set: at once


async def reaches_the_waiter(wait: Callable[[asyncio.Event], Awaitable[object]]) -> bool:
    """Whether a cancel reaches a waiter whose event is set in the same loop turn: a worker's wake-up
    arriving just as a shutdown cancels it."""
    event = asyncio.Event()
    waiter = asyncio.create_task(wait(event))
    await asyncio.sleep(0)  # the waiter is waiting
    event.set()
    waiter.cancel()
    try:
        await waiter
    except asyncio.CancelledError:
        return True
    return False


async def test_a_cancel_is_not_lost_when_the_event_is_set_in_the_same_turn() -> None:
    assert await reaches_the_waiter(lambda event: wait_set(event, 10))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for keeps the cancel from 3.12 on")
async def test_wait_for_loses_that_cancel_on_python_3_11() -> None:
    """Why ``wait_set`` exists: the same race through ``asyncio.wait_for``."""
    assert not await reaches_the_waiter(lambda event: asyncio.wait_for(event.wait(), 10))
