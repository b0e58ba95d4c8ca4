"""Real bittensor axons on 127.0.0.1 for the validator's tests, and a raw HTTP server for faults."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

import bittensor as bt
from aiohttp import web
from bittensor_wallet import Wallet

from subnet_proxy.chain import Neuron
from tests.conftest import free_port


def wait_port(port: int, timeout: float = 10.0) -> None:
    """The axon's uvicorn starts in a thread: queries before it listens get refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def neuron(uid: int, hotkey: str, port: int) -> Neuron:
    return Neuron(uid=uid, hotkey=hotkey, coldkey=hotkey, stake=0.0, ip="127.0.0.1", port=port,
                  validator_permit=False, last_update=0)


@contextmanager
def running_axon(wallet: Wallet, forward: Callable[..., Any], blacklist: Callable[..., Any] | None = None
                 ) -> Iterator[int]:
    """A started stock ``bt.Axon`` serving ``forward``; yields its port."""
    port = free_port()
    axon = bt.Axon(wallet=wallet, ip="127.0.0.1", port=port, external_ip="127.0.0.1", external_port=port)
    axon.attach(forward_fn=forward, blacklist_fn=blacklist)
    axon.start()
    try:
        wait_port(port)
        yield port
    finally:
        axon.stop()


async def raw_server(handler: Callable[[web.Request], Any]) -> tuple[web.AppRunner, int]:
    """An aiohttp server answering every POST with ``handler``: garbage, oversize, stalls."""
    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.sleep(0)
    return runner, port
