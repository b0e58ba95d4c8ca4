"""One claimed task out to miners and back: select, assign, fan out, record answers as they land.

The first valid answer is recorded the moment it arrives (the store marks it ``is_first`` and the
client sees it at once); the others are recorded as they complete. When none of the chosen
miners answers validly the task goes once more to other miners; when those fail too it ends
FAILED with the reason. Otherwise it moves to DONE, ready for evaluation.

A miner may answer with an empty synapse and deliver its output later through the side-server's
miner-response endpoint (same store, keyed by task and hotkey); such a miner is given until the
timeout before its answer is recorded as missing, so the delivered one is the one that counts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from protocol import AudioSynapse
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain import MetagraphSnapshot, Neuron
from subnet_proxy.config import Settings
from subnet_proxy.rewards.registry import task_timeout
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import MinerResponse, Task, TaskStatus
from subnet_proxy.validator.codec import (
    BadTaskInput,
    build_synapse,
    decode_result,
    max_output_bytes,
    stored_response,
)
from subnet_proxy.validator.dendrite import FanoutDendrite
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.selection import select_miners

log = logging.getLogger(__name__)

#: rounds of miners a task is sent to: the first choice, then once more to others.
MAX_ROUNDS = 2
_NO_OUTPUT = "answer carries no output"


class MinerSelector(Protocol):
    def select(self, snapshot: MetagraphSnapshot, k: int, *, exclude: set[str]) -> list[Neuron]:
        """Up to ``k`` serving miners to query, none of whose hotkeys is in ``exclude``."""
        ...


class ScoredSelector:
    """``selection.select_miners`` over the ScoreBook's statistics, skipping miners already tried."""

    def __init__(self, scores: ScoreBook, own_hotkey: str, rng: random.Random | None = None) -> None:
        self.scores = scores
        self.own_hotkey = own_hotkey
        self.rng = rng or random.Random()

    def select(self, snapshot: MetagraphSnapshot, k: int, *, exclude: set[str]) -> list[Neuron]:
        drawn = select_miners(snapshot, self.scores.stats(), self.own_hotkey, k, self.rng)
        order = (snapshot.by_uid(uid) for uid in (*drawn.uids, *drawn.fallback))
        return [n for n in order if n is not None and n.hotkey not in exclude][:k]


@dataclass(frozen=True, slots=True)
class DispatchOutcome:
    task: Task
    responses: list[MinerResponse]
    timeout_s: float


class Dispatcher:
    """Sends one task to its miners; see the module docstring for the rules."""

    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        blobs: BlobStore,
        dendrite: FanoutDendrite,
        selector: MinerSelector,
        metagraph: Callable[[], MetagraphSnapshot],
        claimer: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.dendrite = dendrite
        self.selector = selector
        self.metagraph = metagraph
        self.claimer = claimer

    async def run(self, task: Task) -> DispatchOutcome:
        timeout = task_timeout(task, self.settings.neuron.timeout)
        try:
            synapse = await build_synapse(task, self.blobs)
        except BadTaskInput as exc:
            failed = await self.store.transition(task.task_id, TaskStatus.FAILED, reason="bad input",
                                                 error=("bad_input", str(exc)), claimer=self.claimer)
            return DispatchOutcome(failed, [], timeout)

        responses = await self.store.list_responses(task.task_id)  # a re-claimed task may have some
        answered = {r.hotkey for r in responses}
        tried = set(answered)
        for _ in range(MAX_ROUNDS):
            if any(r.valid for r in responses):
                break
            miners = self.selector.select(self.metagraph(), self.settings.neuron.sample_size, exclude=tried)
            if not miners:
                break
            tried.update(m.hotkey for m in miners)
            task = await self.store.assign_miners(task.task_id, self.claimer, [(m.uid, m.hotkey) for m in miners])
            await self._fan_out(task, synapse, miners, timeout)
            responses = await self.store.list_responses(task.task_id)

        if any(r.valid for r in responses):
            task = await self.store.transition(task.task_id, TaskStatus.DONE, reason="answered", claimer=self.claimer)
        else:
            task = await self.store.transition(task.task_id, TaskStatus.FAILED, reason="no valid answer",
                                               error=("no_valid_response", _failure_reason(responses, tried)),
                                               claimer=self.claimer)
        return DispatchOutcome(task, responses, timeout)

    async def _fan_out(self, task: Task, synapse: AudioSynapse, miners: Sequence[Neuron], timeout: float) -> None:
        """Query the miners; record each answer as it completes."""
        started = time.monotonic()
        empty: list[MinerResponse] = []
        stream = self.dendrite.fanout(synapse, miners, timeout=timeout,
                                      max_output_bytes=max_output_bytes(task.kind))
        async with aclosing(stream) as answers:
            async for result in answers:
                decoded = decode_result(task, result)
                if decoded.response.message == _NO_OUTPUT:
                    empty.append(decoded.response)
                    continue
                await self.store.record_response(await stored_response(decoded, self.blobs))
        if empty:
            await self._await_deliveries(task, empty, started + timeout)

    async def _await_deliveries(self, task: Task, empty: list[MinerResponse], deadline: float) -> None:
        """Give miners that answered empty until the deadline to deliver through the side-server."""
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        for response in empty:
            await self.store.record_response(response)  # a delivered answer is kept; this one is dropped


def _failure_reason(responses: Sequence[MinerResponse], tried: set[str]) -> str:
    if not tried:
        return "no serving miner to ask"
    counts: dict[str, int] = {}
    for r in responses:
        counts[r.state] = counts.get(r.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"none of {len(tried)} miners gave a valid answer ({summary or 'no answers'})"
