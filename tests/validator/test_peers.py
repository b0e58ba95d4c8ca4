"""Peers: discovery from chain commitments, the peer evaluation loop against a real side-server over
loopback (signed listing, blobs, evaluation), back-off, abuse refused, quorum members (all permitted
validators on a shared store) and the grace."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from bittensor_wallet import Keypair

from subnet_proxy import approval
from subnet_proxy.api.schemas import EvaluationRequest
from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain.local import LocalChain, Registration
from subnet_proxy.config import build_settings
from subnet_proxy.outbound import OutboundHTTP, OutboundPolicy
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.tasks import Evaluation, MinerResponse, MinerReward, Task, TaskStatus, utcnow
from subnet_proxy.validator.evaluation import Evaluator
from subnet_proxy.validator.neuron import Validator
from subnet_proxy.validator.peer_client import PeerClient, PeerError
from subnet_proxy.validator.peer_loop import PeerEvaluationLoop
from subnet_proxy.validator.peers import PUBLISH_SETTLE_S, Peer, PeerDirectory, find_peers, peer_url
from subnet_proxy.validator.scores import ScoreBook
from tests.conftest import free_port, make_wallet
from tests.dropping import DroppingProxy, drop_then_hang
from tests.server.conftest import Harness, error_of, start_harness, stop_harness

LOCAL = OutboundPolicy(allow_private=True)
PUBLIC = OutboundPolicy()


def test_peer_url_accepts_plain_base_urls_only() -> None:
    assert peer_url("https://val.example.com:8443/", PUBLIC) == "https://val.example.com:8443"
    assert peer_url("http://8.8.8.8:8000", PUBLIC) == "http://8.8.8.8:8000"
    for bad in ("ftp://val.example", "https://user:pw@val.example", "https://val.example/?x=1", "not a url",
                "https://val.example:99999", "http://", "https://val.example/#frag", "http://x" + "y" * 130):
        assert peer_url(bad, LOCAL) is None, bad
    for private in ("http://127.0.0.1:8000", "http://10.0.0.5", "http://[::1]:80", "http://169.254.169.254"):
        assert peer_url(private, PUBLIC) is None, private
        assert peer_url(private, LOCAL) is not None  # local mode: loopback peers are the point


def test_find_peers_counts_permitted_validators_with_a_usable_url(harness_neurons: tuple) -> None:
    neurons, snapshot = harness_neurons
    me, a, b, m1 = (neurons.server.ss58_address, neurons.validator_a.ss58_address,
                    neurons.validator_b.ss58_address, neurons.miner_1.ss58_address)
    commitments = {me: "http://203.0.113.1", a: "https://a.example", b: "http://10.0.0.2", m1: "https://m.example",
                   "unregistered": "https://x.example"}
    peers, ignored = find_peers(snapshot, commitments, own_hotkey=me, policy=PUBLIC)
    assert [(p.hotkey, p.url, p.stake) for p in peers] == [(a, "https://a.example", 300.0)]
    assert list(ignored) == [b]  # a permitted validator with a private URL is logged; a miner's is not


@pytest.fixture
def harness_neurons() -> tuple:
    from tests.server.conftest import Neurons

    neurons = Neurons()
    return neurons, neurons.snapshot()


async def test_directory_publishes_its_url_and_reads_its_peers(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    admin = LocalChain(path, netuid=1)
    for hk, permit in (("me", True), ("peer", True), ("miner", False)):
        await admin.register(Registration(hotkey=hk, coldkey="ck", stake=10.0, validator_permit=permit))
    await LocalChain(path, netuid=1, hotkey="peer").publish("http://127.0.0.1:9002")
    await LocalChain(path, netuid=1, hotkey="miner").publish("http://127.0.0.1:9003")
    directory = PeerDirectory(LocalChain(path, netuid=1, hotkey="me"), own_hotkey="me", own_url="http://127.0.0.1:9001",
                              policy=LOCAL)
    await directory.refresh(await admin.snapshot())
    assert [(p.hotkey, p.url) for p in directory.peers] == [("peer", "http://127.0.0.1:9002")]
    assert directory.members == {"me", "peer"}
    assert (await admin.commitments())["me"] == "http://127.0.0.1:9001"
    lone = PeerDirectory(admin, own_hotkey="x", own_url=None, policy=PUBLIC)  # loopback peers refused outside local
    await lone.refresh(await admin.snapshot())
    assert lone.peers == [] and lone.members == {"x"}


class CountingChain(LocalChain):
    """The local chain, counting publications and showing them late (a real chain's read lags its write)."""

    def __init__(self, *args, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kw)
        self.published: list[str] = []

    async def publish(self, data: str) -> None:
        self.published.append(data)
        await asyncio.sleep(0.05)  # a write takes blocks; a refresh beside it must not publish again

    async def commitments(self) -> dict[str, str]:
        return {}  # the new value does not show yet


async def test_a_url_is_published_once_however_the_refreshes_overlap_or_the_reads_lag(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    admin = LocalChain(path, netuid=1)
    await admin.register(Registration(hotkey="me", coldkey="ck", stake=10.0, validator_permit=True))
    chain = CountingChain(path, netuid=1, hotkey="me")
    now = [0.0]
    directory = PeerDirectory(chain, own_hotkey="me", own_url="http://127.0.0.1:9001", policy=LOCAL,
                              clock=lambda: now[0])
    snapshot = await admin.snapshot()
    await asyncio.gather(directory.refresh(snapshot), directory.refresh(snapshot))  # first resync beside serve_peers
    await directory.refresh(snapshot)  # the chain still shows nothing: settling, not published again
    assert chain.published == ["http://127.0.0.1:9001"]
    now[0] = PUBLISH_SETTLE_S + 1  # still not on chain long after: the write was lost, publish again
    await directory.refresh(snapshot)
    directory.own_url = "http://127.0.0.1:9009"  # a new URL is published at once
    await directory.refresh(snapshot)
    assert chain.published == ["http://127.0.0.1:9001", "http://127.0.0.1:9001", "http://127.0.0.1:9009"]


class FixedScorer:
    """Rewards by answer text (the engines are tested on their own; here the wire is under test)."""

    def __init__(self) -> None:
        self.scored: list[str] = []

    async def score(self, task: Task, responses: Sequence[MinerResponse], *, timeout_s: float) -> list[MinerReward]:
        self.scored.append(task.task_id)
        return [MinerReward(uid=r.uid, hotkey=r.hotkey, reward=0.9 if r.text == "first summary" else 0.1)
                for r in responses]


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await start_harness(tmp_path, neuron_rate_per_s=5.0, neuron_burst=10)
    try:
        yield h
    finally:
        await stop_harness(h)


def make_loop(h: Harness, tmp_path: Path, peers: list[Peer], *, busy: bool = False,
              budget_s: float = 10.0) -> tuple[PeerEvaluationLoop, FixedScorer, ScoreBook, OutboundHTTP]:
    me = h.neurons.validator_a
    scores = ScoreBook(alpha=0.5)
    scores.sync(h.neurons.snapshot())
    scorer = FixedScorer()
    evaluator = Evaluator(h.store, scorer, scores, h.neurons.snapshot, validator_hotkey=me.ss58_address, quorum=0.5)
    directory = PeerDirectory(LocalChain(tmp_path / "unused.json", netuid=1), own_hotkey=me.ss58_address,
                              own_url=None, policy=LOCAL)
    directory.peers = peers
    http = OutboundHTTP(LOCAL)
    client = PeerClient(me, http, max_blob_bytes=1 << 20, timeout_s=5.0)

    def scorer_for(blobs: BlobStore) -> FixedScorer:
        return scorer

    loop = PeerEvaluationLoop(directory, client, evaluator, scorer_for=scorer_for, judging_timeout=lambda t, r: 12.0,
                              busy=lambda: busy, interval_s=0.1, budget_s=budget_s)
    return loop, scorer, scores, http


def server_peer(h: Harness) -> Peer:
    return Peer(hotkey=h.own_hotkey, url=str(h.client.make_url("")).rstrip("/"), stake=100.0)


async def test_the_loop_judges_a_peers_done_tasks_once_and_learns(peer: Harness, tmp_path: Path) -> None:
    tasks = [await peer.done_task() for _ in range(3)]
    loop, scorer, scores, http = make_loop(peer, tmp_path, [server_peer(peer)])
    try:
        await loop.run_step()
        assert sorted(scorer.scored) == sorted(t.task_id for t in tasks) and loop.evaluated == 3
        me = peer.neurons.validator_a.ss58_address
        for task in tasks:
            [evaluation] = await peer.store.list_evaluations(task.task_id)
            assert evaluation.validator_hotkey == me and evaluation.stake == 300.0  # the metagraph's, not claimed
            assert {r.uid: r.reward for r in evaluation.rewards} == {3: 0.9, 4: 0.1}
        ema = {s.uid: s.ema_score for s in scores.stats()}
        assert ema[3] > ema[4] > 0  # this validator's scores learnt from the peer's tasks
        await loop.run_step()  # nothing new: nothing scored or posted again
        assert len(scorer.scored) == 3
    finally:
        await http.close()



async def test_an_evaluation_written_on_a_connection_the_peer_drops_is_sent_again(peer: Harness,
                                                                                   tmp_path: Path) -> None:
    """A peer's server (or the reverse proxy before it) closes a kept-alive connection just as an
    evaluation is written on it: no answer came, so the evaluation goes again, signed anew, and is
    counted once; the peer is not backed off and the task not scored again."""
    [task] = [await peer.done_task()]
    proxy = DroppingProxy(peer.client.port, answered=1)  # every connection's second request: dropped
    via = Peer(hotkey=peer.own_hotkey, url=f"http://127.0.0.1:{await proxy.start()}", stake=100.0)
    loop, scorer, _, http = make_loop(peer, tmp_path, [via])
    try:
        await loop.run_step()
    finally:
        await http.close()
        await proxy.close()
    posts = [fields for line, fields in proxy.requests if line.startswith("POST /api/v1/validator/evaluation")]
    assert len(posts) == 2 and posts[0]["x-nonce"] != posts[1]["x-nonce"]  # dropped, then sent anew
    assert scorer.scored == [task.task_id] and loop.evaluated == 1 and loop._backoff[via.hotkey].until == 0
    [evaluation] = await peer.store.list_evaluations(task.task_id)
    assert evaluation.validator_hotkey == peer.neurons.validator_a.ss58_address

async def test_a_call_whose_retry_hangs_ends_at_the_clients_timeout() -> None:
    """The peer holds the first try, drops it, then hangs on the one sent again: the call, both tries
    together, gives up at ``timeout_s`` as unreachable (a timeout for each try would run to 1.2 + 2 s)."""
    tries: list[float] = []
    app = web.Application()
    app.router.add_post("/api/v1/validator/evaluation", drop_then_hang(tries, hold_s=1.2, clock=time.monotonic))
    runner = web.AppRunner(app, shutdown_timeout=0.5)  # not a minute for the hanging handler
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    me = Keypair.create_from_uri("//PeerTimeout")
    http = OutboundHTTP(LOCAL)
    client = PeerClient(me, http, max_blob_bytes=1 << 20, timeout_s=2.0)
    peer = Peer(hotkey=me.ss58_address, url=f"http://127.0.0.1:{port}", stake=1.0)
    request = EvaluationRequest(task_id="t" * 32, rewards=[MinerReward(uid=1, hotkey=me.ss58_address, reward=0.5)])
    try:
        with pytest.raises(PeerError) as caught:
            await client.evaluate(peer, request)
        ended = time.monotonic()
    finally:
        await http.close()
        await runner.cleanup()
    assert caught.value.status == 0 and caught.value.back_off
    assert len(tries) == 2 and ended - tries[0] < 2.6


async def test_own_work_first_and_an_unreachable_peer_is_backed_off(peer: Harness, tmp_path: Path) -> None:
    await peer.done_task()
    loop, scorer, _, http = make_loop(peer, tmp_path, [server_peer(peer)], busy=True)
    try:
        await loop.run_step()
        assert scorer.scored == []  # own evaluations waiting: peers wait
    finally:
        await http.close()
    dead = Peer(hotkey=peer.neurons.validator_b.ss58_address, url=f"http://127.0.0.1:{free_port()}", stake=1.0)
    loop, scorer, _, http = make_loop(peer, tmp_path, [dead, server_peer(peer)])
    try:
        await loop.run_step()  # the dead peer costs a refused connection; the live one is judged
        assert len(scorer.scored) == 1
        assert loop._backoff[dead.hotkey].until > 0
        assert loop.reachable() == (2, 1)  # what health shows: two peers known, one reachable now
    finally:
        await http.close()


async def test_a_hostile_peer_leaves_the_honest_result_unchanged(peer: Harness) -> None:
    """Forged and stale signatures, unknown tasks, wrong miners, duplicate and unearned rewards, a flood:
    each refused with its code; the honest validators' evaluations then approve the best answer."""
    task = await peer.done_task()
    await peer.store.record_response(MinerResponse(task_id=task.task_id, hotkey="silent", uid=2, state="timeout"))
    hostile, m1, m2 = peer.neurons.validator_a, peer.neurons.miner_1, peer.neurons.miner_2
    junk = {"task_id": task.task_id, "rewards": [{"uid": 4, "hotkey": m2.ss58_address, "reward": 1.0}]}
    forged = await peer.signed("POST", "/api/v1/validator/evaluation", peer.neurons.stranger, junk,
                               headers={"X-Hotkey": hostile.ss58_address})
    assert forged.status == 401 and await error_of(forged) == "bad_signature"
    from subnet_proxy.signing import sign_request

    body = json.dumps(junk).encode()
    stale = sign_request(hostile, body, peer.own_hotkey, now=1.0)
    resp = await peer.client.post("/api/v1/validator/evaluation", data=body,
                                  headers={**stale, "Content-Type": "application/json"})
    assert resp.status == 401 and await error_of(resp) == "stale_request"
    unknown = await peer.signed("POST", "/api/v1/validator/evaluation", hostile, {**junk, "task_id": "0" * 32})
    assert unknown.status == 404
    cases = {
        "wrong miner": [{"uid": 9, "hotkey": peer.neurons.stranger.ss58_address, "reward": 1.0}],
        "twice": [{"uid": 4, "hotkey": m2.ss58_address, "reward": 1.0}] * 2,
        "no answer": [{"uid": 2, "hotkey": "silent", "reward": 1.0}],
    }
    for name, rewards in cases.items():
        resp = await peer.signed("POST", "/api/v1/validator/evaluation", hostile,
                                 {"task_id": task.task_id, "rewards": rewards})
        assert resp.status == 409 and await error_of(resp) == "unknown_miner", name
    statuses = []
    for _ in range(30):  # a flood: the per-hotkey bucket (burst 10, 5/s here) says 429
        resp = await peer.signed("GET", "/api/v1/validator/tasks", hostile)
        statuses.append(resp.status)
    assert statuses.count(429) >= 15 and statuses.count(200) <= 12
    assert await peer.store.list_evaluations(task.task_id) == []
    assert (await peer.store.get_task(task.task_id)).status is TaskStatus.DONE
    honest = peer.neurons.validator_b  # 600 of 1000 stake
    resp = await peer.signed("POST", "/api/v1/validator/evaluation", honest, {"task_id": task.task_id, "rewards": [
        {"uid": 3, "hotkey": m1.ss58_address, "reward": 0.9}, {"uid": 4, "hotkey": m2.ss58_address, "reward": 0.2}]})
    assert resp.status == 200 and (await resp.json())["status"] == "approved"
    result = await peer.store.get_final_result(task.task_id)
    assert result is not None and result.uid == 3


async def test_only_validators_taking_part_count_and_the_grace_decides(peer: Harness) -> None:
    a, server = peer.neurons.validator_a.ss58_address, peer.own_hotkey
    m1 = peer.neurons.miner_1.ss58_address
    snapshot = peer.neurons.snapshot()  # stakes: server 100, a 300, b 600
    rewards = [MinerReward(uid=3, hotkey=m1, reward=0.8)]
    # b (600) published nothing: a (300) and the server (100) are the members; a alone holds 75% of them
    task = await peer.done_task()
    outcome = await approval.record_evaluation(peer.store, Evaluation(task_id=task.task_id, validator_hotkey=a,
                                                                      rewards=rewards),
                                               snapshot, 0.5, members=frozenset({server, a}))
    assert outcome.status is TaskStatus.APPROVED and outcome.stake_share == pytest.approx(0.75)
    # every permitted validator taking part: a's 30% waits, then the grace decides on what it has
    task = await peer.done_task()
    outcome = await approval.record_evaluation(peer.store, Evaluation(task_id=task.task_id, validator_hotkey=a,
                                                                      rewards=rewards), snapshot, 0.5)
    assert outcome.status is TaskStatus.DONE and outcome.stake_share == pytest.approx(0.3)
    task = await peer.store.get_task(task.task_id)
    assert await approval.settle_after_grace(peer.store, task, snapshot, 0.5, grace_s=60, now=utcnow()) is None
    later = utcnow() + timedelta(seconds=61)
    status = await approval.settle_after_grace(peer.store, task, snapshot, 0.5, grace_s=60, now=later)
    assert status is TaskStatus.APPROVED
    task = await peer.store.get_task(task.task_id)
    assert "approval grace" in (task.timeline[-1].reason or "") and "30%" in (task.timeline[-1].reason or "")
    assert (await peer.store.get_final_result(task.task_id)).uid == 3  # type: ignore[union-attr]
    # no evaluation yet: the grace waits for the task's own validator
    task = await peer.done_task()
    assert await approval.settle_after_grace(peer.store, task, snapshot, 0.5, grace_s=60, now=later) is None


@pytest.mark.parametrize(("flags", "every_permitted"), [
    (["--store", "sqlite"], False), (["--store", "firestore"], True),
    (["--store", "sqlite", "--store.shared"], True), (["--store", "firestore", "--no-store.shared"], False)])
async def test_whether_the_store_is_shared_is_a_setting_defaulting_from_the_backend(tmp_path: Path, flags: list[str],
                                                                                    every_permitted: bool) -> None:
    """On a shared store every permitted validator counts in quorums (they take part through the store,
    publishing nothing); on one of its own only this validator and its peers do."""
    settings = build_settings([*flags, "--neuron.data_dir", str(tmp_path)], "test")
    me = make_wallet(tmp_path / "wallets", "me").hotkey
    store, blobs = SQLiteTaskStore(tmp_path / "tasks.db"), LocalBlobStore(tmp_path / "blobs")
    validator = Validator(settings, keypair=me, chain=LocalChain(tmp_path / "chain.json", netuid=1), store=store,
                          blobs=blobs, scorer=FixedScorer())
    validator.directory.peers = [Peer(hotkey="peer", url="http://127.0.0.1:9", stake=1.0)]
    try:
        assert validator.quorum_members() == (None if every_permitted else {me.ss58_address, "peer"})
    finally:
        await validator.dendrite.close()
        await validator.peer_http.close()
        await store.close()
        await blobs.close()


async def test_a_peers_blob_larger_than_one_read_arrives_whole(peer: Harness) -> None:
    """A blob streams in many chunks: the client reads to the end (bounded), not one chunk's worth."""
    data = os.urandom(3 << 20)
    ref = await peer.blobs.put(data, content_type="audio/flac")
    http = OutboundHTTP(LOCAL)
    try:
        client = PeerClient(peer.neurons.validator_a, http, max_blob_bytes=4 << 20, timeout_s=10.0)
        assert await client.blob(server_peer(peer), f"/api/v1/validator/blobs/{ref.key}") == data
        small = PeerClient(peer.neurons.validator_a, http, max_blob_bytes=1 << 20, timeout_s=10.0)
        with pytest.raises(PeerError) as refused:
            await small.blob(server_peer(peer), f"/api/v1/validator/blobs/{ref.key}")
        assert refused.value.code == "too_large"
    finally:
        await http.close()
