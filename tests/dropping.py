"""A loopback HTTP/1.1 proxy that drops a kept-alive connection on purpose, for the stale-connection race.

A server closes a connection idle for its keep-alive time (uvicorn, a stock axon's server: 5 s); a
client that picks that connection up at the same instant writes a request that is never answered.
On a real server the race is a window of a millisecond. ``DroppingProxy`` makes it certain: it relays
the first ``answered`` requests of each client connection to the real server and back, then reads
the next request and closes the connection without a word. With ``served_dropped`` that request
reaches the server first and only its answer is lost: the other way a connection can drop, where
sending again is safe only for a request the server recognises as a repeat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, str, dict[str, str]]:
    """One HTTP/1.1 message with a Content-Length body: its bytes, its first line and its header
    fields (names lower-case)."""
    head = await reader.readuntil(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    fields = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines) if value}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        raise ValueError("a chunked message: this proxy relays Content-Length bodies only")
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    return head + body, first, fields


@dataclass
class DroppingProxy:
    """Relays to 127.0.0.1:``upstream``; each client connection's request number ``answered + 1`` is dropped."""

    upstream: int
    answered: int = 1
    #: the dropped request is relayed and served before the connection drops (its answer is lost).
    served_dropped: bool = False
    connections: int = 0
    #: every request received, relayed or dropped, in order: its request line and header fields (lower-case).
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            for _ in range(self.answered):
                request, line, fields = await read_message(reader)
                self.requests.append((line, fields))
                up_writer.write(request)
                await up_writer.drain()
                response, _, _ = await read_message(up_reader)
                writer.write(response)
                await writer.drain()
            request, line, fields = await read_message(reader)
            self.requests.append((line, fields))
            if self.served_dropped:
                up_writer.write(request)
                await up_writer.drain()
                await read_message(up_reader)
        except asyncio.IncompleteReadError:
            pass  # the client closed first
        finally:
            up_writer.close()
            writer.close()


def drop_then_hang(tries: list[float], *, hold_s: float,
                   clock: Callable[[], float] = time.time) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler for the other side of a resend: the first request is held ``hold_s``, then
    its connection is closed without an answer; every later one hangs for a minute. ``tries``: when
    each arrived, by ``clock``."""

    async def handle(request: web.Request) -> web.Response:
        tries.append(clock())
        await request.read()
        if len(tries) == 1:
            await asyncio.sleep(hold_s)
            assert request.transport is not None
            request.transport.close()
        await asyncio.sleep(60)
        return web.Response()

    return handle
