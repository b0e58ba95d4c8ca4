"""Benchmark of the validator's forward path, every figure against a baseline measured in the same run.

1. fan-out: one synapse to 16/64/256 loopback miners that answer after a fixed delay; overhead =
   wall time - delay, and validator CPU per queried miner; the fan-out client vs the stock bittensor
   10.5 ``bt.Dendrite`` querying a plain ``bt.Synapse`` of the same fields over the same miners.
2. dispatch latency (task accepted by the store -> the miner receives the request), p50/p99, at
   2 tasks/s, and tasks/s end to end (real scoring) for a burst, with instant miners: the forward
   loop vs a sequential poll-and-query loop in the style of the subnet template.
3. ``--kinds``: the shipped validator (``neurons/proxy_validator.py --mock``: the embedded defaults,
   default logging, its side-server and loop; client tasks only) on a burst of client tasks of each
   kind submitted over its API, three honest answers each, real scoring (the validator's ASR of each
   transcription task and of every TTS answer): answered and approved tasks/s from the tasks' own
   timelines, and the validator process's CPU per task; ``--against DIR`` runs another source tree's
   validator too, taking turns.

The miners are ``scripts/loopback_miners.py`` (one child process, wire-compatible with the axon; see
its docstring for why not 256 stock axons). Run: ``python scripts/bench_forward.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

SCRIPTS = Path(__file__).resolve().parent
#: the source tree benchmarked: this checkout, or BENCH_CODE (``--against`` sets it for its children).
ROOT = Path(os.environ.get("BENCH_CODE") or SCRIPTS.parent)
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import bittensor as bt  # noqa: E402
import numpy as np  # noqa: E402
from bench_trees import alternate  # noqa: E402
from bittensor_wallet import Keypair  # noqa: E402
from shipped import Target, free_port, register  # noqa: E402

from protocol import SummarizationSynapse, encode_audio  # noqa: E402
from subnet_proxy import approval  # noqa: E402
from subnet_proxy.blobs import LocalBlobStore  # noqa: E402
from subnet_proxy.chain import Neuron  # noqa: E402
from subnet_proxy.chain.local import LocalChain, Registration  # noqa: E402
from subnet_proxy.config import EngineSettings, MockSettings, NeuronSettings, Settings  # noqa: E402
from subnet_proxy.engines import build_engines  # noqa: E402
from subnet_proxy.offline import pin_external_ip  # noqa: E402
from subnet_proxy.outbound import OutboundPolicy  # noqa: E402
from subnet_proxy.rewards import ScoringEngines  # noqa: E402
from subnet_proxy.store import SQLiteTaskStore  # noqa: E402
from subnet_proxy.tasks import Evaluation, MinerResponse, Task, TaskInput, TaskKind, TaskStatus  # noqa: E402
from subnet_proxy.validator.dendrite import FanoutDendrite  # noqa: E402
from subnet_proxy.validator.evaluation import EngineScorer  # noqa: E402
from subnet_proxy.validator.neuron import Validator  # noqa: E402
from subnet_proxy.validator.run import MOCK_VALIDATOR_STAKE  # noqa: E402
from subnet_proxy.validator.scores import ScoreBook  # noqa: E402

SOURCE = "The river rose overnight. Farmers moved their herds to higher ground before dawn. " * 4


class PlainSummarization(bt.Synapse):
    """The same fields as ``SummarizationSynapse`` on a stock ``bt.Synapse`` (no cached schema)."""

    text: str
    max_words: int | None = None
    summary: str | None = None
    required_hash_fields: ClassVar[tuple[str, ...]] = ("text", "max_words")


class Farm:
    """The loopback miners, split over ``procs`` child processes (real miners are other machines:
    their cost should not be the bottleneck of a validator benchmark); miners are interleaved so any
    first N of them spread over every process."""

    def __init__(self, count: int, delay: float, procs: int = 2, answers: tuple[str, ...] = ()) -> None:
        script = str(SCRIPTS / "loopback_miners.py")
        share = -(-count // procs)
        self.procs = [subprocess.Popen(
            [sys.executable, script, "--count", str(share), "--first", str(p * share), "--delay", str(delay),
             *answers],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        ) for p in range(procs)]
        groups = []
        for proc in self.procs:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                raise RuntimeError("loopback miners failed to start")
            groups.append(json.loads(line)["miners"])
        self.probes = [group[0]["port"] for group in groups]
        self.miners: list[dict[str, Any]] = [m for ms in zip(*groups, strict=True) for m in ms][:count]

    def neurons(self, n: int) -> list[Neuron]:
        return [Neuron(uid=i, hotkey=m["hotkey"], coldkey=m["hotkey"], stake=0.0, ip="127.0.0.1", port=m["port"],
                       validator_permit=False, last_update=0) for i, m in enumerate(self.miners[:n])]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin:
                proc.stdin.close()
        for proc in self.procs:
            proc.wait(timeout=20)


async def _timed(run: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(wall s, process CPU s, answers ok) of one round."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    ok = await run()
    return time.perf_counter() - wall0, time.process_time() - cpu0, ok


async def bench_fanout(farm: Farm, sizes: list[int], delay: float, rounds: int) -> list[dict[str, Any]]:
    keypair = Keypair.create_from_seed("0x" + "11" * 32)
    ours = FanoutDendrite(keypair, external_ip="127.0.0.1", outbound=OutboundPolicy(allow_private=True))
    stock = bt.Dendrite(wallet=keypair)
    rows = []
    try:
        for n in sizes:
            targets = farm.neurons(n)
            axons = [bt.AxonInfo(version=0, ip=t.ip, port=t.port, ip_type=4, hotkey=t.hotkey, coldkey=t.coldkey)
                     for t in targets]

            async def run_ours(targets: list[Neuron] = targets) -> int:
                results = await ours.query(SummarizationSynapse(text=SOURCE, max_words=20), targets,
                                           timeout=30.0, max_output_bytes=1 << 20)
                return sum(r.ok and r.synapse is not None and bool(r.synapse.summary) for r in results)  # type: ignore[attr-defined]

            async def run_stock(axons: list[bt.AxonInfo] = axons) -> int:
                out = await stock.forward(axons, PlainSummarization(text=SOURCE, max_words=20), timeout=30.0,
                                          deserialize=False)
                return sum(bool(s.is_success and s.summary) for s in out)

            row: dict[str, Any] = {"n": n}
            for name, run in (("fanout", run_ours), ("stock", run_stock)):
                await run()  # warm-up: connections, caches
                samples = [await _timed(run) for _ in range(rounds)]
                wall = statistics.median(s[0] for s in samples)
                cpu = statistics.median(s[1] for s in samples)
                row[name] = {"overhead_ms": (wall - delay) * 1000, "cpu_ms_per_miner": cpu * 1000 / n,
                             "ok": min(s[2] for s in samples)}
            row["speedup"] = row["stock"]["overhead_ms"] / max(row["fanout"]["overhead_ms"], 1e-3)
            rows.append(row)
            print(f"fan-out n={n:4d}  overhead ms: fanout {row['fanout']['overhead_ms']:8.1f}  "
                  f"stock {row['stock']['overhead_ms']:8.1f}  x{row['speedup']:.1f}   CPU ms/miner: fanout "
                  f"{row['fanout']['cpu_ms_per_miner']:.2f} stock {row['stock']['cpu_ms_per_miner']:.2f}   "
                  f"ok {row['fanout']['ok']}/{n} vs {row['stock']['ok']}/{n}", flush=True)
    finally:
        await ours.close()
        await stock.aclose_session()
    return rows


# -- 2. the whole loop: dispatch latency and tasks/s ------------------------------------------------

LOOP_MINERS = 4
LOOP_SAMPLE = 3
TEMPLATE_POLL_S = 1.0
#: seconds between the tasks of the latency phase (2 tasks/s: below either loop's capacity).
LATENCY_GAP_S = 0.5


def bench_task(tag: str) -> Task:
    """A summarization task whose text starts with ``tag`` (the miners log it with the arrival time)."""
    return Task(kind=TaskKind.SUMMARIZATION, owner="bench", input=TaskInput(text=f"{tag} {SOURCE}", max_words=20))


class Bed:
    """A fresh embedded store, local blobs and a local chain with the farm's first miners registered."""

    def __init__(self, root: Path, farm: Farm, keypair: Keypair) -> None:
        self.root = root
        self.store = SQLiteTaskStore(root / "tasks.db")
        self.blobs = LocalBlobStore(root / "blobs")
        chain_file = root / "chain.json"
        registrar = LocalChain(chain_file, netuid=1)
        registrar.register_sync(Registration(hotkey=keypair.ss58_address, coldkey=keypair.ss58_address,
                                             stake=MOCK_VALIDATOR_STAKE, validator_permit=True))
        for n in farm.neurons(LOOP_MINERS):
            registrar.register_sync(Registration(hotkey=n.hotkey, coldkey=n.hotkey, ip=n.ip, port=n.port))
        self.chain = LocalChain(chain_file, netuid=1, hotkey=keypair.ss58_address)
        self.settings = Settings(netuid=1, neuron=NeuronSettings(data_dir=str(root), sample_size=LOOP_SAMPLE,
                                                                 concurrency=16, synthetic_rate=0, timeout=5.0),
                                 mock=MockSettings(enabled=True))

    async def wait_all(self, n: int, timeout: float = 300.0) -> float:
        """Until ``n`` tasks are approved (the benchmark's own probe: 5 ms apart); returns when ``n``
        tasks had been answered (DONE or beyond: the client had its first answer), perf_counter time."""
        deadline = time.monotonic() + timeout
        answered_at = None
        while True:
            counts = await self.store.count_by_status()
            if answered_at is None and counts[TaskStatus.DONE] + counts[TaskStatus.APPROVED] >= n:
                answered_at = time.perf_counter()
            if counts[TaskStatus.APPROVED] >= n:
                return answered_at or time.perf_counter()
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} tasks approved")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        await self.store.close()
        await self.blobs.close()


