"""Evaluation, recovery and the forward loop's failure paths: a task is judged once, a failing one is
retried without a restart, a stuck or failing store call never strands a task or cuts a shutdown short."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import asyncio
from collections import Counter
from datetime import timedelta

from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.kinds import task_timeout
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskKind, TaskStatus, utcnow
from subnet_proxy.validator.evaluation import EngineScorer, Evaluator
from subnet_proxy.validator.scores import ScoreBook
from tests.conftest import make_wallet
from tests.validator.test_forward import GOOD, SOURCE, summarizer, summary_task

MINER = "5MinerHotkey"


async def done_task(store: SQLiteTaskStore, text: str = SOURCE, *, uid: int = 0, hotkey: str = MINER,
                    latency_s: float = 0.1) -> Task:
    """A summarization task a (now gone) validator took to DONE with one valid answer."""
    task, _ = await store.create_task(Task(kind=TaskKind.SUMMARIZATION, owner="client",
                                           input=TaskInput(text=text, max_words=25)))
    await store.claim_tasks("gone-validator", limit=1, lease_s=30)
    await store.record_response(MinerResponse(task_id=task.task_id, hotkey=hotkey, uid=uid, state="ok",
                                              latency_s=latency_s, text=GOOD))
    return await store.transition(task.task_id, TaskStatus.DONE, claimer="gone-validator")


async def test_a_task_evaluated_twice_moves_the_scores_once(tmp_path, scoring):
    """Two evaluations of one task by this validator (a recovery sweep racing the loop): the second
    is not recorded, so it must not fold the same reward into the EMA a second time."""
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    try:
        task = await done_task(store)
        snapshot = MetagraphSnapshot(netuid=1, block=10, neurons=(
            Neuron(uid=0, hotkey=MINER, coldkey="5Cold", stake=0.0, ip="127.0.0.1", port=9000,
                   validator_permit=False, last_update=0),))
        book = ScoreBook(alpha=0.5)
        book.sync(snapshot)
        evaluator = Evaluator(store, EngineScorer(scoring, blobs), book, lambda: snapshot,
                              validator_hotkey="5Validator", quorum=0.5)
        outcomes = await asyncio.gather(evaluator.evaluate(task, timeout_s=5.0),
                                        evaluator.evaluate(task, timeout_s=5.0))
        assert [o.status for o in outcomes] == [TaskStatus.APPROVED, TaskStatus.APPROVED]
        [stat] = book.stats()
        reward = outcomes[0].rewards[0].reward
        assert reward > 0
        assert stat.attempts == 1
        assert stat.ema_score == 0.5 * reward
        assert len(await store.list_evaluations(task.task_id)) == 1
    finally:
        await store.close()
        await blobs.close()


class FailingFor:
    """Fault injection: the real scorer, except that scoring the named task raises the first time."""

    def __init__(self, inner, task_id: str) -> None:
        self.inner = inner
        self.task_id = task_id
        self.failed = False

    async def score(self, task, responses, *, timeout_s):
        if task.task_id == self.task_id and not self.failed:
            self.failed = True
            raise RuntimeError("model crashed")
        return await self.inner.score(task, responses, timeout_s=timeout_s)


async def test_a_task_that_cannot_be_evaluated_at_start_neither_blocks_the_start_nor_stays_done(harness):
    """At start, one DONE task whose scoring crashes must not stop the validator from starting (nor
    the other tasks from being judged), and the recovery sweep judges it later without a restart."""
    poison = await done_task(harness.store, f"{SOURCE} First.")
    other = await done_task(harness.store, f"{SOURCE} Second.")
    scorer = FailingFor(EngineScorer(harness.scoring, harness.blobs), poison.task_id)
    await harness.validator(scorer=scorer, recover_s=0.3)
    await harness.wait_status(other.task_id, TaskStatus.APPROVED, timeout=10)
    assert scorer.failed
    await harness.wait_status(poison.task_id, TaskStatus.APPROVED, timeout=10)


class CountingScorer:
    """The real scorer, slowed down (a loaded scoring pool) and counting the tasks it scores."""

    def __init__(self, inner, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.calls: Counter[str] = Counter()

    async def score(self, task, responses, *, timeout_s):
        self.calls[task.task_id] += 1
        await asyncio.sleep(self.delay_s)
        return await self.inner.score(task, responses, timeout_s=timeout_s)


async def test_the_recovery_sweep_never_judges_a_task_the_loop_is_judging(harness):
    """DONE tasks waiting for (or in) their evaluation in this process are not the sweep's to take:
    each task is scored once and each answer counted once."""
    good = await harness.add_miner("good", summarizer(GOOD))
    scorer = CountingScorer(EngineScorer(harness.scoring, harness.blobs), delay_s=0.4)
    validator = await harness.validator(scorer=scorer, sample_size=1, concurrency=1, recover_s=0.05)
    created = [(await harness.store.create_task(summary_task(f"{SOURCE} Report {i}.")))[0] for i in range(4)]
    for task in created:
        await harness.wait_status(task.task_id, TaskStatus.APPROVED, timeout=20)
    assert validator.recovery.steps > 3  # the sweep did run while tasks were being judged
    assert dict(scorer.calls) == {t.task_id: 1 for t in created}
    stats = {s.uid: s for s in validator.miner_stats()}
    assert stats[good].attempts == len(created)


async def test_a_lease_renewal_that_raises_a_backend_error_does_not_stop_the_renewals(harness, monkeypatch):
    """A cloud store raises its client's own errors (not StoreError) on a flaky network: the keeper
    must log and keep renewing, or the lease runs out under a task still out with miners and a
    rival validator takes it over (the same work twice)."""
    await harness.add_miner("slow", summarizer(GOOD, delay=2.0))
    renew = harness.store.renew_lease
    calls = 0

    async def flaky_renew(task_id, claimer, *, lease_s):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("backend unavailable")
        return await renew(task_id, claimer, lease_s=lease_s)

    monkeypatch.setattr(harness.store, "renew_lease", flaky_renew)
    validator = await harness.validator(sample_size=1, lease_s=0.6, timeout=5.0)
    task, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(task.task_id, TaskStatus.DISTRIBUTED)
    stolen = []
    loop = asyncio.get_running_loop()
    until = loop.time() + 2.0
    while loop.time() < until and not stolen:
        stolen = await harness.store.claim_tasks("rival-validator", limit=1, lease_s=30)
        await asyncio.sleep(0.05)
    assert stolen == [] and calls > 1
    done = await harness.wait_status(task.task_id, TaskStatus.APPROVED)
    assert done.timeline[1].reason == f"claimed by {validator.hotkey}"


async def test_a_task_claimed_past_its_deadline_expires_without_reaching_a_miner(harness):
    """Retention expires overdue tasks only every interval (an hour by default): a PENDING task whose
    deadline passes while it queues must not be sent to miners and approved late, but end EXPIRED
    when it is claimed."""
    seen: list[str] = []
    await harness.add_miner("slow", summarizer(GOOD, delay=1.5, seen=seen))
    await harness.validator(sample_size=1, concurrency=1)
    first, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(first.task_id, TaskStatus.DISTRIBUTED)
    queued = summary_task(f"{SOURCE} Late.").model_copy(update={"deadline": utcnow() + timedelta(seconds=0.5)})
    late, _ = await harness.store.create_task(queued)
    expired = await harness.wait_status(late.task_id, TaskStatus.EXPIRED, TaskStatus.APPROVED, timeout=10)
    assert expired.status is TaskStatus.EXPIRED
    assert expired.error is not None and expired.error.code == "deadline"
    assert seen == [SOURCE] and await harness.store.list_responses(late.task_id) == []


class GatedScorer:
    """The real scorer behind a gate (a scoring pool busy for a long while): nothing is scored until
    the test opens it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = 0

    async def score(self, task, responses, *, timeout_s):
        self.waiting += 1
        await self.gate.wait()
        return await self.inner.score(task, responses, timeout_s=timeout_s)


