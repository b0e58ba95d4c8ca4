"""Issue 12, part 1: a client text of 100-3,000 words without ``max_words`` is approved with the reference
miner's summary, because validator, miner and reward use one bound (``protocol.summary_word_bound``).

Three reference miners (the real ``MinerService`` on the real LexRank engine) behind real axons, the
real validator loop and scoring. Before the bound was one rule, a 228-word text ended FAILED
``no_acceptable_response``: the miners wrote 40% of the source, the reward allowed 25%.
"""
# No "from __future__ import annotations": bt.Axon.attach inspects real annotation objects.

import typing

import pytest

from protocol import SummarizationSynapse, summary_word_bound, summary_words
from subnet_proxy.miner import AdmissionPolicy, MetagraphView, MinerLimits, MinerService
from subnet_proxy.tasks import Task, TaskInput, TaskKind, TaskStatus
from tests.prose import ALL, ANTHOLOGY

pytestmark = pytest.mark.slow

TEXTS = {p.name: p.text for p in ALL} | {"anthology": ANTHOLOGY}


def reference_miner(service: MinerService, seen: list) -> typing.Callable:
    async def forward(synapse: SummarizationSynapse) -> SummarizationSynapse:
        seen.append(synapse.max_words)
        return await service.summarize(synapse)

    return forward


async def test_client_texts_without_a_bound_are_approved_with_the_reference_summary(harness, engines) -> None:
    service = MinerService(engines, MetagraphView(harness.chain.snapshot_sync()), AdmissionPolicy(), MinerLimits())
    seen: list = []
    for i in range(3):
        await harness.add_miner(f"reference{i}", reference_miner(service, seen))
    await harness.validator(sample_size=3, timeout=12.0)
    for name, text in TEXTS.items():
        assert 100 <= summary_words(text) <= 3_000
        task, _ = await harness.store.create_task(Task(kind=TaskKind.SUMMARIZATION, owner="client",
                                                       input=TaskInput(text=text)))
        done = await harness.wait_status(task.task_id, TaskStatus.APPROVED, TaskStatus.FAILED, timeout=60.0)
        assert done.status is TaskStatus.APPROVED, (name, done.error)
        result = await harness.store.get_final_result(task.task_id)
        bound = summary_word_bound(text, None)
        assert result is not None and result.text and summary_words(result.text) <= bound, name
        assert result.text == await engines.summarize(text, bound), name
        assert result.score > 0.8, (name, result.score)
    assert set(seen) == {summary_word_bound(t, None) for t in TEXTS.values()}  # the bound travelled every time