class TemplateLoop:
    """The baseline: the subnet template's validator step, one task at a time.

    Poll the store every ``TEMPLATE_POLL_S`` for a pending task; claim one; query the miners with
    the stock ``bt.Dendrite`` and wait for all of them; record the answers; score; approve; update
    the scores; repeat. Same store, scoring and approval as the forward loop.
    """

    def __init__(self, bed: Bed, keypair: Keypair, scorer: EngineScorer) -> None:
        self.bed = bed
        self.hotkey = keypair.ss58_address
        self.dendrite = bt.Dendrite(wallet=keypair)
        self.scorer = scorer
        self.scores = ScoreBook(alpha=0.1)
        self.running = True

    async def run(self) -> None:
        store = self.bed.store
        snapshot = await self.bed.chain.snapshot()
        self.scores.sync(snapshot)
        miners = [n for n in snapshot.neurons if n.hotkey != self.hotkey][:LOOP_SAMPLE]
        axons = [bt.AxonInfo(version=0, ip=n.ip, port=n.port, ip_type=4, hotkey=n.hotkey, coldkey=n.coldkey)
                 for n in miners]
        while self.running:
            claimed = await store.claim_tasks(self.hotkey, limit=1, lease_s=60)
            if not claimed:
                await asyncio.sleep(TEMPLATE_POLL_S)
                continue
            task = claimed[0]
            await store.assign_miners(task.task_id, self.hotkey, [(n.uid, n.hotkey) for n in miners])
            synapse = SummarizationSynapse(text=task.input.text or "", max_words=task.input.max_words)
            answers = await self.dendrite.forward(axons, synapse, timeout=5.0, deserialize=False)
            for n, answer in zip(miners, answers, strict=True):
                ok = answer.is_success and bool(answer.summary)
                await store.record_response(MinerResponse(
                    task_id=task.task_id, hotkey=n.hotkey, uid=n.uid, state="ok" if ok else "error",
                    latency_s=float(answer.dendrite.process_time or 5.0), text=answer.summary if ok else None))
            task = await store.transition(task.task_id, TaskStatus.DONE, claimer=self.hotkey)
            responses = await store.list_responses(task.task_id)
            rewards = await self.scorer.score(task, responses, timeout_s=5.0)
            await approval.record_evaluation(store, Evaluation(task_id=task.task_id, validator_hotkey=self.hotkey,
                                                               rewards=rewards), snapshot, 1.0)
            for r in rewards:
                self.scores.update(r.uid, r.hotkey, r.reward)

    async def close(self) -> None:
        await self.dendrite.aclose_session()


