"""A request head aiohttp cannot parse is answered in the API's JSON error shape, counted, never an ERROR."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from tests.server.conftest import running_server

HEAD = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
MALFORMED = {
    "line_too_long": HEAD + b"X-Big: " + b"a" * 9_000 + b"\r\n\r\n",
    "too_many_headers": HEAD + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
    "malformed_request": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP at all\r\n\r\n",
}
LONG_URL = b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(("code", "head"), [*MALFORMED.items(), ("line_too_long", LONG_URL)],
                         ids=[*MALFORMED, "long_url"])
async def test_an_unparsable_head_gets_the_json_error_shape_and_no_traceback(tmp_path: Path, caplog, code: str,
                                                                               head: bytes) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_server(tmp_path) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(head)
        raw = await asyncio.wait_for(reader.read(), 5)  # the server answers and closes
        writer.close()
        status, _, rest = raw.partition(b"\r\n")
        headers, _, body = rest.partition(b"\r\n\r\n")
        assert status.split()[1] == b"400", raw
        assert b"content-type: application/json" in headers.lower()
        error = json.loads(body)
        assert set(error) == {"error"} and error["error"]["code"] == code and error["error"]["message"], error
        assert b"aaaa" not in body  # the client's bytes are not echoed
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/metrics") as resp:
                metrics = await resp.text()
        assert f'subnet_proxy_http_malformed_total{{code="{code}"}} 1.0' in metrics
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
