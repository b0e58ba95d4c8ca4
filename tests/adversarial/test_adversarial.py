"""The honest reference miner against nine ways of cheating or failing, over real axons and a real Dendrite.

Each task kind gets a fresh synthetic challenge, sent by a stock ``bt.Dendrite`` to all ten miners
on 127.0.0.1; the answers go through the validator's own codec (``decode_result``) and
``score_task`` on the real engines. The honest miner must beat every bad
one by a clear margin (the copycat, which returns the honest answer itself, earns no more than it),
and no bad answer may crash or stall scoring. Fair alternatives and the cheaper tricks of issue 12
(collusion, padding, keyword salad, shuffled words, another text's summary) are in
``test_attack_classes.py``.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta

import bittensor as bt
import pytest

from subnet_proxy.blobs.local import LocalBlobStore
from subnet_proxy.kinds import REGISTRY, score_task, task_timeout
from subnet_proxy.kinds.challenges import Corpus
from subnet_proxy.kinds.wire import build_synapse
from subnet_proxy.tasks import MinerResponse, Task, TaskKind, utcnow
from subnet_proxy.validator.codec import decode_result
from subnet_proxy.validator.dendrite import AxonResult, Outcome
from tests.adversarial.conftest import LineUp, Miner

pytestmark = pytest.mark.slow

#: the base dendrite timeout here (production default: 12 s); the late miner answers after it.
BASE_TIMEOUT_S = 8.0
#: the honest reward must beat each bad one by at least this much, and be at least HONEST_FLOOR.
MARGIN = 0.4
HONEST_FLOOR = 0.5
#: scoring ten answers may take this long at most, whatever they contain.
SCORING_BUDGET_S = 60.0


def _outcome(status: int | None) -> Outcome:
    return "ok" if status == 200 else "timeout" if status == 408 else "http_error"


async def collect(task: Task, lineup: LineUp, blobs: LocalBlobStore, timeout: float) -> list[MinerResponse]:
    """Ask every miner with a real Dendrite; turn each answer into the MinerResponse the validator stores."""
    synapse = await build_synapse(task, blobs)
    dendrite = bt.Dendrite(wallet=lineup.validator)
    sent = utcnow()
    try:
        answers = await dendrite.forward([m.info for m in lineup.all], synapse, timeout=timeout, deserialize=False)
    finally:
        await dendrite.aclose_session()
    responses = []
    for miner, answer in zip(lineup.all, answers, strict=True):
        latency = float(answer.dendrite.process_time or timeout)
        result = AxonResult(uid=miner.uid, hotkey=miner.wallet.hotkey.ss58_address,
                            outcome=_outcome(answer.dendrite.status_code), latency_s=latency,
                            synapse=answer if answer.dendrite.status_code == 200 else None,
                            status_code=answer.dendrite.status_code, message=answer.dendrite.status_message)
        response = await decode_result(task, result, blobs)
        responses.append(response.model_copy(update={"received_at": sent + timedelta(seconds=latency)}))
    return responses


@pytest.mark.parametrize("kind", list(TaskKind))
async def test_honest_miner_beats_every_bad_one(kind: TaskKind, lineup: LineUp, engines, scoring_engines,
                                                tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    challenge = await REGISTRY[kind].challenge(engines, Corpus.load(), random.Random(list(TaskKind).index(kind)),
                                               owner="synthetic:validator")
    for data in challenge.blobs.values():
        await blobs.put(data, content_type="audio/wav")
    task = challenge.task
    timeout = task_timeout(task, BASE_TIMEOUT_S)

    started = time.monotonic()
    responses = await collect(task, lineup, blobs, timeout)
    assert time.monotonic() - started < timeout + 5.0  # the late miner cannot hold the fan-out open

    started = time.monotonic()
    rewards = await asyncio.wait_for(
        score_task(task, responses, task.ground_truth, scoring_engines, blobs=blobs, timeout_s=timeout),
        SCORING_BUDGET_S)
    scoring_s = time.monotonic() - started

    by_name = {miner.name: reward for miner, reward in zip(lineup.all, rewards, strict=True)}
    report = {name: (round(r.reward, 3), r.breakdown) for name, r in by_name.items()}
    honest = by_name.pop("honest").reward
    assert honest >= HONEST_FLOOR, report
    for name, reward in by_name.items():
        if name != "copycat":
            assert honest - reward.reward >= MARGIN, (name, report)
    assert by_name["late"].breakdown == {"rejected_timeout": 1.0}, report
    # Identical answers each earn (two honest miners on one model would); the copy came later, so no more.
    assert by_name["copycat"].reward <= honest, report
    print(f"\n{kind.value}: scored {len(rewards)} answers in {scoring_s:.2f} s; rewards", report)


async def test_client_transcription_consensus_resists_the_bad_miners(lineup: LineUp, engines, scoring_engines,
                                                                     tmp_path) -> None:
    """The same line-up on a transcription judged as a client task (no ground truth: consensus reference)."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    challenge = await REGISTRY[TaskKind.TRANSCRIPTION].challenge(engines, Corpus.load(), random.Random(7),
                                                                 owner="client")
    for data in challenge.blobs.values():
        await blobs.put(data, content_type="audio/wav")
    task = challenge.task.model_copy(update={"ground_truth": None, "synthetic": False})
    timeout = task_timeout(task, BASE_TIMEOUT_S)
    responses = await collect(task, lineup, blobs, timeout)
    rewards = await score_task(task, responses, None, scoring_engines, blobs=blobs, timeout_s=timeout)
    by_name = {m.name: r.reward for m, r in zip(lineup.all, rewards, strict=True)}
    honest = by_name.pop("honest")
    copycat = by_name.pop("copycat")
    assert honest >= HONEST_FLOOR and all(honest - r >= MARGIN for r in by_name.values()), by_name
    assert copycat <= honest, by_name


def test_every_bad_miner_is_in_the_line_up(lineup: LineUp) -> None:
    names = {m.name for m in lineup.bad}
    assert names == {"empty", "random", "echo", "noise", "silence", "other_sentence", "copycat", "late", "oversize"}
    assert len({m.info.port for m in lineup.all}) == len(lineup.all)
    assert all(isinstance(m, Miner) for m in lineup.all)
