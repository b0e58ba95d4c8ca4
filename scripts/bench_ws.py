"""WebSocket benchmark: 1,000 concurrent subscribers on the shipped side-server; CPU per event, memory per connection.

The server is the shipped entry point (``python -m subnet_proxy.server``: embedded stores, no
validator loop) in its own process; this process holds the clients. ``--keys`` client keys each
submit ``--tasks`` summarization tasks and open ``--connections / --keys`` WebSockets, each
following all of its key's tasks by id. Then every task is cancelled (the client API's own write:
each cancel makes two events, ``failed`` and ``end``, for every subscriber of the task).

Printed: the server's resident memory per open connection (RSS with every subscriber connected and
subscribed, minus RSS before the first connected, over the number of connections); the server's
CPU over the cancel phase per event delivered, with and without subscribers (the same cancels with
no one watching give the cost of the writes alone; the difference is the events' cost); and the
server's CPU while the subscribers sit idle (pings, the ``--proxy.watch_poll_s`` re-read of
followed tasks).

Run: ``python scripts/bench_ws.py [--connections 1000] [--keys 100] [--tasks 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from subnet_proxy.api.ws import ServerMessage, Subscribed, TaskEvent  # noqa: E402
from tests.conftest import free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class Server:
    """The shipped side-server in a child process."""

    def __init__(self, data_dir: str, keys: list[str], per_key: int) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "subnet_proxy.server", "--neuron.data_dir", data_dir, "--proxy.host",
                "127.0.0.1", "--proxy.port", str(self.port), "--proxy.max_connections", "4000",
                "--proxy.ws_per_key", str(per_key), "--proxy.max_in_flight", str(per_key + 64),
                "--proxy.rate_per_s", "100000", "--proxy.burst", "100000"]
        for key in keys:
            args += ["--proxy.api_key", key]
        self.proc = subprocess.Popen(args, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            try:
                async with session.get(self.url + "/api/v1/health"):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the server did not start")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def submit(session: aiohttp.ClientSession, url: str, key: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        async with session.post(url + "/api/v1/summarization", json={"text": f"Bench text {i}. " * 5},
                                headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 202, await resp.text()
            ids.append((await resp.json())["task_id"])
    return ids


async def cancel_all(session: aiohttp.ClientSession, url: str, owned: dict[str, list[str]]) -> None:
    async def cancel(key: str, ids: list[str]) -> None:
        for task_id in ids:
            async with session.post(f"{url}/api/v1/task/{task_id}/cancel",
                                    headers={"Authorization": f"Bearer {key}"}) as resp:
                assert resp.status == 200, await resp.text()

    await asyncio.gather(*(cancel(key, ids) for key, ids in owned.items()))


class Subscriber:
    def __init__(self) -> None:
        self.events = 0
        self.ended = 0
        self.subscribed = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str, key: str, ids: list[str]) -> None:
        async with session.ws_connect(url.replace("http", "ws", 1) + "/api/v1/ws",
                                      headers={"Authorization": f"Bearer {key}"}) as ws:
            await ws.send_json({"type": "subscribe", "task_ids": ids})
            async for msg in ws:
                message = ServerMessage.model_validate_json(msg.data).root
                if isinstance(message, Subscribed):
                    self.subscribed.set()
                elif isinstance(message, TaskEvent):
                    self.events += 1
                    self.ended += message.event == "end"
                    if self.ended == len(ids):
                        return


async def phase(server: Server, session: aiohttp.ClientSession, keys: list[str], tasks: int,
                per_key: int) -> tuple[float, int, float]:
    """Submit, connect ``per_key`` subscribers a key (0: none), cancel: (RSS growth MB, events, cancel CPU s)."""
    owned = {key: ids for key, ids in zip(keys, await asyncio.gather(
        *(submit(session, server.url, key, tasks) for key in keys)), strict=True)}
    rss_before = server.rss_mb()
    subs = [(Subscriber(), key) for key in keys for _ in range(per_key)]
    runs = [asyncio.create_task(s.run(session, server.url, key, owned[key])) for s, key in subs]
    await asyncio.gather(*(s.subscribed.wait() for s, _ in subs))
    while sum(s.events for s, _ in subs) < len(subs) * tasks:  # the replayed "pending" of every task
        await asyncio.sleep(0.05)
    grown = server.rss_mb() - rss_before
    replayed = sum(s.events for s, _ in subs)
    if subs:
        idle_cpu = server.cpu_s()
        await asyncio.sleep(5)
        print(f"idle, {len(subs)} subscribers connected: server CPU {(server.cpu_s() - idle_cpu) / 5 * 100:.1f}% "
              "of a core (pings, the watch_poll_s re-read of followed tasks)")
    cpu = server.cpu_s()
    await cancel_all(session, server.url, owned)
    await asyncio.gather(*runs)
    return grown, sum(s.events for s, _ in subs) - replayed, server.cpu_s() - cpu


async def bench(connections: int, n_keys: int, tasks: int) -> None:
    per_key = connections // n_keys
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * connections + 256)), hard))
    keys = [f"sp_bench-{i:04d}-0123456789abcdefghijklmnop" for i in range(n_keys)]
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(data_dir, keys, per_key)
        connector = aiohttp.TCPConnector(limit=0)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                await server.ready(session)
                _, _, alone_cpu = await phase(server, session, keys, tasks, 0)
                grown, events, cpu = await phase(server, session, keys, tasks, per_key)
        finally:
            server.stop()
    cancels = n_keys * tasks
    print(f"{per_key * n_keys} subscribers ({n_keys} keys x {per_key}), each following {tasks} tasks; "
          f"{cancels} cancels -> {events} events delivered")
    print(f"server RSS per connection (connected, subscribed): {grown * 1024 / (per_key * n_keys):.1f} KB")
    print(f"server CPU over the cancels: {cpu:.2f} s with subscribers, {alone_cpu:.2f} s without")
    print(f"server CPU per event delivered: {cpu / events * 1e6:.0f} us all in, "
          f"{(cpu - alone_cpu) / events * 1e6:.0f} us beyond the cancels' own cost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=10, help="Tasks per key (followed by each of its subscribers).")
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(bench(args.connections, args.keys, args.tasks))
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