async def test_a_backlog_of_done_tasks_does_not_hold_the_start_back(harness):
    """A restart with DONE tasks left unjudged (a crash, a shared store waiting for its quorum) must
    open intake at once and judge them alongside, not evaluate them all before serving."""
    left = [await done_task(harness.store, f"{SOURCE} Left {i}.") for i in range(3)]
    scorer = GatedScorer(EngineScorer(harness.scoring, harness.blobs))
    await asyncio.wait_for(harness.validator(scorer=scorer), timeout=10)
    for _ in range(100):
        if scorer.waiting:
            break
        await asyncio.sleep(0.05)
    assert scorer.waiting >= 1  # the first sweep is under way, not finished before start returned
    scorer.gate.set()
    for task in left:
        await harness.wait_status(task.task_id, TaskStatus.APPROVED, timeout=10)


async def test_a_release_that_fails_on_shutdown_does_not_cut_the_shutdown_short(harness, monkeypatch):
    """The store failing while in-flight tasks are given back (a cloud backend unreachable at that
    moment) must not end ``stop`` early: the loops still stop and the scores are still saved; the
    task comes back when its lease runs out."""
    await harness.add_miner("slow", summarizer(GOOD, delay=3.0))
    validator = await harness.validator(sample_size=1, shutdown_grace_s=0.1, timeout=5.0)
    task, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(task.task_id, TaskStatus.DISTRIBUTED)

    async def unreachable(task_id, claimer, *, reason="released"):
        raise ConnectionError("backend unavailable")

    monkeypatch.setattr(harness.store, "release_task", unreachable)
    validator.scores.update(0, validator.scores.hotkey(0) or "", 0.5)  # something to save
    await validator.stop()
    assert validator.recovery.stopping and validator.weights.stopping
    assert validator.scores.path.exists() and not validator.scores.dirty
    held = await harness.store.get_task(task.task_id)
    assert held.status is TaskStatus.DISTRIBUTED and held.lease_owner == validator.hotkey



