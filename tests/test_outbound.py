"""The guarded outbound client: no redirects, only allowed addresses, checked on the address connected to."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from subnet_proxy.outbound import OutboundHTTP, OutboundPolicy, is_public, refused_address
from tests.conftest import free_port


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("192.168.0.1", False), ("172.16.0.1", False),
    ("169.254.169.254", False), ("fe80::1", False), ("0.0.0.0", False), ("::", False), ("224.0.0.1", False),
    ("ff02::1", False), ("100.64.0.1", False), ("::ffff:127.0.0.1", False), ("not an ip", False),
])
def test_only_globally_routable_addresses_are_public(address, public):
    assert is_public(address) is public


@pytest.fixture
async def loopback():
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=307, headers={"Location": "/target"})

    async def target(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="reached")

    app = web.Application()
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_route("*", "/target", target)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", hits
    await runner.cleanup()


async def test_a_redirect_is_the_answer_never_followed(loopback):
    url, hits = loopback
    http = OutboundHTTP(OutboundPolicy(allow_private=True))
    try:
        async with http.post(url + "/redirect", data=b"signed") as resp:
            assert resp.status == 307
        with pytest.raises(ValueError):
            http.get(url + "/redirect", allow_redirects=True)
    finally:
        await http.close()
    assert hits == ["/redirect"]


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
async def test_a_public_only_client_never_connects_to_loopback(loopback, host):
    url, hits = loopback
    port = url.rsplit(":", 1)[1]
    http = OutboundHTTP(OutboundPolicy())
    try:
        with pytest.raises(aiohttp.ClientError) as caught:
            async with http.get(f"http://{host}:{port}/target"):
                pass
        assert refused_address(caught.value)
    finally:
        await http.close()
    assert hits == []
