"""The dispatcher against a real axon on 127.0.0.1: a slow answer to a task another validator took over
and finished is dropped, not recorded on the finished task."""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import asyncio
from datetime import timedelta

import pytest

from protocol import SummarizationSynapse
from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.config import NeuronSettings, Settings
from subnet_proxy.outbound import OutboundPolicy
from subnet_proxy.store import LeaseLost, SQLiteTaskStore
from subnet_proxy.tasks import Task, TaskInput, TaskKind, TaskStatus, utcnow
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


async def test_a_late_answer_to_a_task_finished_elsewhere_is_dropped(tmp_path, wallet_factory):
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    dendrite = FanoutDendrite(wallet_factory("validator").hotkey, external_ip="127.0.0.1",
                              outbound=OutboundPolicy(allow_private=True))
    try:
        task = Task(kind=TaskKind.SUMMARIZATION, owner="client",
                    input=TaskInput(text="The river rose overnight. Farmers moved their herds.", max_words=10))
        await store.create_task(task)
        [task] = await store.claim_tasks("slow-validator", limit=1, lease_s=60)
        wallet = wallet_factory("miner")
        with running_axon(wallet, slow_summarizer) as port:
            miner = neuron(1, wallet.hotkey.ss58_address, port)
            settings = Settings(neuron=NeuronSettings(data_dir=str(tmp_path), timeout=5.0, sample_size=1))
            dispatcher = Dispatcher(settings, store, blobs, dendrite, OnlyMiner(miner),
                                    lambda: MetagraphSnapshot(netuid=1, block=1, neurons=(miner,)), "slow-validator")
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
    finally:
        await dendrite.close()
        await blobs.close()
        await store.close()
