"""``opening``: what the backend suites' fixtures hand a test to open store objects, all closed after it.

A test opens several objects on one database (as several processes or server instances would); the
fixture must close each one, whatever the test did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


@asynccontextmanager
async def opening(make: Callable[[], C]) -> AsyncIterator[Callable[[], C]]:
    """A callable that returns ``make()`` and remembers it; every object it returned is closed on exit."""
    opened: list[C] = []

    def open_one() -> C:
        item = make()
        opened.append(item)
        return item

    try:
        yield open_one
    finally:
        for item in opened:
            await item.close()