async def received_at(farm: Farm) -> dict[str, float]:
    """Task tag -> the earliest time a miner received it."""
    log: list[tuple[str, float]] = []
    async with aiohttp.ClientSession() as session:
        for port in farm.probes:
            async with session.get(f"http://127.0.0.1:{port}/_received") as resp:
                log += await resp.json()
    first: dict[str, float] = {}
    for text, at in log:
        tag = text.split(" ", 1)[0]
        first[tag] = min(at, first.get(tag, at))
    return first


async def measure(name: str, bed: Bed, farm: Farm, latency_n: int, burst_n: int) -> dict[str, Any]:
    """Submit ``latency_n`` tasks ``LATENCY_GAP_S`` apart (dispatch latency at a pace both loops keep
    up with, so it measures the loop, not a queue), then ``burst_n`` at once (tasks/s); a warm-up
    task is already approved."""
    accepted: dict[str, float] = {}
    for i in range(latency_n):
        tag = f"{name}-lat-{i}"
        await bed.store.create_task(bench_task(tag))
        accepted[tag] = time.time()
        await asyncio.sleep(LATENCY_GAP_S)
    await bed.wait_all(1 + latency_n)
    arrivals = await received_at(farm)
    latencies = sorted((arrivals[tag] - at) * 1000 for tag, at in accepted.items())

    start, cpu = time.perf_counter(), time.process_time()
    for i in range(burst_n):
        await bed.store.create_task(bench_task(f"{name}-burst-{i}"))
    answered_at = await bed.wait_all(1 + latency_n + burst_n)
    wall = time.perf_counter() - start
    return {"dispatch_p50_ms": latencies[len(latencies) // 2],
            "dispatch_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "tasks_per_s": burst_n / wall, "answered_per_s": burst_n / (answered_at - start),
            "cpu_ms_per_task": (time.process_time() - cpu) * 1000 / burst_n, "burst": burst_n}


async def run_forward(name: str, bed: Bed, farm: Farm, keypair: Keypair, scoring: ScoringEngines,
                      latency_n: int, burst_n: int) -> dict[str, Any]:
    validator = Validator(bed.settings, keypair=keypair, chain=bed.chain, store=bed.store, blobs=bed.blobs,
                          scorer=EngineScorer(scoring, bed.blobs))
    await validator.start()
    try:
        await bed.store.create_task(bench_task(f"{name}-warmup"))
        await bed.wait_all(1)
        return await measure(name, bed, farm, latency_n, burst_n)
    finally:
        await validator.stop()


async def run_template(name: str, bed: Bed, farm: Farm, keypair: Keypair, scoring: ScoringEngines,
                       latency_n: int, burst_n: int) -> dict[str, Any]:
    template = TemplateLoop(bed, keypair, EngineScorer(scoring, bed.blobs))
    runner = asyncio.create_task(template.run())
    try:
        await bed.store.create_task(bench_task(f"{name}-warmup"))
        await bed.wait_all(1)
        return await measure(name, bed, farm, latency_n, burst_n)
    finally:
        template.running = False
        await runner
        await template.close()


async def bench_loops(farm: Farm, latency_n: int, burst_n: int, reps: int, root: Path) -> dict[str, Any]:
    """Each loop ``reps`` times, alternating (the machine is shared: the best run of each is kept)."""
    keypair = Keypair.create_from_seed("0x" + "22" * 32)
    engines = build_engines(EngineSettings())
    scoring = await asyncio.to_thread(ScoringEngines.build, engines, EngineSettings())
    runs: dict[str, list[dict[str, Any]]] = {"forward": [], "template": []}
    try:
        for rep in range(reps):
            for name, run in (("forward", run_forward), ("template", run_template)):
                bed = Bed(root / f"{name}-{rep}", farm, keypair)
                try:
                    runs[name].append(await run(f"{name}{rep}", bed, farm, keypair, scoring, latency_n, burst_n))
                finally:
                    await bed.close()
    finally:
        engines.close()
    best = {"dispatch_p50_ms": min, "dispatch_p99_ms": min, "tasks_per_s": max, "answered_per_s": max,
            "cpu_ms_per_task": min, "burst": max}
    figures: dict[str, Any] = {name: {k: pick(r[k] for r in rows) for k, pick in best.items()}
                               for name, rows in runs.items()}
    f, t = figures["forward"], figures["template"]
    figures["dispatch_p50_ratio"] = t["dispatch_p50_ms"] / max(f["dispatch_p50_ms"], 1e-3)
    figures["tasks_per_s_ratio"] = f["tasks_per_s"] / max(t["tasks_per_s"], 1e-9)
    figures["answered_per_s_ratio"] = f["answered_per_s"] / max(t["answered_per_s"], 1e-9)
    for name in ("forward", "template"):
        row = figures[name]
        print(f"loop {name:8s}  dispatch p50 {row['dispatch_p50_ms']:8.1f} ms  p99 {row['dispatch_p99_ms']:8.1f} ms"
              f"   answered {row['answered_per_s']:6.1f}/s  approved {row['tasks_per_s']:5.2f}/s"
              f"  {row['cpu_ms_per_task']:6.1f} ms CPU/task  ({row['burst']} tasks, real scoring, best of {reps})",
              flush=True)
    print(f"loop ratios: dispatch p50 x{figures['dispatch_p50_ratio']:.0f} faster, answered/s "
          f"x{figures['answered_per_s_ratio']:.1f}, approved/s x{figures['tasks_per_s_ratio']:.1f}", flush=True)
    return figures


# -- 3. the loop per kind: approved tasks/s when scoring runs the models ------------------------------

#: what the audio kinds' tasks say: TTS tasks ask for it, transcription tasks are it spoken.
SPOKEN = "The river rose overnight, and the farmers moved their herds to higher ground before dawn."
KINDS = (TaskKind.TRANSCRIPTION, TaskKind.TTS, TaskKind.SUMMARIZATION)


#: readings of ``SPOKEN`` the transcription tasks take turns with: Piper reads differently each time,
#: and how Whisper takes one reading (one window or two, say) holds for every noisy copy of it.
READINGS = 4


#: the API key the bench's client uses, and rate limits raised so a burst is taken in whole.
KEY = "bench-key-0123456789abcdef"
RAISED_LIMITS = ["--proxy.rate_per_s", "1000", "--proxy.burst", "1000"]


class ClientTasks:
    """Client requests (no ground truth: the validator's own ASR runs) that the loopback miners answer
    honestly: TTS of ``SPOKEN``, and ``SPOKEN`` spoken, the readings taking turns, each upload with a
    whisper of noise of its own (distinct files, as clients' are)."""

    def __init__(self, readings: list[Path]) -> None:
        import soundfile

        self.readings = [soundfile.read(wav, dtype="float32") for wav in readings]
        self.count = 0

    def request(self, kind: TaskKind) -> tuple[str, dict[str, Any] | aiohttp.FormData]:
        """The API path and the body (JSON, or a form with the audio) of the next task of ``kind``."""
        self.count += 1
        if kind is TaskKind.SUMMARIZATION:
            return "/api/v1/summarization", {"text": f"kind-{self.count} {SOURCE}", "max_words": 20}
        if kind is TaskKind.TTS:
            return "/api/v1/tts", {"text": SPOKEN}
        samples, rate = self.readings[self.count % len(self.readings)]
        noise = np.random.default_rng(self.count).normal(0, 1e-3, samples.size).astype(np.float32)
        form = aiohttp.FormData()
        form.add_field("audio", encode_audio(samples + noise, rate, "wav"), filename="speech.wav",
                       content_type="audio/wav")
        form.add_field("language", "en")
        return "/api/v1/transcription", form


async def submit(session: aiohttp.ClientSession, url: str, tasks: ClientTasks, kind: TaskKind) -> str:
    path, body = tasks.request(kind)
    sent = {"data": body} if isinstance(body, aiohttp.FormData) else {"json": body}
    async with session.post(url + path, **sent) as resp:
        answer = await resp.json()
        if resp.status != 202:
            raise RuntimeError(f"{path}: {resp.status} {answer}")
        return str(answer["task_id"])


async def settled(session: aiohttp.ClientSession, url: str, ids: list[str], timeout: float = 900.0
                  ) -> tuple[float, float]:
    """When the last of ``ids`` was answered (DONE: the client had its first answer) and approved, in
    epoch seconds, from the tasks' own timelines (the server's clock). One task is asked about at a
    time, 4 times a second while it is not approved: the validator's CPU is the benchmark's, not the
    poll's, and the timelines make the figures exact whatever the poll's pace."""
    answered: list[float] = []
    approved: list[float] = []
    deadline = time.monotonic() + timeout
    for task_id in ids:
        while True:
            async with session.get(f"{url}/api/v1/task/{task_id}/status") as resp:
                status = await resp.json()
            if status["status"] in ("failed", "expired"):
                raise RuntimeError(f"task {task_id} {status['status']}: {status.get('error')}")
            if status["status"] == "approved":
                times = {step["status"]: datetime.fromisoformat(step["at"].replace("Z", "+00:00")).timestamp()
                         for step in status["timeline"]}
                answered.append(times["done"])
                approved.append(times["approved"])
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids) - len(approved)} of {len(ids)} tasks not approved")
            await asyncio.sleep(0.25)
    return max(answered), max(approved)


