"""Connection guard in front of aiohttp's request handler: a header deadline and a connection cap.

aiohttp reads a request's headers for as long as the sender takes and keeps an idle keep-alive
connection for an hour (3630 s); the side-server binds 0.0.0.0. So 3,000 half-sent requests stayed
open for minutes, and under a 256-descriptor limit ~365 idle sockets made health and submit time
out. Each connection now:

- must deliver its first request's headers within ``--proxy.header_timeout_s`` (else it is closed;
  a slow *body* is ``body.read_limited``'s 408); a later request on a kept-alive connection must
  arrive in full within ``--proxy.keepalive_s`` of the previous answer: aiohttp's keep-alive timer
  runs from the answer and arriving bytes do not reset it, so a half-sent or trickled second request
  is closed then too (``tests/server/test_connections.py`` holds aiohttp to it);
- counts against ``--proxy.max_connections``: past it a new connection is closed at once, with a
  WARNING at most every ``CAP_LOG_S`` saying how many were refused (keep it below the process's
  descriptor limit, ``ulimit -n``, with room for stores and files).

Implemented as a thin protocol wrapper (asyncio calls six methods; each is passed on), so aiohttp's
handler is used as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("subnet_proxy.server")

#: the least time between two "connection cap reached" log lines.
CAP_LOG_S = 10.0
_HEADERS_END = b"\r\n\r\n"


@dataclass(slots=True)
class ConnectionGuard:
    """The protocol factory handed to ``loop.create_server``; ``inner`` makes aiohttp's handler."""

    inner: Callable[[], asyncio.Protocol]
    max_connections: int
    header_timeout_s: float
    active: int = 0
    refused: int = 0
    _last_log: float = field(default=-CAP_LOG_S)

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    def admit(self) -> bool:
        if self.active < self.max_connections:
            self.active += 1
            return True
        self.refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_log >= CAP_LOG_S:
            self._last_log = now
            log.warning("connection cap reached: %d open (--proxy.max_connections); %d new connections refused "
                        "so far", self.active, self.refused)
        return False


class _Guarded(asyncio.Protocol):
    """One connection: refused at the cap, closed when its headers do not arrive in time."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.guard.admit():
            transport.abort()
            return
        self.transport = transport
        self.inner = self.guard.inner()
        self.inner.connection_made(transport)
        self.deadline = asyncio.get_running_loop().call_later(self.guard.header_timeout_s, self._too_slow)

    def _too_slow(self) -> None:
        log.debug("closing a connection whose request headers did not arrive within %g s",
                  self.guard.header_timeout_s)
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.deadline is not None:
            seen = self.tail + data
            if _HEADERS_END in seen:
                self.deadline.cancel()
                self.deadline = None
            else:
                self.tail = seen[-3:]
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is None:
            return
        self.guard.active -= 1
        if self.deadline is not None:
            self.deadline.cancel()
        self.inner.connection_lost(exc)
