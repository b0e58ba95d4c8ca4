"""ProxyClient against hostile servers: a miner delivers to whatever ``delivery_url`` a validator named."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from bittensor_wallet import Keypair

from subnet_proxy.client import MAX_JSON_BYTES, ProxyClient, ProxyError
from tests.validator.axons import raw_server

MINER = Keypair.create_from_uri("//R1Miner")
VALIDATOR = Keypair.create_from_uri("//R1Validator")


async def endless(request: web.Request) -> web.StreamResponse:
    """A 200 whose JSON body never ends (stops once the client hangs up)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"task_id": "')
    try:
        for _ in range(MAX_JSON_BYTES // 65_536 * 4):
            await response.write(b"x" * 65_536)
    except ConnectionError:
        pass
    return response


async def trickle(request: web.Request) -> web.StreamResponse:
    """A 200 that sends one byte a second: each read is quick, the body never completes."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        for _ in range(600):
            await response.write(b" ")
            await asyncio.sleep(1.0)
    except ConnectionError:
        pass
    return response


async def nested(request: web.Request) -> web.Response:
    return web.Response(body=b"[" * 100_000, status=502, content_type="application/json")


@pytest.fixture
async def delivering() -> AsyncIterator[ProxyClient]:
    client = ProxyClient("http://127.0.0.1:9", keypair=MINER, receiver_hotkey=VALIDATOR.ss58_address, timeout_s=2.0)
    yield client
    await client.close()


async def deliver_to(client: ProxyClient, handler) -> ProxyError:
    runner, port = await raw_server(handler)
    try:
        with pytest.raises(ProxyError) as caught:
            await client.miner_response("t" * 32, text="a summary", url=f"http://127.0.0.1:{port}/deliver")
    finally:
        await runner.cleanup()
    return caught.value


async def test_an_endless_answer_is_cut_off_at_the_limit(delivering: ProxyClient) -> None:
    error = await deliver_to(delivering, endless)
    assert error.code == "response_too_large"


async def test_a_trickled_answer_times_out(delivering: ProxyClient) -> None:
    started = time.monotonic()
    runner, port = await raw_server(trickle)
    try:
        with pytest.raises(TimeoutError):
            await delivering.miner_response("t" * 32, text="a summary", url=f"http://127.0.0.1:{port}/deliver")
    finally:
        await runner.cleanup()
    assert time.monotonic() - started < 30


async def test_an_answer_nested_past_the_parser_is_a_proxy_error(delivering: ProxyClient) -> None:
    error = await deliver_to(delivering, nested)
    assert error.status == 502 and error.code == "http_error"
