"""A network of three validator processes on one local chain, each its own SQLite store, data dir and port,
with stakes none of which holds the quorum alone: tasks of all three kinds are approved by stake with
evaluations from at least two validators; one validator killed (SIGKILL) mid-run, the others' tasks
still approve (the grace), and its own resume when it restarts. Slow: real models and miners.

The quorum is 0.7 of the stake (4000, 3500, 2500 of 10,000): every validator needs a peer's evaluation,
and without the largest (killed) the other two cannot reach it, so their tasks wait out the grace.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from subnet_proxy.store import SQLiteTaskStore
from tests.conftest import free_port
from tests.e2e.conftest import API_KEY, NETUID, ROOT, Client, Subnet

pytestmark = pytest.mark.slow

STAKES = (4000.0, 3500.0, 2500.0)
QUORUM = 0.7
#: longer than peers take to judge a task on a busy machine (the first test wants quorums, not graces)
GRACE_S = 45
#: any wait for a task's outcome; generous for a shared 2-core machine, finite
SETTLE_S = 300
SPOKEN = "The weather station reported light rain in the morning and a clear sky by the evening."
TEXT = ("The river rose overnight after three days of heavy rain. Farmers moved their herds to higher ground "
        "before dawn. The village council opened the school gym as a shelter for families from the low streets.")


class Network(Subnet):
    """The e2e subnet's chain and miner, and three validators of their own (one data dir and port each),
    registered before the miner starts."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, validator=False)
        self.ports = [free_port() for _ in STAKES]
        self.hotkeys = [self.register_validator(root / f"v{i}", stake) for i, stake in enumerate(STAKES)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * len(STAKES)

    def start(self, i: int) -> None:
        argv = [sys.executable, str(ROOT / "neurons" / "proxy_validator.py"), "--mock", "--netuid", str(NETUID),
                "--neuron.data_dir", str(self.root / f"v{i}"), "--mock.chain_file", str(self.chain_file),
                "--mock.block_time_s", "1", "--mock.validator_stake", str(STAKES[i]), "--proxy.host", "127.0.0.1",
                "--proxy.port", str(self.ports[i]), "--proxy.api_key", API_KEY, "--neuron.sample_size", "2",
                "--neuron.synthetic_rate", "0", "--neuron.resync_s", "2", "--neuron.lease_s", "6",
                "--neuron.timeout", "60", "--neuron.concurrency", "2", "--proxy.peer_poll_s", "1",
                "--proxy.quorum", str(QUORUM), "--proxy.approval_grace_s", str(GRACE_S),
                "--neuron.recover_s", "5", "--neuron.epoch_length", "8", "--wandb.off"]
        self.procs[i] = self._spawn(f"validator{i}", argv)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def url_of(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def stake_share(self, hotkeys: set[str]) -> float:
        return sum(stake for hotkey, stake in zip(self.hotkeys, STAKES, strict=True) if hotkey in hotkeys) / sum(STAKES)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                proc.wait(timeout=60)
        super().stop_all()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    net = Network(tmp_path_factory.mktemp("network"))
    try:
        port = net.start_reference_miner(0)
        net.wait_serving([port])
        for i in range(len(STAKES)):
            net.start(i)
        yield net
    finally:
        net.stop_all()


@pytest.fixture
async def clients(network: Network) -> AsyncIterator[list[Client]]:
    async with aiohttp.ClientSession() as session:
        clients = [Client(session, network.url_of(i)) for i in range(len(STAKES))]
        for i, client in enumerate(clients):
            proc = network.procs[i]
            assert proc is not None
            await client.wait_ready(proc)
        for client in clients:  # each counts the others before a task is sent: a validator that knows no
            await quorum_of_all(client)  # peer yet is a lone one and approves its own tasks at once, by rule
        yield clients


async def quorum_of_all(client: Client, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with client.session.get(f"{client.url}/api/v1/health") as resp:
            members = (await resp.json()).get("quorum_members")
        if members == len(STAKES):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{client.url} counts {members} quorum members, not {len(STAKES)}")
        await asyncio.sleep(0.5)


async def evaluators(network: Network, i: int, task_id: str) -> set[str]:
    store = SQLiteTaskStore(network.root / f"v{i}" / "tasks.db")
    try:
        return {e.validator_hotkey for e in await store.list_evaluations(task_id)}
    finally:
        await store.close()


async def approved(client: Client, task_id: str) -> dict[str, Any]:
    """The task's status once it is approved; fails at once when it ends otherwise."""
    status = await client.wait_status(task_id, "approved", "failed", "expired", timeout=SETTLE_S)
    assert status["status"] == "approved" and status["result"] is not None, status
    return status


def approval_reason(status: dict[str, Any]) -> str:
    return next(step.get("reason") or "" for step in status["timeline"] if step["status"] == "approved")


async def test_tasks_of_every_kind_are_approved_by_stake_with_peers_evaluations(network: Network,
                                                                                clients: list[Client]) -> None:
    submitted = [(i, await client.submit("summarization", text=f"{TEXT} Report {i}."))
                 for i, client in enumerate(clients)]
    speech = await clients[2].submit("tts", text=SPOKEN)
    submitted.append((2, speech))
    await approved(clients[2], speech)
    submitted.append((1, await clients[1].submit_audio(await clients[2].audio_result(speech))))
    for i, task_id in submitted:
        status = await approved(clients[i], task_id)
        assert approval_reason(status) == "quorum reached", status["timeline"]
        judges = await evaluators(network, i, task_id)
        assert len(judges) >= 2 and network.stake_share(judges) >= QUORUM, (i, judges)
    # each validator learnt from what it judged and set weights on the one chain
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while (setters := {r.hotkey for r in network.chain.weights_history_sync()}) < set(network.hotkeys):
        assert loop.time() < deadline, f"weights only from {setters}"
        await asyncio.sleep(1.0)


async def test_a_killed_validator_delays_others_by_the_grace_and_resumes_its_own(network: Network,
                                                                                 clients: list[Client]) -> None:
    own = await clients[0].submit("tts", text=f"Before the crash. {SPOKEN}")
    # killed while its miner speaks (unless it was quicker than this poll): the task is re-claimed when
    # its lease runs out after the restart. The largest stake: the other two hold 60%, under the quorum.
    await clients[0].wait_status(own, "distributed", "done", "approved", "failed", timeout=SETTLE_S)
    network.kill(0)
    others = [(i, await clients[i].submit("summarization", text=f"{TEXT} While one is down {i}."))
              for i in (1, 2)]
    for i, task_id in others:
        status = await approved(clients[i], task_id)
        assert approval_reason(status).startswith("approval grace"), status["timeline"]
    network.start(0)
    await clients[0].wait_ready(network.procs[0])  # type: ignore[arg-type]
    await approved(clients[0], own)
