#!/usr/bin/env python
"""Benchmark of the validator's memory over a long run: its RSS after every 1,000 tasks.

Starts the validator with the shipped entry point (``neurons/proxy_validator.py --mock``: local chain,
embedded store, side-server, wandb offline, default logging) against ``scripts/loopback_miners.py``
(registered on the chain first; they answer every kind honestly and instantly: a fixed summary, the
spoken ``SPOKEN`` for TTS, its text for transcription). ``--tasks`` client tasks of mixed kinds are
submitted through the side-server's API, at most ``--in-flight`` unsettled at once; most are
summarization (scored with MiniLM embeddings), ``--audio-share`` of them transcription and TTS, which
the validator scores with its real ASR and VAD (a sample: 10,000 audio tasks would take hours on 2
cores), and ``--neuron.synthetic_rate`` adds its own synthetic challenges. After every ``--every``
settled tasks (approved, failed or expired, read from the validator's store) the validator process's
RSS (``/proc/PID/status``) is printed, with its change since the first point, twice: *under load*, read
as the point is passed (32 tasks in flight, model calls running), and *at rest*: submissions stop
until no task is pending, distributed or done, then the lowest of ``REST_SAMPLES`` readings
``REST_EVERY_S`` apart. Under load, RSS moves by tens of MB from one reading to the next (sampled every
10 s in a run: 521, 473, 533, 468 MB) as Whisper windows and Piper readings come and go, so one reading
says more about what was running at that instant than about what the process keeps; the floor at
rest is what it keeps.

Target: RSS after 10,000 tasks within 5% of RSS after 1,000.
Run: ``python scripts/bench_memory.py [--tasks 10000] [--every 1000] [--audio-share 0.04]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from shipped import Target, free_port, register  # noqa: E402

from protocol import encode_audio  # noqa: E402
from subnet_proxy.client import ProxyClient, ProxyError  # noqa: E402
from subnet_proxy.config import EngineSettings  # noqa: E402
from subnet_proxy.engines import build_engines  # noqa: E402
from subnet_proxy.store import SQLiteTaskStore  # noqa: E402
from subnet_proxy.tasks import TaskStatus  # noqa: E402

NETUID = 1
API_KEY = "spx_bench_memory_key_0123456789abcdef"
MINERS = 4
SPOKEN = "The river rose overnight, and the farmers moved their herds to higher ground before dawn."
SENTENCES = ("The river rose overnight after three days of heavy rain.", "Farmers moved their herds to higher ground.",
             "The village council opened the school gym as a shelter.", "Buses ran late on the flooded roads.",
             "By noon the water had begun to fall and the first families went home.")
SETTLED = (TaskStatus.APPROVED, TaskStatus.FAILED, TaskStatus.EXPIRED)
#: tasks the validator is still working on (dispatching, or scoring: done but not yet approved).
IN_WORK = (TaskStatus.PENDING, TaskStatus.DISTRIBUTED, TaskStatus.DONE)
#: readings of RSS at rest, this far apart: the lowest is reported.
REST_SAMPLES, REST_EVERY_S = 15, 0.2


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Run:
    """The loopback miners and the validator process of one run, under ``root``."""

    def __init__(self, root: Path, synthetic_rate: float) -> None:
        self.root = root
        speech = build_engines(EngineSettings()).synthesizer.synthesize(SPOKEN)
        self.speech = (speech.samples, speech.sample_rate)
        wav = root / "spoken.wav"
        wav.write_bytes(encode_audio(speech.samples, speech.sample_rate, "wav"))
        self.miners = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "loopback_miners.py"), "--count", str(MINERS),
             "--speech", str(wav), "--transcript", SPOKEN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        listing = json.loads(self.miners.stdout.readline() if self.miners.stdout else "{}")["miners"]
        chain_file = root / "chain.json"
        register(chain_file, [(m["hotkey"], m["port"]) for m in listing])
        port = free_port()
        argv = [sys.executable, str(ROOT / "neurons" / "proxy_validator.py"), "--mock", "--netuid", str(NETUID),
                "--mock.miners", "0", "--mock.chain_file", str(chain_file), "--neuron.data_dir", str(root / "data"),
                "--proxy.host", "127.0.0.1", "--proxy.port", str(port), "--proxy.api_key", API_KEY,
                "--proxy.rate_per_s", "10000", "--proxy.burst", "10000", "--proxy.max_in_flight", "1024",
                "--neuron.synthetic_rate", str(synthetic_rate)]
        self.validator = Target(argv, root / "validator.log", port, code=ROOT)

    async def wait_ready(self, client: ProxyClient, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.validator.proc.poll() is not None:
                raise RuntimeError(f"the validator exited ({self.validator.proc.returncode}); "
                                   f"see {self.root}/validator.log")
            try:
                if (await client.health()).ready:
                    return
            except (ProxyError, OSError):
                pass
            await asyncio.sleep(1.0)
        raise TimeoutError("the validator did not become ready")

    def stop(self) -> None:
        self.validator.stop(timeout=90)
        if self.miners.stdin:
            self.miners.stdin.close()
        self.miners.wait(timeout=20)


async def submit(client: ProxyClient, run: Run, rng: random.Random, n: int, audio_share: float) -> None:
    """One client task: transcription or TTS with ``audio_share`` (half each), else summarization."""
    draw = rng.random()
    if draw < audio_share / 2:
        samples, rate = run.speech
        noise = np.random.default_rng(n).normal(0, 1e-3, samples.size).astype(np.float32)
        await client.submit_transcription(encode_audio(samples + noise, rate, "wav"), language="en")
    elif draw < audio_share:
        await client.submit_tts(SPOKEN)
    else:
        text = " ".join(SENTENCES[(n + k) % len(SENTENCES)] for k in range(4)) + f" Bulletin {n}."
        await client.submit_summarization(text)


async def at_rest(store: SQLiteTaskStore, pid: int) -> float:
    """The validator's RSS once it has no task in work (nothing is submitted meanwhile): the lowest of
    ``REST_SAMPLES`` readings, so a model call it starts of its own (a synthetic challenge) counts only
    if it lasts through all of them."""
    while True:
        counts = await store.count_by_status()
        if not any(counts[s] for s in IN_WORK):
            break
        await asyncio.sleep(0.2)
    readings = []
    for _ in range(REST_SAMPLES):
        readings.append(rss_mb(pid))
        await asyncio.sleep(REST_EVERY_S)
    return min(readings)


def change(curve: list[dict[str, Any]], key: str) -> str:
    """The last point's change since the first, in percent."""
    first, last = curve[0][key], curve[-1][key]
    return f"{100 * (last - first) / first:+5.1f}% since {curve[0]['tasks']}"


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    run = await asyncio.to_thread(Run, root, args.synthetic_rate)  # waits for the validator to serve
    client = ProxyClient(run.validator.url, api_key=API_KEY)
    curve: list[dict[str, Any]] = []
    try:
        await run.wait_ready(client)
        store = SQLiteTaskStore(root / "data" / "tasks.db")
        rng = random.Random(7)
        pid = run.validator.proc.pid
        print(f"validator ready (pid {pid}, logs {root}); RSS {rss_mb(pid):.1f} MB", flush=True)
        started, submitted, settled, mark = time.monotonic(), 0, 0, args.every
        while settled < args.tasks:
            counts = await store.count_by_status()
            settled = sum(counts[s] for s in SETTLED)
            while submitted < args.tasks and submitted - settled < args.in_flight:
                await submit(client, run, rng, submitted, args.audio_share)
                submitted += 1
            if settled >= mark:
                loaded = rss_mb(pid)
                elapsed = round(time.monotonic() - started)
                point = {"tasks": mark, "rss_mb": round(loaded, 1), "rest_rss_mb": round(await at_rest(store, pid), 1),
                         "elapsed_s": elapsed, **{s.value: counts[s] for s in SETTLED}}
                curve.append(point)
                print(f"after {mark:>6} tasks: RSS under load {point['rss_mb']:7.1f} MB ({change(curve, 'rss_mb')}), "
                      f"at rest {point['rest_rss_mb']:7.1f} MB ({change(curve, 'rest_rss_mb')})  {elapsed:>5} s  "
                      + " ".join(f"{s.value} {counts[s]}" for s in SETTLED), flush=True)
                mark += args.every
            if run.validator.proc.poll() is not None:
                raise RuntimeError(f"the validator exited ({run.validator.proc.returncode}); see {root}/validator.log")
            await asyncio.sleep(0.2)
        await store.close()
    finally:
        await client.close()
        run.stop()
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000, help="print RSS after every this many settled tasks")
    parser.add_argument("--in-flight", type=int, default=32, help="unsettled tasks at most")
    parser.add_argument("--audio-share", type=float, default=0.04, help="share of transcription + TTS tasks")
    parser.add_argument("--synthetic-rate", type=float, default=0.02, help="the validator's --neuron.synthetic_rate")
    parser.add_argument("--json", type=Path, help="also write the curve to this file")
    args = parser.parse_args()
    curve = asyncio.run(bench(args))
    for key, what in (("rss_mb", "under load"), ("rest_rss_mb", "at rest")):
        print(f"RSS {what} after {curve[-1]['tasks']} tasks: {change(curve, key)} (target within 5%)")
    if args.json:
        args.json.write_text(json.dumps(curve, indent=2))


if __name__ == "__main__":
    main()
