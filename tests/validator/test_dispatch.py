"""The dispatcher against a real axon on 127.0.0.1: a slow answer to a task another validator took over
and finished is dropped, not recorded on the finished task; a late delivery wakes the dispatcher through
the store's change feed (a re-read is only the backstop for writes of another process); a miner offered
delivery that let the synapse time out may still deliver within the window."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from protocol import SummarizationSynapse
from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.config import NeuronSettings, ProxySettings, Settings
from subnet_proxy.outbound import OutboundPolicy
from subnet_proxy.store import LeaseLost, SQLiteTaskStore
from subnet_proxy.store.watched import WatchedStore
from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskKind, TaskStatus, utcnow
from subnet_proxy.validator.dendrite import FanoutDendrite
from subnet_proxy.validator.dispatch import Dispatcher
from tests.validator.axons import neuron, running_axon

MINER_DELAY_S = 1.5


async def slow_summarizer(synapse: SummarizationSynapse) -> SummarizationSynapse:
    await asyncio.sleep(MINER_DELAY_S)
    synapse.summary = "River rose; herds moved."
    return synapse


class OnlyMiner:
    def __init__(self, miner: Neuron) -> None:
        self.miner = miner

    def select(self, snapshot: MetagraphSnapshot, k: int, *, exclude: set[str]) -> list[Neuron]:
        return [] if self.miner.hotkey in exclude else [self.miner]


@asynccontextmanager
async def dispatching(tmp_path, wallet_factory, forward, *, store, claimer: str, timeout: float = 5.0,
                      **proxy: float) -> AsyncIterator[tuple[Dispatcher, Task, Neuron]]:
    """A summarization task claimed by ``claimer``, a real axon serving ``forward``, and a dispatcher
    that asks only that miner."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    dendrite = FanoutDendrite(wallet_factory("validator").hotkey, external_ip="127.0.0.1",
                              outbound=OutboundPolicy(allow_private=True))
    try:
        task = Task(kind=TaskKind.SUMMARIZATION, owner="client",
                    input=TaskInput(text="The river rose overnight. Farmers moved their herds.", max_words=10))
        await store.create_task(task)
        [task] = await store.claim_tasks(claimer, limit=1, lease_s=60)
        wallet = wallet_factory("miner")
        with running_axon(wallet, forward) as port:
            miner = neuron(1, wallet.hotkey.ss58_address, port)
            settings = Settings(neuron=NeuronSettings(data_dir=str(tmp_path), timeout=timeout, sample_size=1),
                                proxy=ProxySettings(**proxy))
            yield (Dispatcher(settings, store, blobs, dendrite, OnlyMiner(miner),
                              lambda: MetagraphSnapshot(netuid=1, block=1, neurons=(miner,)), claimer), task, miner)
    finally:
        await dendrite.close()
        await blobs.close()
        await store.close()


async def test_a_late_answer_to_a_task_finished_elsewhere_is_dropped(tmp_path, wallet_factory):
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    async with dispatching(tmp_path, wallet_factory, slow_summarizer, store=store, claimer="slow-validator") as (
            dispatcher, task, _):
        run = asyncio.create_task(dispatcher.run(task))
        while not (await store.get_task(task.task_id)).assigned:  # the miner is working on it now
            await asyncio.sleep(0.02)
        # the lease looks expired to another validator, which takes the task and finishes it
        later = utcnow() + timedelta(seconds=120)
        [taken] = await store.claim_tasks("other-validator", limit=1, lease_s=60, now=later)
        await store.transition(taken.task_id, TaskStatus.DONE, claimer="other-validator")
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(run, MINER_DELAY_S + 10)
        assert await store.list_responses(task.task_id) == []
        assert (await store.get_task(task.task_id)).status is TaskStatus.DONE


async def empty_summarizer(synapse: SummarizationSynapse) -> SummarizationSynapse:
    return synapse  # answers on time without output: it will deliver through the side-server