def start_validator(root: Path, farm: Farm, extra: list[str]) -> Target:
    """``neurons/proxy_validator.py`` of the benchmarked tree in local mode (the embedded defaults), the
    farm's first miners registered on its chain; client tasks only (no synthetic challenges)."""
    root.mkdir(parents=True)
    chain_file = root / "chain.json"
    register(chain_file, [(n.hotkey, n.port) for n in farm.neurons(LOOP_MINERS)])
    port = free_port()
    argv = [sys.executable, str(ROOT / "neurons" / "proxy_validator.py"), "--mock", "--mock.miners", "0",
            "--mock.chain_file", str(chain_file), "--neuron.data_dir", str(root), "--proxy.host", "127.0.0.1",
            "--proxy.port", str(port), "--proxy.api_key", KEY, "--neuron.synthetic_rate", "0", *RAISED_LIMITS, *extra]
    return Target(argv, root / "validator.log", port, code=ROOT)


async def run_kind(kind: TaskKind, target: Target, tasks: ClientTasks, burst_n: int) -> dict[str, Any]:
    """The validator on a burst of ``burst_n`` client tasks of one kind (after one warm-up task),
    submitted over its API; its process's CPU time per task."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
        await settled(session, target.url, [await submit(session, target.url, tasks, kind)])
        start, cpu = time.time(), target.cpu_s
        ids = [await submit(session, target.url, tasks, kind) for _ in range(burst_n)]
        answered_at, approved_at = await settled(session, target.url, ids)
        return {"kind": kind.value, "burst": burst_n, "approved_per_s": burst_n / (approved_at - start),
                "answered_per_s": burst_n / (answered_at - start),
                "cpu_ms_per_task": (target.cpu_s - cpu) * 1000 / burst_n}


def bench_kinds(farm: Farm, readings: list[Path], burst_n: int, root: Path, extra: list[str]) -> list[dict[str, Any]]:
    tasks = ClientTasks(readings)
    rows = []
    for kind in KINDS:
        target = start_validator(root / f"kind-{kind.value}", farm, extra)
        try:
            rows.append(asyncio.run(run_kind(kind, target, tasks, burst_n)))
        finally:
            target.stop()
        print_kind(rows[-1])
    return rows


def print_kind(row: dict[str, Any], label: str = "") -> None:
    print(f"loop {label}{row['kind']:<14} answered {row['answered_per_s']:6.1f}/s"
          f"  approved {row['approved_per_s']:5.2f}/s  {row['cpu_ms_per_task']:7.1f} ms CPU/task"
          f"  ({row['burst']} tasks, real scoring)", flush=True)


def speak(folder: Path) -> list[Path]:
    """``READINGS`` readings of ``SPOKEN`` by the shipped voice, as WAV files in ``folder`` (made once:
    the readings already there are used); the first is the loopback miners' TTS answer."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"spoken-{i}.wav" for i in range(READINGS)]
    if not all(path.is_file() for path in paths):
        engines = build_engines(EngineSettings())
        for path in paths:
            speech = engines.synthesizer.synthesize(SPOKEN)
            path.write_bytes(encode_audio(speech.samples, speech.sample_rate, "wav"))
        engines.close()
    return paths


