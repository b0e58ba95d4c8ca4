"""The fan-out client against real bittensor axons on 127.0.0.1, and raw servers for faults."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.


import asyncio
import json
import typing
from contextlib import ExitStack, aclosing

import bittensor as bt
import pytest
from aiohttp import web

from protocol import MAX_SUMMARY_CHARS, SummarizationSynapse
from subnet_proxy.config import ProxySettings
from subnet_proxy.outbound import KEEPALIVE_S, OutboundPolicy
from subnet_proxy.validator.dendrite import FanoutDendrite
from tests.conftest import free_port
from tests.dropping import DroppingProxy
from tests.validator.axons import neuron, raw_server, running_axon

MB = 1 << 20
LOCAL = OutboundPolicy(allow_private=True)  # axons on 127.0.0.1: local mode
SOURCE = "The river rose overnight. Farmers moved their herds to higher ground before dawn."


def summarizer(delay: float, summary: str = "River rose; herds moved.") -> typing.Callable:
    async def forward(synapse: SummarizationSynapse) -> SummarizationSynapse:
        await asyncio.sleep(delay)
        synapse.summary = summary
        return synapse

    return forward


def refuse_all(synapse: SummarizationSynapse) -> typing.Tuple[bool, str]:  # noqa: UP006 - bt.Axon wants typing.Tuple
    return True, "not a validator"


@pytest.fixture
async def dendrite(wallet_factory):
    client = FanoutDendrite(wallet_factory("validator").hotkey, external_ip="127.0.0.1", outbound=LOCAL)
    yield client
    await client.close()


async def test_results_arrive_as_completed_with_validated_outputs(wallet_factory, dendrite):
    delays = {0: 0.6, 1: 0.05, 2: 0.3}
    with ExitStack() as stack:
        targets = []
        for uid, delay in delays.items():
            wallet = wallet_factory(f"miner{uid}")
            port = stack.enter_context(running_axon(wallet, summarizer(delay, f"summary {uid}")))
            targets.append(neuron(uid, wallet.hotkey.ss58_address, port))
        results = await dendrite.query(SummarizationSynapse(text=SOURCE, max_words=10), targets,
                                       timeout=5.0, max_output_bytes=MB)
    assert [r.uid for r in results] == [1, 2, 0]
    for r in results:
        assert r.outcome == "ok", r
        assert isinstance(r.synapse, SummarizationSynapse)
        assert r.synapse.summary == f"summary {r.uid}"
        assert r.synapse.text == SOURCE
        assert r.latency_s >= delays[r.uid]
    assert results[0].latency_s < results[2].latency_s


async def test_first_answer_is_yielded_before_the_slow_ones_finish(wallet_factory, dendrite):
    fast, slow = wallet_factory("fast"), wallet_factory("slow")
    with running_axon(fast, summarizer(0.0)) as p1, running_axon(slow, summarizer(3.0)) as p2:
        targets = [neuron(0, slow.hotkey.ss58_address, p2), neuron(1, fast.hotkey.ss58_address, p1)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with aclosing(dendrite.fanout(SummarizationSynapse(text=SOURCE), targets, timeout=10.0,
                                            max_output_bytes=MB)) as stream:
            first = await anext(stream)
            took = loop.time() - start
    assert first.uid == 1 and first.ok
    assert took < 1.5


async def test_timeout_is_classified_and_bounded(wallet_factory, dendrite):
    wallet = wallet_factory("sleepy")
    with running_axon(wallet, summarizer(3.0)) as port:
        target = [neuron(4, wallet.hotkey.ss58_address, port)]
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), target, timeout=0.4, max_output_bytes=MB)
    assert result.outcome == "timeout"
    assert 0.4 <= result.latency_s < 1.5
    assert result.synapse is None


async def test_blacklisted_request_is_a_403(wallet_factory, dendrite):
    wallet = wallet_factory("picky")
    with running_axon(wallet, summarizer(0.0), blacklist=refuse_all) as port:
        target = [neuron(2, wallet.hotkey.ss58_address, port)]
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), target, timeout=5.0, max_output_bytes=MB)
    assert result.outcome == "http_error"
    assert result.status_code == 403
    assert "not a validator" in (result.message or "")


async def test_wrong_hotkey_fails_the_axon_signature_check(wallet_factory, dendrite):
    wallet, other = wallet_factory("real"), wallet_factory("impostor")
    with running_axon(wallet, summarizer(0.0)) as port:
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), [neuron(2, other.hotkey.ss58_address, port)],
                                        timeout=5.0, max_output_bytes=MB)
    assert result.outcome == "http_error" and result.status_code == 401


async def test_many_concurrent_fanouts_to_one_axon_never_collide_on_nonces(wallet_factory, dendrite):
    wallet = wallet_factory("busy")
    with running_axon(wallet, summarizer(0.01)) as port:
        target = [neuron(0, wallet.hotkey.ss58_address, port)]
        batches = await asyncio.gather(*(
            dendrite.query(SummarizationSynapse(text=f"{SOURCE} {i}"), target, timeout=10.0, max_output_bytes=MB)
            for i in range(24)
        ))
    outcomes = [r.outcome for batch in batches for r in batch]
    assert outcomes == ["ok"] * 24


async def test_oversize_answers_are_refused(wallet_factory, dendrite):
    wallet = wallet_factory("verbose")
    with running_axon(wallet, summarizer(0.0, "word " * 3600)) as port:
        target = [neuron(1, wallet.hotkey.ss58_address, port)]
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), target, timeout=5.0, max_output_bytes=0)
    assert result.outcome == "oversize"
    assert result.synapse is None


async def test_chunked_oversize_body_is_cut_off_unread(dendrite):
    sent = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(2_000):
                await response.write(b"x" * 65_536)
                sent.append(1)
        except ConnectionError:
            pass
        return response

    runner, port = await raw_server(endless)
    try:
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), [neuron(0, "5Fake", port)],
                                        timeout=10.0, max_output_bytes=200_000)
    finally:
        await runner.cleanup()
    assert result.outcome == "oversize"
    assert len(sent) < 2_000  # the stream was dropped, not read to its 131 MB end


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"summary": "x" * (MAX_SUMMARY_CHARS + 1)}).encode(), "summary"),
        (json.dumps({"summary": 42}).encode(), "summary"),
        (b'{"summary": ' + b"[" * 100_000, "not JSON"),  # nesting deeper than the JSON parser's recursion
    ],
)
async def test_garbage_answers_are_invalid_not_exceptions(dendrite, body, expected):
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    runner, port = await raw_server(garbage)
    try:
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), [neuron(0, "5Fake", port)],
                                        timeout=5.0, max_output_bytes=MB)
    finally:
        await runner.cleanup()
    assert result.outcome == "invalid"
    assert expected in (result.message or "")


async def test_deeply_nested_error_body_is_still_an_http_error(dendrite):
    async def nested(request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 100_000, status=500, content_type="application/json")

    runner, port = await raw_server(nested)
    try:
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), [neuron(0, "5Fake", port)],
                                        timeout=5.0, max_output_bytes=MB)
    finally:
        await runner.cleanup()
    assert result.outcome == "http_error" and result.status_code == 500


async def test_server_errors_and_unreachable_axons_are_classified(dendrite):
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"message": "engine crashed"}, status=500)

    runner, port = await raw_server(broken)
    try:
        results = await dendrite.query(SummarizationSynapse(text=SOURCE),
                                       [neuron(0, "5Fake", port), neuron(1, "5Gone", free_port())],
                                       timeout=5.0, max_output_bytes=MB)
    finally:
        await runner.cleanup()
    by_uid = {r.uid: r for r in results}
    assert by_uid[0].outcome == "http_error" and by_uid[0].status_code == 500
    assert by_uid[0].message == "engine crashed"
    assert by_uid[1].outcome == "unreachable"


@pytest.mark.parametrize("status", [307, 308, 303, 302])
async def test_a_redirecting_axon_is_an_http_error_and_never_followed(dendrite, status):
    """A hostile axon answering 307 would make the validator re-POST the client's input and its signed
    headers anywhere, and take that reply as the miner's answer."""
    elsewhere: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        if request.path == "/elsewhere":
            elsewhere.append(request.method)
            return web.json_response({"summary": "planted answer"})
        return web.Response(status=status, headers={"Location": "/elsewhere"})

    runner, port = await raw_server(redirect)
    try:
        [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), [neuron(0, "5Fake", port)],
                                        timeout=5.0, max_output_bytes=MB)
    finally:
        await runner.cleanup()
    assert result.outcome == "http_error" and result.status_code == status
    assert elsewhere == []


