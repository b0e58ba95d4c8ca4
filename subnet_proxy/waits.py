"""A wait for an event with a time limit that never loses a cancel.

Why not ``asyncio.wait_for(event.wait(), seconds)``: on Python 3.11 it runs the wait as a task of its
own, and when that task finishes in the same loop turn as the caller is cancelled (the event set just
as a shutdown cancels its worker), ``wait_for`` returns the result and the cancel is gone
(CPython gh-86296, fixed in 3.12). A worker looping on such a wait then never ends, and whoever
awaits its cancellation waits for ever: the side-server's WebSocket hub hung a shutdown that way,
now and then, on a loaded machine. ``asyncio.timeout`` waits in the caller's own task and lets an
outside cancel through.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Until ``event`` is set (True) or ``seconds`` have passed (False, unless it was set meanwhile)."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(max(seconds, 0.0)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
