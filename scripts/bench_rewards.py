"""Benchmark of scoring: responses scored per second per task kind, against baselines from the same run.

For each task kind, one synthetic challenge and N distinct answers (honest answers from the
reference engines, lightly varied so none is a free repeat of another: identical sentences are
embedded once) are scored with ``score_task`` on the real engines (client mode for transcription:
the validator's own ASR runs).
Two baselines are measured in the same run:

* ``pure``: the kind's pure reward function alone on references computed once (the cost of the
  judging rules without the models) -- how much of scoring is model time;
* ``answer``: the reference engine producing one answer -- scoring cost against the miner's own
  cost per answer (below 1.0: the validator spends less checking an answer than a miner producing it).

Run: ``python scripts/bench_rewards.py [--responses 8] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from protocol import decode_audio, encode_audio  # noqa: E402
from subnet_proxy.blobs.local import LocalBlobStore  # noqa: E402
from subnet_proxy.config import EngineSettings  # noqa: E402
from subnet_proxy.engines import Engines, build_engines  # noqa: E402
from subnet_proxy.kinds import REGISTRY, score_task, task_timeout  # noqa: E402
from subnet_proxy.kinds.challenges import Corpus  # noqa: E402
from subnet_proxy.rewards import ScoringEngines  # noqa: E402
from subnet_proxy.tasks import MinerResponse, Task, TaskKind, utcnow  # noqa: E402

BASE_TIMEOUT_S = 12.0


@dataclass
class Case:
    task: Task
    ground_truth: str | None
    responses: list[MinerResponse]
    answer_s: float  # seconds the reference engine took to produce one answer


def _responses(task: Task, n: int, **per_answer: Callable[[int], Any]) -> list[MinerResponse]:
    start = utcnow()
    return [MinerResponse(task_id=task.task_id, hotkey=f"miner-{i}", uid=i, state="ok", latency_s=1.0 + 0.1 * i,
                          received_at=start + timedelta(milliseconds=i),
                          **{name: make(i) for name, make in per_answer.items()})
            for i in range(n)]


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """The result of ``call`` and the seconds of its second (warm) run."""
    await call()
    started = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - started


def _vary(text: str, i: int) -> str:
    """A distinct but honest-looking variant: drop the i-th word (0 keeps the text)."""
    words = text.split()
    return text if i == 0 or len(words) < 3 else " ".join(words[: i % len(words)] + words[i % len(words) + 1:])


async def build_case(kind: TaskKind, engines: Engines, blobs: LocalBlobStore, n: int) -> Case:
    challenge = await REGISTRY[kind].challenge(engines, Corpus.load(), random.Random(42), owner="synthetic:bench")
    for data in challenge.blobs.values():
        await blobs.put(data, content_type="application/octet-stream")
    task = challenge.task
    if kind is TaskKind.TRANSCRIPTION:
        audio = decode_audio(await blobs.get(task.input.audio_blob or ""))
        transcript, answer_s = await _timed(lambda: engines.transcribe(audio))
        return Case(task, None, _responses(task, n, text=lambda i: _vary(transcript.text, i)), answer_s)
    if kind is TaskKind.TTS:
        speech, answer_s = await _timed(lambda: engines.synthesize(task.input.text or ""))
        rng = np.random.default_rng(0)
        keys = []
        for _ in range(n):  # distinct bytes: the same speech with a whisper of different noise
            samples = speech.samples + rng.normal(0, 1e-3, speech.samples.size).astype(np.float32)
            stored = await blobs.put(encode_audio(samples, speech.sample_rate, "wav"), content_type="audio/wav")
            keys.append(stored.key)
        return Case(task, task.ground_truth, _responses(task, n, output_blob=lambda i: keys[i],
                                                        output_format=lambda i: "wav"), answer_s)
    summary, answer_s = await _timed(lambda: engines.summarize(task.input.text or "", task.input.max_words))
    return Case(task, None, _responses(task, n, text=lambda i: _vary(summary, i)), answer_s)


async def bench(n: int, rounds: int) -> None:
    engines = build_engines(EngineSettings())
    scoring = ScoringEngines.build(engines, EngineSettings())
    await engines.load()
    with tempfile.TemporaryDirectory() as tmp:
        blobs = LocalBlobStore(tmp)
        print(f"{'kind':<14} {'answers':>7} {'full/s':>8} {'pure/s':>9} {'full/pure':>9} "
              f"{'score s/answer':>15} {'produce s/answer':>17} {'check/produce':>13}")
        for kind in TaskKind:
            case = await build_case(kind, engines, blobs, n)
            spec = REGISTRY[kind]
            timeout = task_timeout(case.task, BASE_TIMEOUT_S)
            await score_task(case.task, case.responses, case.ground_truth, scoring, blobs=blobs, timeout_s=timeout)
            started = time.perf_counter()
            for _ in range(rounds):
                await score_task(case.task, case.responses, case.ground_truth, scoring, blobs=blobs,
                                 timeout_s=timeout)
            full_s = (time.perf_counter() - started) / (rounds * n)

            references = await spec.references(case.task, case.responses, case.ground_truth, scoring, blobs)
            pure_rounds = max(rounds, 20)
            started = time.perf_counter()
            for _ in range(pure_rounds):
                spec.reward(case.task, case.ground_truth, case.responses, references, timeout_s=timeout)
            pure_s = (time.perf_counter() - started) / (pure_rounds * n)
            print(f"{kind.value:<14} {n:>7} {1 / full_s:>8.1f} {1 / pure_s:>9.0f} {full_s / pure_s:>9.0f}x "
                  f"{full_s:>15.4f} {case.answer_s:>17.3f} {full_s / case.answer_s:>13.2f}")
    engines.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=8, help="distinct answers per task (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="timed scoring rounds per kind (default 3)")
    args = parser.parse_args()
    asyncio.run(bench(args.responses, args.rounds))


if __name__ == "__main__":
    main()
