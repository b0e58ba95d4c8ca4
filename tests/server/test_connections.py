"""Idle and half-sent connections cannot starve the side-server: a header deadline and a connection cap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from tests.server.conftest import running_server

IDLE = 60  # bounded: well under this machine's descriptor limit, loopback only
CAP = 40


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), seconds) == b""
    except (TimeoutError, ConnectionError):
        return False


async def test_idle_sockets_are_capped_and_closed_and_health_still_answers(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="subnet_proxy.server")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    async with running_server(tmp_path, header_timeout_s=1.0, max_connections=CAP) as server:
        try:
            for i in range(IDLE):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                if i % 2:
                    writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # half-sent headers
                idle.append((reader, writer))
            refused = sum(await asyncio.gather(*(_closed_within(r, 0.5) for r, _ in idle[CAP:])))
            assert refused == IDLE - CAP  # past the cap: closed at once
            assert any("connection cap reached" in r.getMessage() for r in caplog.records)

            # every idle one is closed by the header deadline, and health answers again (bounded waits)
            closed = await asyncio.gather(*(_closed_within(r, 5.0) for r, _ in idle[:CAP]))
            assert all(closed)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{server.port}/api/v1/health") as resp:
                    assert resp.status == 200
            assert server.guard.active <= 1
        finally:
            for _, writer in idle:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


async def test_a_slow_but_complete_request_is_served(tmp_path: Path) -> None:
    """The deadline is on the headers only: a client that sends them in pieces in time is answered."""
    async with running_server(tmp_path, header_timeout_s=2.0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for piece in (b"GET /api/v1/health HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.2)
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 200"), status
        writer.close()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """One whole response (status line, headers, Content-Length body) off a kept-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


@pytest.mark.parametrize("trickle", [False, True], ids=["half-sent", "trickled"])
async def test_a_half_sent_second_request_on_a_kept_alive_connection_is_closed(tmp_path: Path, trickle: bool) -> None:
    """The guard's header deadline covers a connection's first request; a later one on a kept-alive
    connection is bounded by aiohttp's keep-alive timer, which runs from the previous answer and is not
    reset by arriving bytes: a sender trickling one byte at a time is closed just the same."""
    keepalive_s = 1.0
    async with running_server(tmp_path, header_timeout_s=60.0, keepalive_s=keepalive_s) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        health = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(2):  # kept alive: a whole second request is served on the same connection
            writer.write(health)
            assert (await _answer(reader)).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHo")

        async def trickling() -> None:
            while True:
                await asyncio.sleep(0.2)
                writer.write(b"x")

        sender = asyncio.create_task(trickling()) if trickle else None
        try:
            assert await _closed_within(reader, 10 * keepalive_s)
            assert time.monotonic() - started < 3 * keepalive_s
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()
