"""Webhook benchmark: delivery latency from a task's event to its receiver, on loopback.

One process runs what the side-server runs for webhooks (``server.webhooks.Webhooks``: the producer
on the store's change feed, the outbox in the embedded SQLite store, the bounded worker) over a
fresh data dir in local mode; a receiver in a separate process (aiohttp on 127.0.0.1, answering
200) notes when each event arrives. N tasks with a callback URL are created, then failed (a
client's cancel) one after another at a steady rate; each event's latency is from just before the
move was written to its arrival at the receiver (both read ``time.time()`` on one machine). The
signature of every event is checked by the receiver (``verify_webhook``).

Run: ``python scripts/bench_webhooks.py [--tasks 1000] [--rate 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from subnet_proxy.config import MockSettings, NeuronSettings, ProxySettings, Settings  # noqa: E402
from subnet_proxy.keys.sqlite import SqliteKeyStore  # noqa: E402
from subnet_proxy.server.webhooks import Webhooks  # noqa: E402
from subnet_proxy.store import SQLiteTaskStore  # noqa: E402
from subnet_proxy.store.watched import WatchedStore  # noqa: E402
from subnet_proxy.tasks import Task, TaskInput, TaskStatus  # noqa: E402
from subnet_proxy.webhook_signature import verify_webhook  # noqa: E402

SECRET = "whsec_bench-secret-0123456789"


def receive(expected: int, port_out: multiprocessing.Queue, results: multiprocessing.Queue) -> None:
    """The receiver process: note each event's arrival time; hand them all back once ``expected`` came."""
    arrived: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        verify_webhook(SECRET, body, request.headers.get("X-Signature"))
        task_id = body.split(b'"task_id":"', 1)[1][:32].decode()
        arrived[task_id] = at
        if len(arrived) == expected:
            results.put(arrived)
        return web.Response()

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(serve())


async def bench(tasks: int, rate: float, url: str, results: multiprocessing.Queue) -> list[float]:
    """Latencies in ms, one per event."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = Settings(neuron=NeuronSettings(data_dir=str(data_dir)), mock=MockSettings(enabled=True),
                            proxy=ProxySettings(webhook_secret=SECRET))
        store = WatchedStore(SQLiteTaskStore(data_dir / "tasks.db"))
        keys = SqliteKeyStore(data_dir / "keys.db")
        webhooks = Webhooks(settings, store, keys)
        webhooks.start()
        try:
            made = [(await store.create_task(Task(kind="summarization", owner="k_bench", input=TaskInput(text="x"),
                                                  callback_url=url)))[0] for _ in range(tasks)]
            sent: dict[str, float] = {}
            start = time.perf_counter()
            for n, task in enumerate(made):
                pause = start + n / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                sent[task.task_id] = time.time()
                await store.transition(task.task_id, TaskStatus.FAILED, error=("cancelled", "bench"))
            arrived: dict[str, float] = await asyncio.to_thread(results.get, True, 120)
        finally:
            await webhooks.stop()
            await store.close()
            await keys.close()
    return sorted((arrived[t] - sent[t]) * 1000 for t in sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="events a second")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    port_q, results_q = ctx.Queue(), ctx.Queue()
    receiver = ctx.Process(target=receive, args=(args.tasks, port_q, results_q), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{port_q.get(timeout=30)}/hook"

    latencies = asyncio.run(bench(args.tasks, args.rate, url, results_q))
    receiver.terminate()
    q = statistics.quantiles(latencies, n=100)
    print(f"webhook delivery, event -> receiver on loopback: {len(latencies)} events at {args.rate:.0f}/s")
    print(f"  p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms   max {latencies[-1]:.2f} ms")


if __name__ == "__main__":
    main()
