"""Idle and half-sent connections cannot starve the side-server: a header deadline and a connection cap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp

from subnet_proxy.server.app import create_app, start_server
from tests.server.conftest import make_settings

IDLE = 60  # bounded: well under this machine's descriptor limit, loopback only
CAP = 40


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), seconds) == b""
    except (TimeoutError, ConnectionError):
        return False


async def test_idle_sockets_are_capped_and_closed_and_health_still_answers(tmp_path: Path, caplog) -> None:
    from subnet_proxy.blobs import LocalBlobStore
    from subnet_proxy.keys.sqlite import SqliteKeyStore
    from subnet_proxy.store import SQLiteTaskStore

    settings = make_settings(tmp_path, host="127.0.0.1", port=0, header_timeout_s=1.0, max_connections=CAP)
    store, blobs = SQLiteTaskStore(tmp_path / "t.db"), LocalBlobStore(tmp_path / "b")
    keys = SqliteKeyStore(tmp_path / "k.db")
    server = await start_server(create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=lambda: None,
                                           own_hotkey="me"), settings)
    caplog.set_level(logging.WARNING, logger="subnet_proxy.server")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
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
        await server.stop()
        await store.close()
        await blobs.close()
        await keys.close()


async def test_a_slow_but_complete_request_is_served(tmp_path: Path) -> None:
    """The deadline is on the headers only: a client that sends them in pieces in time is answered."""
    from subnet_proxy.blobs import LocalBlobStore
    from subnet_proxy.keys.sqlite import SqliteKeyStore
    from subnet_proxy.store import SQLiteTaskStore

    settings = make_settings(tmp_path, host="127.0.0.1", port=0, header_timeout_s=2.0)
    store, blobs = SQLiteTaskStore(tmp_path / "t.db"), LocalBlobStore(tmp_path / "b")
    keys = SqliteKeyStore(tmp_path / "k.db")
    server = await start_server(create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=lambda: None,
                                           own_hotkey="me"), settings)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for piece in (b"GET /api/v1/health HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.2)
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 200"), status
        writer.close()
    finally:
        await server.stop()
        await store.close()
        await blobs.close()
        await keys.close()