async def test_a_dispatch_stuck_on_a_call_that_never_returns_gives_the_task_back(harness, monkeypatch):
    """A call that hangs (a store or blob backend that never answers) must not keep the task
    DISTRIBUTED under a lease its keeper renews for ever: past the dispatch's time budget the work
    is abandoned, the lease runs out and the task is dispatched again."""
    await harness.add_miner("good", summarizer(GOOD))
    assign = harness.store.assign_miners
    hung = asyncio.Event()

    async def hangs_once(task_id, claimer, miners):
        if not hung.is_set():
            hung.set()
            await asyncio.Event().wait()  # never returns
        return await assign(task_id, claimer, miners)

    monkeypatch.setattr(harness.store, "assign_miners", hangs_once)
    validator = await harness.validator(sample_size=1, timeout=0.5, lease_s=1.0)
    assert validator.dispatcher.time_budget(summary_task()) < 10
    task, _ = await harness.store.create_task(summary_task())
    done = await harness.wait_status(task.task_id, TaskStatus.APPROVED, timeout=20)
    assert hung.is_set()
    assert [t.status for t in done.timeline].count(TaskStatus.DISTRIBUTED) == 2


async def test_a_recovered_task_with_a_delivered_answer_is_judged_against_the_delivery_window(harness):
    """An answer delivered through the side-server arrives after the synapse timeout, within the
    delivery window the dispatch judged it against. The recovery sweep (no dispatch outcome at hand)
    must judge it the same way, not as late (zero)."""
    settings = harness.settings()
    timeout = task_timeout(summary_task(), settings.neuron.timeout)
    window = timeout * settings.proxy.delivery_window
    task = await done_task(harness.store, latency_s=(timeout + window) / 2)
    await harness.validator()
    await harness.wait_status(task.task_id, TaskStatus.APPROVED)
    [evaluation] = await harness.store.list_evaluations(task.task_id)
    assert evaluation.rewards[0].reward > 0.2, evaluation.rewards[0].breakdown


async def test_a_chain_unreadable_at_start_is_waited_for_not_fatal(harness, monkeypatch):
    """A subtensor that cannot be read when the validator starts (a node restarting) must not end
    the process: the start retries until the metagraph comes, then serves; a stop ends the wait."""
    from subnet_proxy.chain import ChainError
    from subnet_proxy.chain.local import LocalChain
    from subnet_proxy.validator import neuron

    monkeypatch.setattr(neuron, "START_RETRY_S", 0.05)
    real = LocalChain.snapshot
    failures = 0

    async def flaky(self):
        nonlocal failures
        if failures < 2:
            failures += 1
            raise ChainError("chain metagraph timed out after 30 s")
        return await real(self)

    monkeypatch.setattr(LocalChain, "snapshot", flaky)
    await harness.add_miner("good", summarizer(GOOD))
    await harness.validator(sample_size=1)
    assert failures == 2
    task, _ = await harness.store.create_task(summary_task())
    await harness.wait_status(task.task_id, TaskStatus.APPROVED)


async def test_a_stop_ends_the_wait_for_an_unreadable_chain(harness, monkeypatch):
    from subnet_proxy.chain import ChainError
    from subnet_proxy.chain.local import LocalChain
    from subnet_proxy.validator import neuron

    monkeypatch.setattr(neuron, "START_RETRY_S", 0.05)

    async def down(self):
        raise ChainError("chain metagraph failed: ConnectionError")

    monkeypatch.setattr(LocalChain, "snapshot", down)
    wallet = make_wallet(harness.root / "wallets", "validator")
    chain = LocalChain(harness.chain.path, netuid=harness.chain.netuid, hotkey=wallet.hotkey.ss58_address)
    validator = neuron.Validator(harness.settings(), keypair=wallet.hotkey, chain=chain, store=harness.store,
                                 blobs=harness.blobs, scorer=EngineScorer(harness.scoring, harness.blobs))
    stop = asyncio.Event()
    starting = asyncio.create_task(validator.start(stop))
    await asyncio.sleep(0.3)
    assert not starting.done()
    stop.set()
    assert await asyncio.wait_for(starting, 5) is False
    assert not validator.forward.steps
    await validator.dendrite.close()


async def test_the_external_ip_is_looked_up_off_the_event_loop(monkeypatch):
    """bittensor's lookup does HTTP without a timeout, then shells out to curl: on the loop it would
    freeze everything already running (the side-server, the chain client) for as long as it takes."""
    import threading

    from bittensor.utils import networking

    from subnet_proxy.validator.run import external_ip

    threads: list[threading.Thread] = []

    def lookup() -> str:
        threads.append(threading.current_thread())
        return "203.0.113.7"

    monkeypatch.setattr(networking, "get_external_ip", lookup)
    assert await external_ip() == "203.0.113.7"
    assert threads and threads[0] is not threading.main_thread()
