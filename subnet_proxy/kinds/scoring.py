"""The scoring entry point for the validator loop: build the kind's references with the engines, then judge.

``score_task`` is the only impure step of scoring: it reads blobs and runs models (in the
engines' worker pool, off the event loop), then calls the task kind's pure reward function
(``KindSpec.reward``), in that pool too: WER/CER consensus over long transcripts and stemmed ROUGE
are tens to hundreds of milliseconds of CPU per task, which on the event loop would stall every
dispatch.
A reward never depends on anything a miner reported about itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.kinds.registry import task_spec
from subnet_proxy.rewards.references import ScoringEngines
from subnet_proxy.tasks import MinerResponse, MinerReward, Task


async def score_task(task: Task, responses: Sequence[MinerResponse], ground_truth: str | None,
                     engines: ScoringEngines, *, blobs: BlobStore, timeout_s: float) -> list[MinerReward]:
    """One ``MinerReward`` per response, in the same order.

    ``ground_truth`` is the synthetic task's known answer (``task.ground_truth``) or None for a
    client task; ``timeout_s`` is the dendrite timeout the task was sent with
    (``registry.task_timeout``); ``blobs`` holds the task's input audio and the miners' audio outputs.
    """
    foreign = [r.hotkey for r in responses if r.task_id != task.task_id]
    if foreign:
        raise ValueError(f"responses of another task given to task {task.task_id}: {foreign}")
    if not responses:
        return []
    spec = task_spec(task.kind)
    references = await spec.references(task, responses, ground_truth, engines, blobs)
    return await engines.engines.pool.run(spec.reward, task, ground_truth, responses, references, timeout_s=timeout_s)
