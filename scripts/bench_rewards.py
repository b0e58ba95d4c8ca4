"""Benchmark of scoring: responses scored per second per task kind, against baselines from the same run.

Every kind of the registry (``subnet_proxy.kinds``) is measured the same way: its synthetic challenge
is sent as its synapse to the reference miner's own forward function, the answer goes through the
kind's checks into a stored response, and N distinct variants of it (a word dropped from a text, a
whisper of noise on audio: identical answers are judged once) are scored with ``score_task`` in client
mode (no ground truth: the validator's own ASR runs for transcription) on the real engines.
Three baselines are measured in the same run:

* ``engine``: the bare model call on the input scoring reads, the engine half of scoring with nothing
  around it: faster-whisper's ``WhisperModel.transcribe`` with its defaults on each audio answer (a
  kind whose result is audio) or on the task's audio (a kind submitted as audio), else one MiniLM
  batch of the source's and the answers' sentences. ``score/engine`` is scoring a task over those
  calls, timed one after the other in each round, the median of the rounds: the overhead of
  everything around the model (target <= 1.2x for TTS and transcription);
* ``pure``: the kind's pure reward function alone on references computed once (the judging rules
  without the models);
* ``produce``: the reference miner producing one answer -- scoring cost against the miner's own cost
  per answer (below 1.0: the validator spends less checking an answer than a miner producing it).

Before/after in one run: ``--against DIR`` runs the same measurement on another source tree (say
``git archive main | tar -x -C DIR``) in alternating child processes, ``--turns`` times each, and
prints both. Run: ``python scripts/bench_rewards.py [--responses 8] [--rounds 3] [--against DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

#: the source tree benchmarked: this checkout, or BENCH_CODE (``--against`` sets it for its children).
ROOT = Path(os.environ.get("BENCH_CODE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from bench_trees import alternate  # noqa: E402

from protocol import DecodedAudio, decode_audio, encode_audio  # noqa: E402
from subnet_proxy.blobs.local import LocalBlobStore  # noqa: E402
from subnet_proxy.chain.base import MetagraphSnapshot  # noqa: E402
from subnet_proxy.config import EngineSettings  # noqa: E402
from subnet_proxy.engines import Engines, build_engines  # noqa: E402
from subnet_proxy.engines.resample import resample  # noqa: E402
from subnet_proxy.kinds import REGISTRY, AudioUpload, KindSpec, Output, ResultMedia, score_task, task_timeout  # noqa: E402
from subnet_proxy.kinds.challenges import Corpus  # noqa: E402
from subnet_proxy.kinds.wire import build_synapse, stored_response, synapse_output  # noqa: E402
from subnet_proxy.miner.admission import AdmissionPolicy, MetagraphView  # noqa: E402
from subnet_proxy.miner.handlers import attach_service  # noqa: E402
from subnet_proxy.miner.service import MinerLimits, MinerService  # noqa: E402
from subnet_proxy.rewards import ScoringEngines  # noqa: E402
from subnet_proxy.rewards.text import sentences  # noqa: E402
from subnet_proxy.tasks import MinerResponse, Task, utcnow  # noqa: E402

BASE_TIMEOUT_S = 12.0


@dataclasses.dataclass
class Case:
    task: Task
    responses: list[MinerResponse]
    produce_s: float  # seconds the reference miner took to produce one answer
    engine: Callable[[], Any]  # the bare engine calls scoring this task needs, in one function


class ForwardTable:
    """Stands in for the axon to read the miner's own table of forward functions (synapse class -> fn)."""

    def __init__(self, service: MinerService) -> None:
        self.forwards: dict[type, Callable[[Any], Awaitable[Any]]] = {}
        attach_service(self, service)  # type: ignore[arg-type]

    def attach(self, forward_fn: Callable[..., Any], **_: Any) -> None:
        synapse_cls = forward_fn.__signature__.parameters["synapse"].annotation  # type: ignore[attr-defined]
        self.forwards[synapse_cls] = forward_fn


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """The result of ``call`` and the seconds of its second (warm) run."""
    await call()
    started = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - started


def _variant(output: Output, i: int) -> Output:
    """A distinct but honest-looking variant (0 keeps the answer): a text loses its i-th word, audio
    gets a whisper of noise of its own."""
    if output.audio is not None:
        audio = decode_audio(output.audio)
        noise = np.random.default_rng(i).normal(0, 1e-3, audio.samples.size).astype(np.float32)
        return output if i == 0 else dataclasses.replace(
            output, audio=encode_audio(audio.samples + noise, audio.sample_rate, output.audio_format or "wav"))
    words = (output.text or "").split()
    if i == 0 or len(words) < 3:
        return output
    return dataclasses.replace(output, text=" ".join(words[: i % len(words)] + words[i % len(words) + 1:]))


def _bare_asr(engines: Engines, audios: list[DecodedAudio], language: str | None) -> Callable[[], Any]:
    """faster-whisper's own call, with its defaults, on each audio (decoded beforehand)."""
    model = engines.transcriber._model  # type: ignore[attr-defined]  # loaded by engines.load()
    clips = [resample(a.samples, a.sample_rate, 16_000) for a in audios]

    def run() -> list[str]:
        return ["".join(s.text for s in model.transcribe(c, language=language, beam_size=5)[0]) for c in clips]

    return run


