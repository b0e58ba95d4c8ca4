"""Ingest benchmark of the shipped entry points, default logging on, against a bare aiohttp handler in the same run.

The servers measured are what operators run, as child processes with their own default logging (the
access log: one JSON line per request, written to a file here), only the rate limits raised by flags:

- ``server``: ``python -m subnet_proxy.server --mock`` (an ingestion-only instance);
- ``validator/0``: ``python neurons/proxy_validator.py --mock --mock.miners 0`` (the loop running);
- ``validator/3``: the same with 3 loopback miners (``scripts/loopback_miners.py``) registered on its local
  chain, so the loop dispatches the tasks it is taking in;

each once as it is and once with ``--store.fsync`` (every acknowledged task survives a power loss).
The baseline is a bare aiohttp handler (``--serve bare``: reads the body, answers 202, no logging).
Two load generators: ``wrk -t1 -c64`` (Debian's ``wrk``, found on PATH or installed with apt-get; Lua
scripts give the POST bodies) and this script's own aiohttp client at 64 connections. Two workloads:
a ~1 KB summarization JSON, and a 0.5 s 16 kHz WAV uploaded as multipart, a different file per request
(the blob store is content-addressed: one repeated file would skip its write and flatter the proxy).

Each row takes turns: bare, then the target, ``--rounds`` times (a slow spell of the shared machine
hits both); medians are printed with the ratio's range. While the bare handler is measured the target
is stopped (SIGSTOP), so a validator working through its backlog does not slow the baseline down.
After each target stops, its access log is counted against the requests it completed (never fewer).
Targets (issue 16): ratio >= 0.5 and p99 < 50 ms by default, ratio >= 0.4 with ``--store.fsync``.

The rps ratio is what a shared machine lets each process have: on 2 cores busy with other work it
swings with the neighbours' load (a process that is runnable but not scheduled serves nobody). So
each turn also reads the serving process's own CPU time (``/proc/PID/stat``, all its threads: for a
validator its loop, log writer, store thread and telemetry included; the loopback miners are another
process, not counted): ``cpu us`` is CPU per completed request, and ``cpu ratio`` the bare handler's
over the target's, the rps ratio each would reach with the same CPU to itself.
``--target-args`` appends flags to every target (``--target-args="--neuron.yield_to_ingest_s 0"``
measures a validator whose loop does not yield to uploads).

Run: ``python scripts/bench_ingest.py [--quick] [--rounds N] [--seconds S] [--targets server,validator/0]
[--no-fsync] [--clients wrk,aiohttp] [--target-args FLAGS]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from shipped import Target, child_env, cpu_s, free_port, register

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-0123456789abcdef"
TEXT = ("The quick brown fox jumps over the lazy dog. " * 22).strip()
CONNECTIONS = 64
BOUNDARY = "benchboundary7d3f"
#: bytes of the WAV's last samples replaced per request: 8 of the run plus 8 of a counter, as hex.
UNIQUE = 16
TARGETS = ("server", "validator/0", "validator/3")
PATHS = {"json": "/api/v1/summarization", "audio": "/api/v1/transcription"}
RAISED_LIMITS = ["--proxy.rate_per_s", "1000000", "--proxy.burst", "1000000", "--proxy.max_in_flight", "100000"]


# -- the bare handler (a child process) -----------------------------------------------------------------
async def serve_bare(port: int) -> None:
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
    app.add_routes([web.post(PATHS["json"], submit_json), web.post(PATHS["audio"], submit_audio)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


# -- the servers under test ---------------------------------------------------------------------------------
def access_lines(target: Target) -> int:
    """Access-log lines for the submit routes (the bench's requests)."""
    routes = tuple(f'"route":"{p}"'.encode() for p in PATHS.values())
    with open(target.log_path, "rb") as log:
        return sum(1 for line in log if any(r in line for r in routes))


class Miners:
    """3 loopback miners (one child process) that each validator/3 run registers on its fresh local chain."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "loopback_miners.py"), "--count", "3"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(ROOT))
        import json

        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError("loopback miners failed to start")
        self.miners = json.loads(line)["miners"]

    def register(self, chain_file: Path) -> None:
        sys.path.insert(0, str(ROOT))
        register(chain_file, [(m["hotkey"], m["port"]) for m in self.miners])

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=20)


def start_target(name: str, fsync: bool, root: Path, miners: Miners | None, extra: list[str]) -> Target:
    data = root / f"{name.replace('/', '-')}{'-fsync' if fsync else ''}"
    data.mkdir()
    port = free_port()
    common = ["--mock", "--neuron.data_dir", str(data), "--proxy.host", "127.0.0.1", "--proxy.port", str(port),
              "--proxy.api_key", KEY, *RAISED_LIMITS, *(["--store.fsync"] if fsync else []), *extra]
    if name == "server":
        argv = [sys.executable, "-m", "subnet_proxy.server", *common]
    else:
        chain_file = data / "chain.json"
        if miners is not None:
            miners.register(chain_file)
        argv = [sys.executable, str(ROOT / "neurons" / "proxy_validator.py"), *common, "--mock.miners", "0",
                "--mock.chain_file", str(chain_file)]
    return Target(argv, data / "server.log", port, code=ROOT)


# -- request bodies -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bodies:
    json: bytes
    audio_head: bytes  # the multipart body up to the WAV's last UNIQUE bytes
    audio_tail: bytes  # the closing boundary

    @classmethod
    def make(cls) -> Bodies:
        import json

        import numpy as np

        sys.path.insert(0, str(ROOT))
        from protocol import encode_audio

        t = np.arange(8_000, dtype=np.float32) / 16_000
        wav = encode_audio((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000, "wav")
        head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n"
                f"Content-Type: audio/wav\r\n\r\n").encode() + wav[:-UNIQUE]
        return cls(json.dumps({"text": TEXT, "max_words": 30}).encode(), head, f"\r\n--{BOUNDARY}--\r\n".encode())


HEADERS = {"Authorization": f"Bearer {KEY}"}
CONTENT_TYPES = {"json": "application/json", "audio": f"multipart/form-data; boundary={BOUNDARY}"}


@dataclass
class Turn:
    rps: float
    p99_ms: float
    completed: int
    errors: int
    #: CPU seconds the serving process used during the turn.
    cpu_s: float = 0.0

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per completed request."""
        return self.cpu_s / max(1, self.completed) * 1e6


# -- load generator 1: wrk --------------------------------------------------------------------------------
WRK_JSON = """
local f = io.open(os.getenv("BENCH_BODY"), "rb"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""
WRK_AUDIO = """
local function slurp(p) local f = io.open(p, "rb"); local s = f:read("*a"); f:close(); return s end
local head, tail = slurp(os.getenv("BENCH_HEAD")), slurp(os.getenv("BENCH_TAIL"))
local run, n = os.getenv("BENCH_RUN"), 0
local headers = {{["Content-Type"] = "{content_type}", ["Authorization"] = "Bearer {key}"}}
function request()
  n = n + 1
  return wrk.format("POST", nil, headers, head .. run .. string.format("%08x", n) .. tail)
end
"""


def find_wrk() -> str:
    """wrk's path; installs Debian's package when missing (root with apt-get), else says how."""
    if found := shutil.which("wrk"):
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk not found: installing Debian's package (apt-get install -y wrk) ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
        if found := shutil.which("wrk"):
            return found
    raise SystemExit("wrk is not installed and could not be installed here: run `apt-get install wrk` as root "
                     "(Debian/Ubuntu), or pass --clients aiohttp to use only this script's own client")


class Wrk:
    def __init__(self, root: Path, bodies: Bodies) -> None:
        self.binary = find_wrk()
        self.files = {"BENCH_BODY": root / "body.json", "BENCH_HEAD": root / "head.bin",
                      "BENCH_TAIL": root / "tail.bin"}
        self.files["BENCH_BODY"].write_bytes(bodies.json)
        self.files["BENCH_HEAD"].write_bytes(bodies.audio_head)
        self.files["BENCH_TAIL"].write_bytes(bodies.audio_tail)
        self.scripts = {"json": root / "json.lua", "audio": root / "audio.lua"}
        self.scripts["json"].write_text(WRK_JSON.format(key=KEY))
        self.scripts["audio"].write_text(WRK_AUDIO.format(key=KEY, content_type=CONTENT_TYPES["audio"]))

    async def run(self, url: str, workload: str, seconds: float) -> Turn:
        env = {**os.environ, **{k: str(v) for k, v in self.files.items()}, "BENCH_RUN": secrets.token_hex(4)}
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", "-s", str(self.scripts[workload]),
            url + PATHS[workload], env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out = (await proc.communicate())[0].decode()
        return parse_wrk(out)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> Turn:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    done = re.search(r"(\d+) requests in", out)
    if not (rps and p99 and done):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return Turn(float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)], int(done.group(1)), errors)


# -- load generator 2: this script's aiohttp client ------------------------------------------------------
def aiohttp_request(workload: str, bodies: Bodies) -> Callable[[aiohttp.ClientSession, str], Awaitable[int]]:
    headers = {**HEADERS, "Content-Type": CONTENT_TYPES[workload]}
    run, serial = secrets.token_hex(4).encode(), iter(range(1 << 62))

    async def post(session: aiohttp.ClientSession, url: str) -> int:
        body = bodies.json if workload == "json" else (
            bodies.audio_head + run + b"%08x" % (next(serial) & 0xFFFF_FFFF) + bodies.audio_tail)
        async with session.post(url + PATHS[workload], data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    return post


async def run_aiohttp(url: str, workload: str, seconds: float, bodies: Bodies) -> Turn:
    request = aiohttp_request(workload, bodies)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await request(session, url)
                latencies.append(time.perf_counter() - started)
                errors += status != 202

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Turn(len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000, len(latencies), errors)


# -- the benchmark ------------------------------------------------------------------------------------------
@dataclass
class Row:
    bare: list[Turn]
    proxy: list[Turn]

    def ratios(self) -> list[float]:
        return sorted(p.rps / b.rps for b, p in zip(self.bare, self.proxy, strict=True))

    def cpu_ratio(self) -> float:
        """The bare handler's CPU per request over the target's (medians)."""
        return statistics.median(b.cpu_us for b in self.bare) / statistics.median(p.cpu_us for p in self.proxy)


async def timed(pid: int, turn: Awaitable[Turn]) -> Turn:
    """A turn, with the CPU time process ``pid`` used during it."""
    before = cpu_s(pid)
    done = await turn
    done.cpu_s = cpu_s(pid) - before
    return done


async def measure(target: Target, bare: tuple[str, int], clients: dict[str, Callable[[str, str], Awaitable[Turn]]],
                  rounds: int) -> tuple[dict[tuple[str, str], Row], int]:
    """The rows, and how many requests the target completed in all (its access log must show as many)."""
    bare_url, bare_pid = bare
    rows: dict[tuple[str, str], Row] = {}
    completed = 0
    for workload in PATHS:
        for client, run in clients.items():
            completed += (await run(target.url, workload)).completed  # warm-up: code paths, WAL pages
            row = rows[(workload, client)] = Row([], [])
            for _ in range(rounds):
                target.pause(True)
                try:
                    row.bare.append(await timed(bare_pid, run(bare_url, workload)))
                finally:
                    target.pause(False)
                row.proxy.append(turn := await timed(target.proc.pid, run(target.url, workload)))
                completed += turn.completed
    return rows, completed


def cell(row: Row | None) -> str:
    if row is None:
        return f"{'-':>8}{'-':>18}{'-':>8}{'-':>7}{'-':>6}"
    ratios = row.ratios()
    return (f"{statistics.median(p.rps for p in row.proxy):>8.0f}"
            f"{f'{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})':>18}"
            f"{statistics.median(p.p99_ms for p in row.proxy):>8.1f}"
            f"{statistics.median(p.cpu_us for p in row.proxy):>7.0f}{row.cpu_ratio():>6.2f}")


async def bench(args: argparse.Namespace) -> None:
    bodies = Bodies.make()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        clients: dict[str, Callable[[str, str], Awaitable[Turn]]] = {}
        if "wrk" in args.clients:
            wrk = Wrk(root, bodies)
            clients["wrk"] = lambda url, w: wrk.run(url, w, args.seconds)
        if "aiohttp" in args.clients:
            clients["aiohttp"] = lambda url, w: run_aiohttp(url, w, args.seconds, bodies)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(bare_port)], env=child_env(ROOT))
        miners = Miners() if "validator/3" in args.targets else None
        print(f"ingest benchmark: {CONNECTIONS} connections, {args.rounds} rounds of {args.seconds:g} s per row, "
              f"bare handler and target taking turns; medians (ratio's range); {os.cpu_count()} cores, load "
              f"generator, bare handler and target in separate processes", flush=True)
        results: dict[tuple[str, bool], dict[tuple[str, str], Row]] = {}
        try:
            await asyncio.sleep(1.0)
            for name in args.targets:
                for fsync in (False, True) if args.fsync else (False,):
                    target = await asyncio.to_thread(  # waits for it to serve: off the event loop
                        start_target, name, fsync, root, miners if name == "validator/3" else None,
                        shlex.split(args.target_args))
                    try:
                        results[(name, fsync)], completed = await measure(
                            target, (f"http://127.0.0.1:{bare_port}", bare.pid), clients, args.rounds)
                    finally:
                        shutdown_s = target.stop()
                    lines = access_lines(target)
                    verdict = "complete" if lines >= completed else "LINES MISSING"
                    print(f"  {name}{' --store.fsync' if fsync else ''}: access log {lines} lines for "
                          f"{completed} completed requests ({verdict}), shutdown {shutdown_s:.1f} s", flush=True)
        finally:
            bare.send_signal(signal.SIGTERM)
            bare.wait(timeout=15)
            if miners is not None:
                miners.stop()
        columns = f"{'rps':>8}{'ratio':>18}{'p99 ms':>8}{'cpu us':>7}{'cpu':>6}"
        print(f"\n{'target':<12}{'body':<6}{'client':<8}|{'bare rps':>9}{'p99':>7}{'cpu us':>7} |{columns} |"
              f" fsync:{columns} |{'errors':>7}  (cpu: cpu ratio)")
        for name in args.targets:
            for (workload, client), row in results[(name, False)].items():
                synced = results.get((name, True), {}).get((workload, client))
                errors = sum(t.errors for t in row.proxy + row.bare + (synced.proxy if synced else []))
                print(f"{name:<12}{workload:<6}{client:<8}|{statistics.median(b.rps for b in row.bare):>9.0f}"
                      f"{statistics.median(b.p99_ms for b in row.bare):>7.1f}"
                      f"{statistics.median(b.cpu_us for b in row.bare):>7.0f} |{cell(row)} |      {cell(synced)} |"
                      f"{errors:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="One round of 1 s per row.")
    parser.add_argument("--rounds", type=int, default=3, help="Turns of bare and target per row (default 3).")
    parser.add_argument("--seconds", type=float, default=2.0, help="Seconds per turn (default 2).")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"Comma-separated, of {', '.join(TARGETS)}.")
    parser.add_argument("--clients", default="wrk,aiohttp", help="Comma-separated, of wrk, aiohttp.")
    parser.add_argument("--no-fsync", dest="fsync", action="store_false", help="Skip the --store.fsync runs.")
    parser.add_argument("--target-args", default="", help="Flags appended to every target's command line.")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        asyncio.run(serve_bare(args.serve_bare))
        return
    args.targets = [t for t in args.targets.split(",") if t]
    if unknown := set(args.targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.quick:
        args.rounds, args.seconds = 1, 1.0
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
