"""Benchmark of the validator's forward path, every figure against a baseline measured in the same run.

1. fan-out: one synapse to 16/64/256 loopback miners that answer after a fixed delay; overhead =
   wall time - delay, and validator CPU per queried miner; the fan-out client vs the stock bittensor
   10.5 ``bt.Dendrite`` querying a plain ``bt.Synapse`` of the same fields over the same miners.
2. dispatch latency (task accepted by the store -> the miner receives the request), p50/p99, and
   tasks/s end to end with instant miners: the forward loop vs a sequential poll-and-query loop in
   the style of the subnet template.

The miners are ``scripts/loopback_miners.py`` (one child process, wire-compatible with the axon; see
its docstring for why not 256 stock axons). Run: ``python scripts/bench_forward.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bittensor as bt  # noqa: E402
from bittensor_wallet import Keypair  # noqa: E402

from protocol import SummarizationSynapse  # noqa: E402
from subnet_proxy.chain import Neuron  # noqa: E402
from subnet_proxy.offline import pin_external_ip  # noqa: E402
from subnet_proxy.validator.dendrite import FanoutDendrite  # noqa: E402

SOURCE = "The river rose overnight. Farmers moved their herds to higher ground before dawn. " * 4


class PlainSummarization(bt.Synapse):
    """The same fields as ``SummarizationSynapse`` on a stock ``bt.Synapse`` (no cached schema)."""

    text: str
    max_words: int | None = None
    summary: str | None = None
    required_hash_fields: ClassVar[tuple[str, ...]] = ("text", "max_words")


class Farm:
    """The loopback miners child process."""

    def __init__(self, count: int, delay: float) -> None:
        script = str(ROOT / "scripts" / "loopback_miners.py")
        self.proc = subprocess.Popen(
            [sys.executable, script, "--count", str(count), "--delay", str(delay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("loopback miners failed to start")
        self.miners: list[dict[str, Any]] = json.loads(line)["miners"]

    def neurons(self, n: int) -> list[Neuron]:
        return [Neuron(uid=i, hotkey=m["hotkey"], coldkey=m["hotkey"], stake=0.0, ip="127.0.0.1", port=m["port"],
                       validator_permit=False, last_update=0) for i, m in enumerate(self.miners[:n])]

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=20)


async def _timed(run: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(wall s, process CPU s, answers ok) of one round."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    ok = await run()
    return time.perf_counter() - wall0, time.process_time() - cpu0, ok


async def bench_fanout(farm: Farm, sizes: list[int], delay: float, rounds: int) -> list[dict[str, Any]]:
    keypair = Keypair.create_from_seed("0x" + "11" * 32)
    ours = FanoutDendrite(keypair, external_ip="127.0.0.1")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer rounds and sizes (a smoke run).")
    parser.add_argument("--delay", type=float, default=0.1, help="Miners' fixed answer delay, seconds.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    pin_external_ip("127.0.0.1")
    sizes = [16, 64] if args.quick else [16, 64, 256]
    rounds = 2 if args.quick else 5

    farm = Farm(max(sizes), args.delay)
    try:
        figures: dict[str, Any] = {"fanout": asyncio.run(bench_fanout(farm, sizes, args.delay, rounds))}
    finally:
        farm.stop()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