async def test_outside_local_mode_a_private_axon_is_never_contacted(wallet_factory):
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"summary": "x"})

    runner, port = await raw_server(record)
    guarded = FanoutDendrite(wallet_factory("validator").hotkey, external_ip="127.0.0.1")
    try:
        [result] = await guarded.query(SummarizationSynapse(text=SOURCE), [neuron(0, "5Fake", port)],
                                       timeout=5.0, max_output_bytes=MB)
    finally:
        await guarded.close()
        await runner.cleanup()
    assert result.outcome == "unreachable" and "non-public" in (result.message or "")
    assert hits == []



async def test_a_kept_alive_connection_dropped_unanswered_is_tried_once_more_on_a_new_one(wallet_factory, dendrite):
    """Stock axons (uvicorn) close a connection idle for 5 s; one picked up at that moment resets with
    no answer sent. That is no fault of the miner's: the request goes again, signed anew, and the
    stock axon's nonce check takes it."""
    wallet = wallet_factory("miner")
    with running_axon(wallet, summarizer(0.0)) as port:
        proxy = DroppingProxy(port, answered=1)
        target = [neuron(0, wallet.hotkey.ss58_address, await proxy.start())]
        try:
            first = await dendrite.query(SummarizationSynapse(text=SOURCE), target, timeout=5.0, max_output_bytes=MB)
            second = await dendrite.query(SummarizationSynapse(text=SOURCE), target, timeout=5.0, max_output_bytes=MB)
        finally:
            await proxy.close()
    assert [r.outcome for r in first + second] == ["ok", "ok"], second
    assert second[0].synapse.summary == "River rose; herds moved."
    assert proxy.connections == 2 and len(proxy.requests) == 3  # the second query's first try was dropped
    nonces = [int(fields["bt_header_dendrite_nonce"]) for _, fields in proxy.requests]
    assert nonces == sorted(set(nonces))  # each try signed anew, never a replay


async def test_an_axon_that_drops_every_request_is_tried_twice_then_unreachable(wallet_factory, dendrite):
    wallet = wallet_factory("miner")
    with running_axon(wallet, summarizer(0.0)) as port:
        proxy = DroppingProxy(port, answered=0)
        target = [neuron(0, wallet.hotkey.ss58_address, await proxy.start())]
        try:
            [result] = await dendrite.query(SummarizationSynapse(text=SOURCE), target, timeout=5.0,
                                            max_output_bytes=MB)
        finally:
            await proxy.close()
    assert result.outcome == "unreachable", result
    assert proxy.connections == 2 and len(proxy.requests) == 2


def test_idle_connections_are_dropped_before_their_servers_close_them(wallet_factory):
    """Outbound connections are reused for less time than a stock axon's uvicorn and this project's
    side-server keep an idle one open, so one is rarely picked up as its server closes it."""
    axon = bt.Axon(wallet=wallet_factory("miner"), ip="127.0.0.1", port=free_port(), external_ip="127.0.0.1")
    assert KEEPALIVE_S < axon.fast_config.timeout_keep_alive
    assert KEEPALIVE_S < ProxySettings().keepalive_s