async def build_case(spec: KindSpec[Any], engines: Engines, scoring: ScoringEngines, miner: ForwardTable,
                     blobs: LocalBlobStore, n: int) -> Case:
    challenge = await spec.challenge(engines, Corpus.load(), random.Random(42), owner="synthetic:bench")
    for data in challenge.blobs.values():
        await blobs.put(data, content_type="application/octet-stream")
    task = challenge.task
    synapse = await build_synapse(task, blobs)
    forward = miner.forwards[spec.synapse]
    answered, produce_s = await _timed(lambda: forward(synapse.model_copy(deep=True)))
    output = await synapse_output(task, answered)
    start = utcnow()
    responses = [await stored_response(_variant(output, i), blobs, task_id=task.task_id, hotkey=f"miner-{i}", uid=i,
                                       latency_s=1.0 + 0.1 * i, received_at=start + timedelta(milliseconds=i))
                 for i in range(n)]
    if spec.result is ResultMedia.AUDIO:
        audios = [decode_audio(await blobs.get(r.output_blob or "")) for r in responses]
        engine = _bare_asr(engines, audios, "en")
    elif isinstance(spec.submission.body, AudioUpload):
        engine = _bare_asr(engines, [decode_audio(await blobs.get(task.input.audio_blob or ""))], task.input.language)
    else:
        parts = sentences(task.input.text) + [s for r in responses for s in sentences(r.text)]
        engine = lambda: scoring.embedder.embed(list(dict.fromkeys(parts)))  # noqa: E731
    return Case(task, responses, produce_s, engine)


async def measure(n: int, rounds: int) -> list[dict[str, Any]]:
    engines = build_engines(EngineSettings())
    scoring = ScoringEngines.build(engines, EngineSettings())
    await engines.load()
    miner = ForwardTable(MinerService(engines, MetagraphView(MetagraphSnapshot(netuid=1, block=0, neurons=())),
                                      AdmissionPolicy(), MinerLimits()))
    with tempfile.TemporaryDirectory() as tmp:
        blobs = LocalBlobStore(tmp)
        rows = [await measure_kind(spec, await build_case(spec, engines, scoring, miner, blobs, n), scoring, blobs,
                                   rounds) for spec in REGISTRY.values()]
        await blobs.close()
    engines.close()
    return rows


async def measure_kind(spec: KindSpec[Any], case: Case, scoring: ScoringEngines, blobs: LocalBlobStore,
                       rounds: int) -> dict[str, Any]:
    """Best of ``rounds``: scoring the task (warm), the bare engine calls, the pure reward."""
    timeout = task_timeout(case.task, BASE_TIMEOUT_S)

    async def score() -> Any:
        return await score_task(case.task, case.responses, None, scoring, blobs=blobs, timeout_s=timeout)

    await score()
    case.engine()
    pairs = []  # (engine s, score s), one after the other in each round: a slow spell of the machine hits both
    for _ in range(rounds):
        engine_s = _seconds(case.engine)
        started = time.perf_counter()
        await score()
        pairs.append((engine_s, time.perf_counter() - started))
    references = await spec.references(case.task, case.responses, None, scoring, blobs)
    pure_s = min(_seconds(lambda: spec.reward(case.task, None, case.responses, references, timeout_s=timeout))
                 for _ in range(max(rounds, 20)))
    return {"kind": spec.kind, "answers": len(case.responses), "score_s": min(p[1] for p in pairs),
            "engine_s": min(p[0] for p in pairs), "ratio": statistics.median(p[1] / p[0] for p in pairs),
            "pure_s": pure_s, "produce_s": case.produce_s}


def _seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def print_rows(label: str, rows: list[dict[str, Any]]) -> None:
    print(f"{label}\n{'kind':<14} {'answers':>7} {'scored/s':>9} {'score s/task':>12} {'engine s/task':>13} "
          f"{'score/engine':>12} {'pure/s':>8} {'produce s':>9} {'check/produce':>13}")
    for r in rows:
        n = r["answers"]
        print(f"{r['kind']:<14} {n:>7} {n / r['score_s']:>9.1f} {r['score_s']:>12.3f} {r['engine_s']:>13.3f} "
              f"{r['ratio']:>11.2f}x {n / r['pure_s']:>8.0f} {r['produce_s']:>9.3f} "
              f"{r['score_s'] / n / r['produce_s']:>13.2f}", flush=True)


def against(other: Path, n: int, rounds: int, turns: int) -> None:
    """This tree and ``other`` taking turns (``bench_trees``); per kind and figure the best turn."""
    results = alternate(__file__, ["--json", "--responses", str(n), "--rounds", str(rounds)], other, turns)
    for label, runs in results.items():  # per figure the best turn: the shared machine only ever slows one down
        best = [{**rows[0], **{k: min(r[k] for r in rows) for k in ("score_s", "engine_s", "pure_s", "produce_s")},
                 "ratio": statistics.median(r["ratio"] for r in rows)} for rows in zip(*runs, strict=True)]
        print_rows(f"best of {turns} turns, {label}:", best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=8, help="distinct answers per task (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="timed scoring rounds per kind, best kept (default 3)")
    parser.add_argument("--against", type=Path, help="another source tree to measure in the same run")
    parser.add_argument("--turns", type=int, default=2, help="alternating turns per tree with --against")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line (for --against)")
    args = parser.parse_args()
    if args.against:
        against(args.against.resolve(), args.responses, args.rounds, args.turns)
        return
    rows = asyncio.run(measure(args.responses, args.rounds))
    print(json.dumps(rows)) if args.json else print_rows("", rows)


if __name__ == "__main__":
    main()
