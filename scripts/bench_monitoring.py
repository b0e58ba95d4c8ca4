"""Monitoring benchmark: what the live dashboard costs the validator, and how fast ``/metrics`` scrapes.

One process runs a real validator (embedded store, a full local subnet: 255 miners and the
validator, every uid scored) and its side-server; task events are fed to its metrics at 5 a second so the
dashboard's state changes all the time (it is rebuilt and pushed once a second, its busiest). The
validator process's CPU is measured over the same wall time without the page, then with the
dashboard open in Debian's headless Chromium (a separate process: the browser's own work is not
the validator's); the difference over the wall time is the dashboard's share of one core.
Then ``/metrics`` is scraped repeatedly (256 uids known): the server-side time (its own request
histogram) and the client's round trip (the client shares the process) are printed, and what a
scrape is made of (the store's counts, the validator's metrics, the server's).

Targets (issue 17): the dashboard and its feed < 1% CPU; a scrape < 10 ms.
Run: ``python scripts/bench_monitoring.py [--seconds 20] [--scrapes 300]`` (needs ``chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bittensor_wallet import Keypair  # noqa: E402

from subnet_proxy.blobs import LocalBlobStore  # noqa: E402
from subnet_proxy.chain.local import LocalChain, Registration  # noqa: E402
from subnet_proxy.config import MockSettings, NeuronSettings, Settings  # noqa: E402
from subnet_proxy.keys import Role  # noqa: E402
from subnet_proxy.keys.sqlite import SqliteKeyStore  # noqa: E402
from subnet_proxy.monitoring.metered import MeteredStore  # noqa: E402
from subnet_proxy.monitoring.task_metrics import TaskMetrics  # noqa: E402
from subnet_proxy.server.app import create_app, start_server  # noqa: E402
from subnet_proxy.store import SQLiteTaskStore  # noqa: E402
from subnet_proxy.validator.neuron import Validator  # noqa: E402
from tests.browser import Chromium  # noqa: E402

#: a full subnet: 255 miners and this validator, 256 uids in the score book and the miner table.
MINERS = 255
VIEWER = "bench-viewer-key-0123456789abcdef"


class NoScorer:
    async def score(self, task, responses, *, timeout_s):  # type: ignore[no-untyped-def]
        return []


async def feed_events(metrics: TaskMetrics, stop: asyncio.Event) -> None:
    """Task events at 5 a second, as a busy validator would record them."""
    rng, n = random.Random(7), 0
    kinds = ["transcription", "tts", "summarization"]
    while not stop.is_set():
        kind, task_id = kinds[n % 3], f"{n:032x}"
        metrics.task_submitted(kind, task_id)
        metrics.answer(kind, task_id, "ok", rng.uniform(0.2, 3.0))
        metrics.task_approved(kind, task_id, rng.uniform(2.0, 20.0))
        n += 1
        await asyncio.sleep(0.2)


async def cpu_over(seconds: float) -> float:
    """Share of one core this process used over ``seconds`` of wall time."""
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - wall)


async def main(seconds: float, scrapes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as folder:
        root = Path(folder)
        chain = LocalChain(root / "chain.json", netuid=1, block_time_s=1.0)
        validator_key = Keypair.create_from_uri("//BenchValidator")
        for i in range(MINERS):
            hotkey = Keypair.create_from_uri(f"//BenchMiner{i}").ss58_address
            await chain.register(Registration(hotkey=hotkey, coldkey=hotkey, ip="127.0.0.1", port=20000 + i))
        await chain.register(Registration(hotkey=validator_key.ss58_address, coldkey=validator_key.ss58_address,
                                          stake=10_000.0, validator_permit=True))
        settings = Settings(netuid=1, neuron=NeuronSettings(data_dir=str(root), synthetic_rate=0.0),
                            mock=MockSettings(enabled=True, block_time_s=1.0))
        metrics = TaskMetrics()
        store = MeteredStore(SQLiteTaskStore(root / "tasks.db"), metrics)
        blobs = LocalBlobStore(root / "blobs")
        keys = SqliteKeyStore(root / "keys.db")
        await keys.seed(VIEWER, role=Role.VIEWER, name="bench")
        validator = Validator(settings, keypair=validator_key,
                              chain=LocalChain(chain.path, netuid=1, hotkey=validator_key.ss58_address,
                                               block_time_s=1.0),
                              store=store, blobs=blobs, scorer=NoScorer(), metrics=metrics)
        await validator.start()
        rng = random.Random(1)
        for uid in range(MINERS + 1):  # every uid scored: full rows in the table and the gauges
            hotkey = validator.metagraph().by_uid(uid).hotkey
            validator.scores.update(uid, hotkey, rng.random(), latency_s=rng.uniform(0.1, 5), success=True)
        app = create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=validator.metagraph,
                         own_hotkey=validator.hotkey, miner_stats=validator.miner_stats, monitor=validator.monitor)
        server = await start_server(app, settings, host="127.0.0.1", port=0)
        stop = asyncio.Event()
        feeder = asyncio.create_task(feed_events(metrics, stop))
        try:
            await asyncio.sleep(2)  # start-up settles
            without = await cpu_over(seconds)
            async with Chromium() as browser:
                await browser.goto(server.url + "/dashboard")
                await browser.evaluate(f"document.getElementById('key').value = {VIEWER!r}; "
                                       "document.getElementById('open').click()")
                await browser.wait_for("document.body.dataset.state === 'live'")
                builds = app_builds(app)
                with_page = await cpu_over(seconds)
                pushes = int(await browser.evaluate("+document.body.dataset.version"))
                builds = app_builds(app) - builds
            print(f"validator CPU, idle + 5 task events/s: {without * 100:.2f}% of a core without the dashboard, "
                  f"{with_page * 100:.2f}% with it open")
            print(f"dashboard + live feed: {(with_page - without) * 100:+.2f}% of a core "
                  f"({builds} state rebuilds, {pushes} pushes in {seconds:.0f} s; target < 1%)")

            times = []
            async with aiohttp.ClientSession() as session:
                for _ in range(scrapes):
                    started = time.perf_counter()
                    async with session.get(server.url + "/metrics") as resp:
                        body = await resp.read()
                    times.append(time.perf_counter() - started)
            times.sort()
            # CPU time (not wall time: the shared machine's load would count) of each part of a scrape
            parts = {}
            started = time.process_time()
            for _ in range(50):
                counts = await store.count_by_status()
            parts["store counts"] = (time.process_time() - started) / 50
            for name, sync in (("validator metrics", lambda: validator.monitor.exposition(counts)),
                               ("server metrics", lambda: app_render(app, counts, validator.miner_stats()))):
                started = time.process_time()
                for _ in range(50):
                    sync()
                parts[name] = (time.process_time() - started) / 50
            parts["in all"] = sum(parts.values())
            print("CPU of one scrape: " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in parts.items()))
            server_s = app_scrape_seconds(app)
            print(f"/metrics with {MINERS + 1} uids ({len(body) // 1024} KB), {scrapes} scrapes: "
                  f"server-side mean {server_s * 1000:.2f} ms (the side-server's own request histogram); "
                  f"client round trip p50 {statistics.median(times) * 1000:.2f} ms, "
                  f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.2f} ms (target < 10 ms)")
        finally:
            stop.set()
            await feeder
            await server.stop()
            await validator.stop()
            for closing in (store, blobs, keys, chain):
                await closing.close()


def app_render(app, counts, miners) -> bytes:  # type: ignore[no-untyped-def]
    from subnet_proxy.server.context import CONTEXT

    return app[CONTEXT].metrics.render(counts, miners)


def app_scrape_seconds(app) -> float:  # type: ignore[no-untyped-def]
    """Mean handler time of GET /metrics, from the server's own latency histogram."""
    from subnet_proxy.server.context import CONTEXT

    total = count = 0.0
    for family in app[CONTEXT].metrics.latency.collect():
        for sample in family.samples:
            if sample.labels.get("route") == "/metrics":
                if sample.name.endswith("_sum"):
                    total = sample.value
                elif sample.name.endswith("_count"):
                    count = sample.value
    return total / count if count else float("nan")


def app_builds(app) -> int:  # type: ignore[no-untyped-def]
    from subnet_proxy.server.context import CONTEXT

    return app[CONTEXT].dashboard.builds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Wall time of each CPU measurement.")
    parser.add_argument("--scrapes", type=int, default=300, help="/metrics requests timed.")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.scrapes))
