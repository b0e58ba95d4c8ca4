#!/usr/bin/env python
"""Benchmark of a network of local validators: how long a done task waits for its approval, and by whom.

Starts ``--validators`` validators (default 3) with the shipped entry point (``neurons/proxy_validator.py
--mock``, default logging and settings) on one local chain, each with its own data dir, SQLite store,
side-server port and stake (4000, 3500, 2500, ... as ``run_local.sh --validators``: none holds the 0.5
quorum alone), the first with ``--miners`` reference miners. The validators are registered before
anything starts, as an operator's are, and ``--neuron.resync_s 10`` lets them find each other's
commitments within seconds of starting (the default 120 s only delays the start). Once every validator
counts all the others in its quorum (``GET /api/v1/health``: ``quorum_members``), summarization tasks
go round-robin to the validators at ``--rate`` tasks/s for ``--duration`` s, at most ``--in-flight``
unsettled at once (the load stays bounded: a submission waits for room). Every task is then waited for
(approved, failed or expired) and each validator's store is read.

Printed: tasks submitted / approved / failed; the time from DONE to APPROVED (p50/p99, from the task's
timeline in its validator's store); the share of approved tasks with evaluations from >= 2 validators;
how many were approved by quorum and how many after the approval grace.

Run: ``python scripts/bench_peers.py [--duration 120] [--rate 0.5] [--validators 3] [--miners 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from subnet_proxy.chain.local import LocalChain, Registration  # noqa: E402
from subnet_proxy.client import ProxyClient, ProxyError  # noqa: E402
from subnet_proxy.store import SQLiteTaskStore  # noqa: E402
from subnet_proxy.tasks import TaskStatus  # noqa: E402
from subnet_proxy.wallets import local_wallet  # noqa: E402
from tests.conftest import free_port  # noqa: E402

NETUID = 1
API_KEY = "spx_bench_peers_key_0123456789abcdef"
READY_S = 600.0
SETTLE_S = 600.0
SENTENCES = ("The river rose overnight after three days of heavy rain.", "Farmers moved their herds to higher ground.",
             "The village council opened the school gym as a shelter.", "Buses ran late on the flooded roads.",
             "By noon the water had begun to fall and the first families went home.")


def stake_of(i: int) -> float:
    """As ``run_local.sh --validators``: 4000, 3500, 2500, ... (500 from the eighth on)."""
    return float(4000 - 500 * i if i < 7 else 500)


class Network:
    """The validator processes of one run, on a chain file under ``root``."""

    def __init__(self, root: Path, count: int, miners: int) -> None:
        self.root = root
        self.chain_file = root / "chain.json"
        self.count = count
        self.miners = miners
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        chain = LocalChain(self.chain_file, netuid=NETUID)
        for i in range(count):
            wallet = local_wallet(self.data_dir(i), "default")
            chain.register_sync(Registration.of_wallet(wallet, stake=stake_of(i), validator_permit=True))

    def data_dir(self, i: int) -> Path:
        return self.root / f"validator-{i}"

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def start(self) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
               "PYTHONPATH": str(ROOT)}
        for i in range(self.count):
            argv = [sys.executable, str(ROOT / "neurons" / "proxy_validator.py"), "--mock", "--netuid", str(NETUID),
                    "--mock.miners", str(self.miners if i == 0 else 0), "--neuron.data_dir", str(self.data_dir(i)),
                    "--mock.chain_file", str(self.chain_file), "--mock.validator_stake", str(stake_of(i)),
                    "--proxy.host", "127.0.0.1", "--proxy.port", str(self.ports[i]), "--proxy.api_key", API_KEY,
                    "--neuron.resync_s", "10", "--wandb.off"]
            with open(self.root / f"validator-{i}.log", "ab") as log:
                self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL, env=env, cwd=ROOT))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    async def wait_ready(self, clients: list[ProxyClient]) -> float:
        """Seconds until every validator serves and counts every validator in its quorum."""
        started = time.monotonic()
        while time.monotonic() - started < READY_S:
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    raise RuntimeError(f"validator {i} exited ({proc.returncode}); see {self.root}/validator-{i}.log")
            try:
                healths = [await client.health() for client in clients]
                if all(h.ready and h.quorum_members == self.count for h in healths):
                    return time.monotonic() - started
            except (ProxyError, OSError):
                pass
            await asyncio.sleep(1.0)
        raise TimeoutError(f"the validators did not all see each other within {READY_S:.0f} s")


async def load(clients: list[ProxyClient], *, rate: float, duration: float, in_flight: int) -> list[tuple[int, str]]:
    """Submit at ``rate`` for ``duration`` s, round-robin, with at most ``in_flight`` unsettled; wait for all."""
    room = asyncio.Semaphore(in_flight)
    submitted: list[tuple[int, str]] = []
    watchers: list[asyncio.Task[None]] = []

    async def settle(client: ProxyClient, task_id: str) -> None:
        try:  # a long-poll for the final result: one request a task at a time, within the key's rate
            await client.wait(task_id, timeout_s=SETTLE_S, stage="final")
        except (ProxyError, TimeoutError):
            pass  # failed, expired or stuck: counted by status when the stores are read
        finally:
            room.release()

    start = time.monotonic()
    n = 0
    while (due := start + n / rate) < start + duration:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await room.acquire()
        i = n % len(clients)
        text = " ".join(SENTENCES[(n + k) % len(SENTENCES)] for k in range(4)) + f" Bulletin {n}."
        accepted = await clients[i].submit_summarization(text)
        submitted.append((i, accepted.task_id))
        watchers.append(asyncio.create_task(settle(clients[i], accepted.task_id)))
        n += 1
    await asyncio.gather(*watchers)
    return submitted


async def measure(net: Network, submitted: list[tuple[int, str]]) -> dict[str, Any]:
    """The figures, from each validator's store (timelines and evaluations)."""
    waits: list[float] = []
    statuses: dict[str, int] = {}
    by_two = by_grace = 0
    for i in range(net.count):
        store = SQLiteTaskStore(net.data_dir(i) / "tasks.db")
        try:
            for _, task_id in (s for s in submitted if s[0] == i):
                task = await store.get_task(task_id)
                statuses[task.status.value] = statuses.get(task.status.value, 0) + 1
                if task.status is not TaskStatus.APPROVED:
                    continue
                done = next(s.at for s in reversed(task.timeline) if s.status is TaskStatus.DONE)
                approved = next(s for s in reversed(task.timeline) if s.status is TaskStatus.APPROVED)
                waits.append((approved.at - done).total_seconds())
                by_grace += (approved.reason or "").startswith("approval grace")
                by_two += len({e.validator_hotkey for e in await store.list_evaluations(task_id)}) >= 2
        finally:
            await store.close()
    waits.sort()
    return {
        "submitted": len(submitted), "statuses": statuses,
        "done_to_approved_p50_s": round(statistics.median(waits), 2) if waits else None,
        "done_to_approved_p99_s": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 2) if waits else None,
        "approved_by_2_or_more": round(by_two / len(waits), 3) if waits else None,
        "approved_after_grace": by_grace,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    net = Network(root, args.validators, args.miners)
    net.start()
    clients = [ProxyClient(net.url(i), api_key=API_KEY) for i in range(args.validators)]
    try:
        ready_s = await net.wait_ready(clients)
        print(f"{args.validators} validators ready in {ready_s:.0f} s (logs: {root}); load for {args.duration:.0f} s",
              file=sys.stderr)
        started = time.monotonic()
        submitted = await load(clients, rate=args.rate, duration=args.duration, in_flight=args.in_flight)
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            await client.close()
        net.stop()
    figures = await measure(net, submitted)
    return {"validators": args.validators, "miners": args.miners, "rate_per_s": args.rate,
            "in_flight": args.in_flight, "load_s": args.duration, "elapsed_s": round(elapsed, 1), **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validators", type=int, default=3)
    parser.add_argument("--miners", type=int, default=2, help="reference miners (started by the first validator)")
    parser.add_argument("--rate", type=float, default=0.5, help="client tasks per second")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--in-flight", type=int, default=16, help="unsettled tasks at most")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(json.dumps(figures))
    print(f"DONE -> APPROVED p50 {figures['done_to_approved_p50_s']} s, p99 {figures['done_to_approved_p99_s']} s; "
          f"approved by >= 2 validators: {figures['approved_by_2_or_more']}; statuses {figures['statuses']}")


if __name__ == "__main__":
    main()