def kinds_against(other: Path, burst_n: int, turns: int, validator_args: str) -> None:
    """The per-kind loop rows for this tree and ``other`` taking turns (``bench_trees``), on the same
    readings; best of turns."""
    with tempfile.TemporaryDirectory() as tmp:
        speak(Path(tmp))
        results = alternate(__file__, ["--kinds", "--burst", str(burst_n), "--json", "-", "--readings", tmp,
                                       f"--validator-args={validator_args}"],
                            other, turns)
    for label, runs in results.items():
        for rows in zip(*runs, strict=True):
            print_kind(max(rows, key=lambda r: r["approved_per_s"]), f"best of {turns} [{label}] ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer rounds and sizes (a smoke run).")
    parser.add_argument("--delay", type=float, default=0.1, help="Miners' fixed answer delay, seconds.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file ('-': print them).")
    parser.add_argument("--kinds", action="store_true",
                        help="Only the shipped validator per task kind (approved/s with the models scoring audio).")
    parser.add_argument("--burst", type=int, default=24, help="Tasks per kind with --kinds.")
    parser.add_argument("--against", type=Path, help="With --kinds: also another source tree, taking turns.")
    parser.add_argument("--turns", type=int, default=2, help="Turns per tree with --against.")
    parser.add_argument("--validator-args", default="", help="With --kinds: flags appended to the validator's "
                        "command (--validator-args='--neuron.concurrency 16' measures that setting).")
    parser.add_argument("--readings", type=Path, help="With --kinds: a folder for the readings of the audio "
                        "tasks (made there if missing; --against shares one between the trees).")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    pin_external_ip("127.0.0.1")
    if args.kinds and args.against:
        kinds_against(args.against.resolve(), args.burst, args.turns, args.validator_args)
        return
    if args.kinds:
        with tempfile.TemporaryDirectory() as tmp:
            readings = speak(args.readings or Path(tmp) / "readings")
            farm = Farm(LOOP_MINERS, 0.0, answers=("--speech", str(readings[0]), "--transcript", SPOKEN))
            try:
                rows = bench_kinds(farm, readings, args.burst, Path(tmp), shlex.split(args.validator_args))
            finally:
                farm.stop()
        if args.json:
            print(json.dumps(rows)) if str(args.json) == "-" else args.json.write_text(json.dumps(rows))
        return
    sizes = [16, 64] if args.quick else [16, 64, 256]
    rounds = 2 if args.quick else 5
    latency_n, burst_n, reps = (10, 20, 1) if args.quick else (40, 60, 2)

    figures: dict[str, Any] = {}
    farm = Farm(max(sizes), args.delay)
    try:
        figures["fanout"] = asyncio.run(bench_fanout(farm, sizes, args.delay, rounds))
    finally:
        farm.stop()
    farm = Farm(LOOP_MINERS, 0.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures["loop"] = asyncio.run(bench_loops(farm, latency_n, burst_n, reps, Path(tmp)))
    finally:
        farm.stop()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
