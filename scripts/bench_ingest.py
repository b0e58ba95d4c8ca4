"""Ingest benchmark: the side-server's submit path against a bare aiohttp handler measured in the same run.

Each server runs in its own child process on 127.0.0.1; this process drives both with the same
aiohttp client at rising concurrency, for two workloads, the two servers taking turns for a few
rounds per row (the median is printed: on a shared machine a slow spell then hits both):

- ``summarization``: a JSON body of ~1 KB (proxy: auth, rate limit, validation, SQLite insert);
- ``audio``: a 0.5 s 16 kHz WAV as multipart, a different file per request (proxy: plus decode and blob
  write).

The bare handler reads the same body (parses the JSON / reads the multipart field) and answers 202:
the ceiling of this stack on this machine. Printed per row: requests/s, p50/p99 latency and the
server process's CPU ms per request of both, proxy/bare throughput as a ratio and the CPU cost as a
multiple (CPU per request does not move with other load on a shared machine; throughput does).
Targets (issue 4): ratio >= 0.5, proxy p99 < 50 ms at 64 clients. Run: ``python scripts/bench_ingest.py [--quick]
[--fsync] [--rounds N]`` (``--fsync``: the proxy flushes every commit and blob to disk, ``--store.fsync``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import encode_audio  # noqa: E402
from subnet_proxy.config import NeuronSettings, ProxySettings, Settings, StoreSettings  # noqa: E402

KEY = "bench-key-0123456789abcdef"
TEXT = ("The quick brown fox jumps over the lazy dog. " * 22).strip()


# -- servers (child processes) -----------------------------------------------------------------------
async def bare_app() -> web.Application:
    async def submit_json(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"task_id": "x", "status": "pending", "n": len(body["text"])}, status=202)

    async def submit_audio(request: web.Request) -> web.Response:
        reader = await request.multipart()
        size = 0
        while (part := await reader.next()) is not None:
            size += len(await part.read())  # type: ignore[union-attr]
        return web.json_response({"task_id": "x", "status": "pending", "n": size}, status=202)

    app = web.Application()
    app.add_routes([web.post("/api/v1/summarization", submit_json), web.post("/api/v1/transcription", submit_audio)])
    return app


async def serve(kind: str, port: int, data_dir: str, fsync: bool) -> None:
    if kind == "bare":
        runner = web.AppRunner(await bare_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop_server: Callable[[], Awaitable[None]] = runner.cleanup
        closers: list[Callable[[], Awaitable[None]]] = []
    else:
        from subnet_proxy.blobs import open_blob_store
        from subnet_proxy.keys import open_key_store
        from subnet_proxy.server import create_app, start_server
        from subnet_proxy.store import open_task_store
        from subnet_proxy.store.watched import WatchedStore

        settings = Settings(neuron=NeuronSettings(data_dir=data_dir), store=StoreSettings(fsync=fsync),
                            proxy=ProxySettings(api_key=[KEY], rate_per_s=1e6, burst=1_000_000, max_in_flight=10_000))
        store = WatchedStore(open_task_store(settings))
        blobs, keys = open_blob_store(settings), open_key_store(settings)
        app = create_app(settings, store=store, blobs=blobs, keys=keys, metagraph=lambda: None, own_hotkey="")
        server = await start_server(app, settings, host="127.0.0.1", port=port)
        stop_server = server.stop
        closers = [keys.close, blobs.close, store.close]
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await stop_server()
    for close in closers:
        await close()


# -- load generator ----------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    def __init__(self, kind: str, data_dir: str, *, fsync: bool = False) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port), "--data-dir", data_dir,
             *(["--fsync"] if fsync else [])],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"{kind} server did not start: {line!r}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used: a figure other load cannot inflate."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def make_request(workload: str, audio: bytes) -> Callable[[aiohttp.ClientSession, str], Awaitable[int]]:
    headers = {"Authorization": f"Bearer {KEY}"}
    if workload == "summarization":
        body = json.dumps({"text": TEXT, "max_words": 30}).encode()

        async def post_json(session: aiohttp.ClientSession, url: str) -> int:
            async with session.post(url + "/api/v1/summarization", data=body,
                                    headers={**headers, "Content-Type": "application/json"}) as resp:
                await resp.read()
                return resp.status

        return post_json

    serial = itertools.count()

    async def post_audio(session: aiohttp.ClientSession, url: str) -> int:
        # a different file each time (the last two 16-bit samples carry a counter): the blob store is
        # content-addressed, so repeating one file would skip its write and flatter the proxy
        unique = audio[:-4] + (next(serial) & 0xFFFF_FFFF).to_bytes(4, "little")
        form = aiohttp.FormData()
        form.add_field("audio", io.BytesIO(unique), filename="a.wav", content_type="audio/wav")
        async with session.post(url + "/api/v1/transcription", data=form, headers=headers) as resp:
            await resp.read()
            return resp.status

    return post_audio


async def load(server: Child, request: Callable[[aiohttp.ClientSession, str], Awaitable[int]], concurrency: int,
               seconds: float) -> tuple[float, float, float, int, float]:
    """(requests/s, p50 ms, p99 ms, errors, server CPU ms per request) for ``concurrency`` clients looping
    for ``seconds``."""
    url = server.url
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(min(concurrency, 8)):  # warm connections and code paths
            await request(session, url)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await request(session, url)
                latencies.append(time.perf_counter() - started)
                if status != 202:
                    errors += 1

        started, cpu_before = time.perf_counter(), server.cpu_s()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, server.cpu_s() - cpu_before
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    n = len(latencies)
    return n / elapsed, statistics.median(latencies) * 1000, p99 * 1000, errors, cpu / n * 1000


def median_row(rounds: list[tuple[float, float, float, int, float]]) -> tuple[float, float, float, int, float]:
    """Per column, the median over the rounds (errors: the sum)."""
    return (statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds),
            statistics.median(r[2] for r in rounds), sum(r[3] for r in rounds), statistics.median(r[4] for r in rounds))


async def bench(quick: bool, fsync: bool, rounds: int) -> None:
    import numpy as np

    t = np.arange(8_000, dtype=np.float32) / 16_000
    audio = encode_audio((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000, "wav")
    levels = [1, 16, 64] if quick else [1, 8, 32, 64]
    seconds = 1.0 if quick else 2.0
    with tempfile.TemporaryDirectory() as tmp:
        bare, proxy = Child("bare", tmp), Child("proxy", tmp, fsync=fsync)
        try:
            print(f"ingest benchmark: {rounds} rounds of {seconds:g} s per row, bare and proxy taking turns (each "
                  f"figure the median over the rounds, the ratio's range in brackets); client and each server in "
                  f"separate processes, {os.cpu_count()} cores{'; proxy with --store.fsync' if fsync else ''}")
            print(f"{'workload':<14}{'conc':>5} | {'bare rps':>9}{'p50 ms':>8}{'p99 ms':>8}{'cpu ms':>8} | "
                  f"{'proxy rps':>9}{'p50 ms':>8}{'p99 ms':>8}{'cpu ms':>8} | {'ratio':>6} {'(range)':<11}{'cpu x':>6}"
                  f"{'errors':>7}")
            for workload in ("summarization", "audio"):
                request = make_request(workload, audio)
                for conc in levels:
                    turns = []
                    for _ in range(rounds):  # taking turns: a slow spell of the machine hits both
                        b_turn = await load(bare, request, conc, seconds)
                        turns.append((b_turn, await load(proxy, request, conc, seconds)))
                    b, p = median_row([bt for bt, _ in turns]), median_row([pt for _, pt in turns])
                    ratios = sorted(pt[0] / bt[0] for bt, pt in turns)
                    print(f"{workload:<14}{conc:>5} | {b[0]:>9.0f}{b[1]:>8.2f}{b[2]:>8.2f}{b[4]:>8.3f} | "
                          f"{p[0]:>9.0f}{p[1]:>8.2f}{p[2]:>8.2f}{p[4]:>8.3f} | {statistics.median(ratios):>6.2f} "
                          f"{f'({ratios[0]:.2f}-{ratios[-1]:.2f})':<11}{p[4] / b[4]:>6.2f}{b[3] + p[3]:>7}", flush=True)
        finally:
            bare.stop()
            proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer, shorter rows.")
    parser.add_argument("--rounds", type=int, default=3, help="Turns of bare and proxy per row (default 3).")
    parser.add_argument("--fsync", action="store_true",
                        help="Run the proxy with --store.fsync (every commit and blob flushed to disk).")
    parser.add_argument("--serve", choices=["bare", "proxy"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.port, args.data_dir, args.fsync))
    else:
        asyncio.run(bench(args.quick, args.fsync, max(1, args.rounds)))


if __name__ == "__main__":
    main()