@pytest.mark.parametrize("writer", ["side_server", "other_process"])
async def test_a_late_delivery_ends_the_wait_through_the_change_feed(tmp_path, wallet_factory, writer):
    """The side-server shares the dispatcher's WatchedStore, so its write of a delivery wakes the
    dispatcher at once, long before the backstop re-read; a delivery written by another process over
    the same database (unseen by the feed) is found by the backstop re-read."""
    inner = SQLiteTaskStore(tmp_path / "tasks.db")
    store = WatchedStore(inner)
    backstop_s = 60.0 if writer == "side_server" else 0.5
    async with dispatching(tmp_path, wallet_factory, empty_summarizer, store=store, claimer="validator",
                           watch_poll_s=backstop_s, delivery_window=20) as (dispatcher, task, miner):
        dispatcher.offer_delivery("http://127.0.0.1:9")
        reads = 0
        list_responses = inner.list_responses

        async def counted(task_id: str) -> list[MinerResponse]:
            nonlocal reads
            reads += 1
            return await list_responses(task_id)

        inner.list_responses = counted  # type: ignore[method-assign]
        run = asyncio.create_task(dispatcher.run(task))
        while not (await store.get_task(task.task_id)).assigned:
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # the empty answer is in; the dispatcher waits for the delivery
        assert not run.done()
        if writer == "side_server":
            assert reads <= 3  # it waits on the feed: no re-read of the store while nothing changes
        delivered = MinerResponse(task_id=task.task_id, hotkey=miner.hotkey, uid=1, state="ok",
                                  text="River rose; herds moved.", latency_s=0.6)
        await (store if writer == "side_server" else inner).record_response(delivered)
        # the window is 100 s and the feed's backstop 60 s: only the change feed ends the wait this soon
        outcome = await asyncio.wait_for(run, 10)
    assert outcome.task.status is TaskStatus.DONE
    assert [r.text for r in outcome.responses] == ["River rose; herds moved."]


HANG_S = 4.0


async def hanging_summarizer(synapse: SummarizationSynapse) -> SummarizationSynapse:
    await asyncio.sleep(HANG_S)  # past the synapse timeout: its empty answer (if any) comes too late
    return synapse


@pytest.mark.parametrize("offered", [True, False])
async def test_a_miner_that_timed_out_may_still_deliver_within_the_window(tmp_path, wallet_factory, offered):
    """The miner's clock starts when its handler does, after the upload and the axon's checks, so its
    empty answer can reach the validator after the dendrite gave up: where delivery was offered, a
    timed-out miner is waited for like one that answered empty, and its delivery within the window is
    the answer that counts. Where none was offered the timeout is final at once."""
    store = WatchedStore(SQLiteTaskStore(tmp_path / "tasks.db"))
    async with dispatching(tmp_path, wallet_factory, hanging_summarizer, store=store, claimer="validator",
                           timeout=1.0, delivery_window=20) as (dispatcher, task, miner):
        if offered:
            dispatcher.offer_delivery("http://127.0.0.1:9")
        run = asyncio.create_task(dispatcher.run(task))
        while not (await store.get_task(task.task_id)).assigned:
            await asyncio.sleep(0.02)
        await asyncio.sleep(2.5)  # the synapse timed out (1 s and the summary's size) a while ago
        if not offered:
            outcome = await asyncio.wait_for(run, 10)
            assert outcome.task.status is TaskStatus.FAILED
            assert [r.state for r in outcome.responses] == ["timeout"]
            return
        assert not run.done()
        delivered = MinerResponse(task_id=task.task_id, hotkey=miner.hotkey, uid=1, state="ok",
                                  text="River rose; herds moved.", latency_s=2.5)
        _, created = await store.record_response(delivered, only_if=frozenset({TaskStatus.DISTRIBUTED}))
        assert created  # the side-server's write: taken, not refused as already answered
        outcome = await asyncio.wait_for(run, 10)
    assert outcome.task.status is TaskStatus.DONE
    assert [(r.state, r.text) for r in outcome.responses] == [("ok", "River rose; herds moved.")]
    assert outcome.timeout_s > 2.5  # judged against the delivery window it used
