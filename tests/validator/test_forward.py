"""The forward loop on the real embedded store and local chain, with miners as real axons on 127.0.0.1."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import asyncio
import json
import logging
import typing

import aiohttp

from protocol import SummarizationSynapse
from subnet_proxy.keys import Role
from subnet_proxy.keys.sqlite import SqliteKeyStore
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.server.app import create_app, start_server
from subnet_proxy.signing import sign_request
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskKind, TaskStatus
from tests.conftest import make_wallet

SOURCE = ("The river rose overnight after three days of rain. Farmers moved their herds to higher ground "
          "before dawn. The village council opened the school gym as a shelter. By noon the water had "
          "reached the old mill, and the bridge on the main road was closed to traffic.")
GOOD = "Heavy rain made the river rise; farmers moved herds uphill, the school became a shelter, the bridge closed."


def summarizer(summary: str | None, delay: float = 0.0, seen: list | None = None) -> typing.Callable:
    async def forward(synapse: SummarizationSynapse) -> SummarizationSynapse:
        if seen is not None:
            seen.append(synapse.text)
        await asyncio.sleep(delay)
        synapse.summary = summary
        return synapse

    return forward


def crashing() -> typing.Callable:
    async def forward(synapse: SummarizationSynapse) -> SummarizationSynapse:
        raise RuntimeError("engine crashed")

    return forward


def summary_task(text: str = SOURCE) -> Task:
    return Task(kind=TaskKind.SUMMARIZATION, owner="client", input=TaskInput(text=text, max_words=25))


async def test_task_reaches_approved_with_the_best_answer_and_scores_follow(harness):
    good = await harness.add_miner("good", summarizer(GOOD, delay=0.2))
    bad = await harness.add_miner("bad", summarizer("Bananas are yellow and grow in bunches.", delay=0.0))
    validator = await harness.validator(sample_size=2)
    task, _ = await harness.store.create_task(summary_task())

    done = await harness.wait_status(task.task_id, TaskStatus.APPROVED)
    result = await harness.store.get_final_result(task.task_id)
    responses = await harness.store.list_responses(task.task_id)
    first = await harness.store.first_response(task.task_id)
    assert result is not None and result.uid == good and result.text == GOOD
    assert first is not None and first.uid == bad  # the instant answer was visible first, the better one won
    assert {r.uid for r in responses} == {good, bad} and all(r.latency_s for r in responses)
    assert [t.status for t in done.timeline][:3] == [TaskStatus.PENDING, TaskStatus.DISTRIBUTED, TaskStatus.DONE]
    [evaluation] = await harness.store.list_evaluations(task.task_id)
    assert evaluation.validator_hotkey == validator.hotkey
    stats = {s.uid: s for s in validator.miner_stats()}
    assert stats[good].ema_score > stats[bad].ema_score
    assert stats[good].attempts == 1 and stats[good].latency_s >= 0.2


async def test_identical_answers_from_two_miners_both_earn(harness):
    """Two miners with the same deterministic model return the same summary: both are credited (the
    faster one a little more), and neither is backed off."""
    early = await harness.add_miner("early", summarizer(GOOD, delay=0.0))
    late = await harness.add_miner("late", summarizer(GOOD, delay=0.3))
    validator = await harness.validator(sample_size=2)
    task, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(task.task_id, TaskStatus.APPROVED)

    [evaluation] = await harness.store.list_evaluations(task.task_id)
    rewards = {r.uid: r.reward for r in evaluation.rewards}
    assert rewards[early] >= rewards[late] > 0.5
    stats = {s.uid: s for s in validator.miner_stats()}
    assert stats[late].consecutive_failures == 0 and stats[late].success_rate == 1.0
    assert stats[early].ema_score >= stats[late].ema_score > 0.0


async def test_no_valid_answer_goes_to_other_miners_once_then_fails_with_the_reason(harness):
    uids = [await harness.add_miner(f"broken{i}", crashing()) for i in range(3)]
    await harness.validator(sample_size=2)
    task, _ = await harness.store.create_task(summary_task())

    failed = await harness.wait_status(task.task_id, TaskStatus.FAILED)
    assert failed.error is not None and failed.error.code == "no_valid_response"
    assert "3 miners" in failed.error.message and "3 error" in failed.error.message
    assert sorted(uid for uid, _ in failed.assigned) == sorted(uids)
    assert failed.attempts == 2


async def test_redispatch_reaches_a_working_miner(harness):
    good = await harness.add_miner("good", summarizer(GOOD))
    for i in range(2):
        await harness.add_miner(f"empty{i}", summarizer(None))
    await harness.validator(sample_size=2, timeout=1.0)
    for _ in range(3):  # whichever two are drawn first, the good miner answers in the end
        task, _ = await harness.store.create_task(summary_task())
        await harness.wait_status(task.task_id, TaskStatus.APPROVED)
        result = await harness.store.get_final_result(task.task_id)
        assert result is not None and result.uid == good


async def test_tasks_are_dispatched_as_they_arrive_within_the_concurrency_bound(harness):
    seen: list[str] = []
    await harness.add_miner("slow", summarizer(GOOD, delay=0.6, seen=seen))
    await harness.validator(sample_size=1, concurrency=2)
    created = [(await harness.store.create_task(summary_task(f"{SOURCE} Report {i}.")))[0] for i in range(5)]
    peak = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    first_seen = None
    while loop.time() - start < 20:
        counts = await harness.store.count_by_status()
        peak = max(peak, counts[TaskStatus.DISTRIBUTED])
        if first_seen is None and seen:
            first_seen = loop.time() - start
        if counts[TaskStatus.APPROVED] == 5:
            break
        await asyncio.sleep(0.02)
    finals = [(await harness.store.get_task(t.task_id)).status for t in created]
    assert finals == [TaskStatus.APPROVED] * 5
    assert peak == 2
    assert first_seen is not None and first_seen < 1.5  # woken by the store, not a 2-5 s poll cadence


async def test_shutdown_releases_in_flight_tasks_and_a_restart_completes_them(harness):
    await harness.add_miner("slow", summarizer(GOOD, delay=2.0))
    validator = await harness.validator(sample_size=1, shutdown_grace_s=0.2, timeout=5.0)
    task, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(task.task_id, TaskStatus.DISTRIBUTED)
    await asyncio.sleep(0.2)
    await validator.stop()
    released = await harness.store.get_task(task.task_id)
    assert released.status is TaskStatus.PENDING and released.lease_owner is None
    assert released.timeline[-1].reason == "validator shutdown"

    await harness.validator(sample_size=1, timeout=5.0)
    await harness.wait_status(task.task_id, TaskStatus.APPROVED)


async def test_a_dead_validators_task_is_taken_over_when_its_lease_expires(harness):
    await harness.add_miner("good", summarizer(GOOD))
    task, _ = await harness.store.create_task(summary_task())
    [claimed] = await harness.store.claim_tasks("dead-validator", limit=1, lease_s=1.0)
    assert claimed.task_id == task.task_id
    await harness.validator(sample_size=1)
    done = await harness.wait_status(task.task_id, TaskStatus.APPROVED, timeout=15)
    statuses = [t.status for t in done.timeline]
    assert statuses.count(TaskStatus.DISTRIBUTED) == 2 and TaskStatus.PENDING in statuses[1:]


async def test_a_taken_over_task_asks_the_miners_the_dead_validator_never_heard_back_from(harness):
    """The dead validator recorded one fast junk answer before dying; the miner it asked and never
    heard back from must be asked again, not the task closed on the junk alone."""
    junk = await harness.add_miner("junk", summarizer("Bananas are yellow and grow in bunches."))
    good = await harness.add_miner("good", summarizer(GOOD, delay=0.2))
    task, _ = await harness.store.create_task(summary_task())
    await harness.store.claim_tasks("dead-validator", limit=1, lease_s=1.0)
    snapshot = await harness.chain.snapshot()
    hotkey = {uid: snapshot.by_uid(uid).hotkey for uid in (junk, good)}
    await harness.store.assign_miners(task.task_id, "dead-validator", [(junk, hotkey[junk]), (good, hotkey[good])])
    await harness.store.record_response(MinerResponse(task_id=task.task_id, hotkey=hotkey[junk], uid=junk,
                                                      state="ok", latency_s=0.01, text="Bananas are yellow."))
    await harness.validator(sample_size=1)
    await harness.wait_status(task.task_id, TaskStatus.APPROVED, timeout=15)
    result = await harness.store.get_final_result(task.task_id)
    assert result is not None and result.uid == good and result.text == GOOD


async def test_an_answer_delivered_later_through_the_side_server_is_merged(harness):
    """A miner answering its synapse empty and delivering through the signed miner-response endpoint
    of the side-server (same store) has its delivered answer counted."""

    async def deliver_later(synapse: SummarizationSynapse) -> SummarizationSynapse:
        return synapse

    uid = await harness.add_miner("async", deliver_later)
    miner = make_wallet(harness.root / "wallets", "async")
    validator = await harness.validator(sample_size=1, timeout=2.0)
    keys = SqliteKeyStore(harness.root / "keys.db")
    app = create_app(validator.settings, store=WatchedStore(harness.store), blobs=harness.blobs, keys=keys,
                     metagraph=validator.metagraph, own_hotkey=validator.hotkey)
    server = await start_server(app, validator.settings, host="127.0.0.1", port=0)
    try:
        task, _ = await harness.store.create_task(summary_task())
        while not (await harness.store.get_task(task.task_id)).assigned:  # the synapse is on its way
            await asyncio.sleep(0.02)
        body = json.dumps({"task_id": task.task_id, "text": GOOD}).encode()
        headers = {"Content-Type": "application/json",
                   **sign_request(miner.hotkey, body, validator.hotkey)}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{server.url}/api/v1/miner/response", data=body, headers=headers) as resp:
                answer = await resp.json()
        assert resp.status == 200, answer
        assert answer["first"] is True
        await harness.wait_status(task.task_id, TaskStatus.APPROVED)
    finally:
        await server.stop()
        await keys.close()
    result = await harness.store.get_final_result(task.task_id)
    assert result is not None and result.uid == uid and result.text == GOOD
    [response] = await harness.store.list_responses(task.task_id)
    assert response.state == "ok" and response.latency_s is not None  # measured by the server, not claimed


async def test_a_task_cancelled_while_out_with_miners_is_dropped_by_the_loop(harness, caplog):
    """A client cancels through the side-server while the miner is still working: the lease keeper
    finds the lease gone and stops the worker, the task stays FAILED ``cancelled`` with no answer
    recorded, and the slot is free for the next task at once (not after the miner's answer). The log
    says it was cancelled, not that another validator took it (no warning)."""
    caplog.set_level(logging.INFO, logger="subnet_proxy.validator.forward")
    asked: list[str] = []

    async def slow_for_the_first(synapse: SummarizationSynapse) -> SummarizationSynapse:
        asked.append(synapse.text)
        if "Cancel me." in synapse.text:
            await asyncio.sleep(2.5)
        synapse.summary = GOOD
        return synapse

    await harness.add_miner("slow-first", slow_for_the_first)
    validator = await harness.validator(sample_size=1, concurrency=1, lease_s=0.6, timeout=5.0)
    async with harness.served(validator) as (url, keys), aiohttp.ClientSession() as session:
        _, key = await keys.create(name="client", role=Role.CLIENT)
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(f"{url}/api/v1/summarization", json={"text": f"{SOURCE} Cancel me."},
                                headers=headers) as resp:
            assert resp.status == 202, await resp.text()
            task_id = (await resp.json())["task_id"]
        loop = asyncio.get_running_loop()
        while not asked:  # the synapse reached the miner
            await asyncio.sleep(0.02)
        async with session.post(f"{url}/api/v1/task/{task_id}/cancel", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        cancelled_at = loop.time()
        while validator.forward.in_flight:
            await asyncio.sleep(0.02)
        assert loop.time() - cancelled_at < 1.5  # the keeper (every lease_s / 3), not the miner's 2.5 s
        task, _ = await harness.store.create_task(summary_task())
        await harness.wait_status(task.task_id, TaskStatus.APPROVED)
    cancelled = await harness.store.get_task(task_id)
    assert cancelled.status is TaskStatus.FAILED and cancelled.error is not None
    assert cancelled.error.code == "cancelled"
    assert await harness.store.list_responses(task_id) == []
    about = [r for r in caplog.records if task_id in r.getMessage()]
    assert any("cancelled by its client" in r.getMessage() for r in about), [r.getMessage() for r in about]
    assert not any(r.levelno >= logging.WARNING for r in about), [r.getMessage() for r in about]


async def test_unusable_input_fails_the_task_with_a_clear_error(harness):
    await harness.add_miner("good", summarizer(GOOD))
    await harness.validator(sample_size=1)
    task = Task(kind=TaskKind.TRANSCRIPTION, owner="client",
                input=TaskInput(audio_blob="0" * 64, audio_format="wav", audio_seconds=1.0))
    task, _ = await harness.store.create_task(task)
    failed = await harness.wait_status(task.task_id, TaskStatus.FAILED)
    assert failed.error is not None and failed.error.code == "bad_input"
    assert "not found" in failed.error.message


async def test_a_kind_this_build_does_not_serve_is_left_in_the_store(harness):
    """A newer validator on a shared store may make a kind this one has not registered: it is neither
    claimed nor swept for evaluation here (the one that knows it serves it), while known kinds flow."""
    await harness.add_miner("good", summarizer(GOOD))
    validator = await harness.validator(sample_size=1)
    stranger, _ = await harness.store.create_task(
        Task(kind="stranger", owner="client", input=TaskInput(text="from a newer build")))  # type: ignore[arg-type]
    known, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(known.task_id, TaskStatus.APPROVED)
    assert (await harness.store.get_task(stranger.task_id)).status is TaskStatus.PENDING
    [taken] = await harness.store.claim_tasks("newer-validator", limit=1, lease_s=60, kinds=["stranger"])
    await harness.store.transition(taken.task_id, TaskStatus.DONE, claimer="newer-validator")  # it answered
    assert await validator.forward.recover() == 0
    assert await harness.store.list_evaluations(stranger.task_id) == []


class FailingOnce:
    """Fault injection: the real scorer, except that the first call raises (a model crashed)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    async def score(self, task, responses, *, timeout_s):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("model crashed")
        return await self.inner.score(task, responses, timeout_s=timeout_s)


async def test_a_failed_evaluation_leaves_the_loop_running_and_is_redone_at_the_next_start(harness):
    from subnet_proxy.validator.evaluation import EngineScorer

    await harness.add_miner("good", summarizer(GOOD))
    validator = await harness.validator(sample_size=1, scorer=FailingOnce(EngineScorer(harness.scoring, harness.blobs)))
    first, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(first.task_id, TaskStatus.DONE)
    second, _ = await harness.store.create_task(summary_task(f"{SOURCE} Second report."))
    await harness.wait_status(second.task_id, TaskStatus.APPROVED)
    assert (await harness.store.get_task(first.task_id)).status is TaskStatus.DONE
    await validator.stop()

    await harness.validator(sample_size=1)  # start: recover() evaluates what the last run left done
    await harness.wait_status(first.task_id, TaskStatus.APPROVED, timeout=5)


async def test_intake_yields_to_uploads_in_flight_then_claims_at_its_floor(harness):
    ingest = IngestActivity()
    ingest.enter()  # an upload in flight on the side-server, for the whole test
    validator = await harness.validator(ingest=ingest, yield_to_ingest_s=1.0)
    task, _ = await harness.store.create_task(summary_task())
    # Without yielding the loop claims a new task within milliseconds (no miners: it fails at once).
    await asyncio.sleep(0.3)
    assert (await harness.store.get_task(task.task_id)).status is TaskStatus.PENDING
    failed = await harness.wait_status(task.task_id, TaskStatus.FAILED, timeout=5.0)  # claimed at the floor
    assert failed.error is not None and "no serving miner" in failed.error.message
    assert validator.forward.ingest is ingest and ingest.in_flight == 1

    ingest.leave()  # quiet: the next task is claimed at once, not a floor later
    quick, _ = await harness.store.create_task(summary_task())
    started = asyncio.get_running_loop().time()
    await harness.wait_status(quick.task_id, TaskStatus.FAILED, timeout=5.0)
    assert asyncio.get_running_loop().time() - started < 0.9
