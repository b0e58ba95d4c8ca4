"""One claimed task out to miners and back: select, assign, fan out, record answers as they land.

The first valid answer is recorded the moment it arrives (the store marks it ``is_first`` and the
client sees it at once); the others are recorded as they complete, each only while the task is
still DISTRIBUTED (the store checks that in the write itself). When none of the chosen
miners answers validly the task goes once more to other miners; when those fail too it ends
FAILED with the reason. Otherwise it moves to DONE, ready for evaluation.

A miner may answer with an empty synapse and deliver its output later through the side-server's
miner-response endpoint (same store, keyed by task and hotkey); the delivered answer is the one that
counts, and the empty one is recorded as missing only if nothing was delivered by then. Where the
synapse offered a ``delivery_url`` (``--proxy.public_url``, or the side-server's own loopback URL
under ``--mock``) such a miner has ``--proxy.delivery_window`` task timeouts from dispatch to deliver
(long audio can take longer than a synapse may stay open); otherwise it has the timeout. A miner
offered delivery whose synapse *timed out* is waited for the same way: its clock starts when its
handler does, after the upload and the axon's checks, so an empty answer sent just before its own
deadline can reach us after ours; it still delivers, and its answer must not meet a task failed a
second earlier. (The cost: a miner that hangs keeps the task out until the window closes, as one
that answers empty and never delivers does; the client has the first answer meanwhile.) The wait
ends as soon as every such miner has delivered: the side-server writes deliveries through the same
``WatchedStore``, whose change feed wakes the wait at once (a re-read every ``--proxy.watch_poll_s``
is the backstop for deliveries taken by a separate ingestion process).

Answers are judged against the delivery window when one of them used it (a valid answer later than
any synapse could bring it), else against the timeout: ``judging_timeout``, the one rule this
validator applies to its own tasks, to a recovered task and to a peer's.
"""

from __future__ import annotations

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
from subnet_proxy.kinds import BadTaskInput, task_spec, task_timeout
from subnet_proxy.kinds.wire import NO_OUTPUT, build_synapse
from subnet_proxy.store.base import LeaseLost, TaskNotAccepting, TaskStore
from subnet_proxy.store.watched import until_changed, watched
from subnet_proxy.tasks import MinerResponse, Task, TaskStatus
from subnet_proxy.validator.codec import decode_result, delivery_endpoint
from subnet_proxy.validator.dendrite import FanoutDendrite
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.selection import select_miners

log = logging.getLogger(__name__)

#: rounds of miners a task is sent to: the first choice, then once more to others.
MAX_ROUNDS = 2
#: the statuses answers are recorded in.
_ACCEPTING = frozenset({TaskStatus.DISTRIBUTED})


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
    #: what the answers are judged against: the task timeout, or the delivery window when used.
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
        #: with its change feed: a miner's late delivery through the side-server wakes ``run`` at once.
        self.store = watched(store)
        self.blobs = blobs
        self.dendrite = dendrite
        self.selector = selector
        self.metagraph = metagraph
        self.claimer = claimer
        #: the ``delivery_url`` synapses offer; None: answers are taken on the synapse only.
        self.delivery_url = delivery_endpoint(settings.proxy.public_url)

    def offer_delivery(self, base_url: str | None) -> None:
        """Offer late delivery to the side-server at ``base_url`` from the next task on (its own URL
        under --mock, known once it listens); ValueError for a URL the protocol would refuse."""
        self.delivery_url = delivery_endpoint(base_url)

    def time_budget(self, task: Task) -> float:
        """The longest ``run`` can legitimately take: every round waiting out the longest window a
        miner may have (the delivery window). Past it the work is stuck, not slow."""
        timeout = task_timeout(task, self.settings.neuron.timeout)
        return MAX_ROUNDS * timeout * max(1.0, self.settings.proxy.delivery_window)

    def judging_timeout(self, task: Task, responses: Sequence[MinerResponse]) -> float:
        """What ``task``'s answers are judged against (by ``run``, a recovery sweep, a peer): the
        delivery window when a valid answer came later than a synapse can answer (it was delivered),
        else the timeout."""
        timeout = task_timeout(task, self.settings.neuron.timeout)
        if any(r.valid and r.latency_s is not None and r.latency_s > timeout for r in responses):
            return timeout * self.settings.proxy.delivery_window
        return timeout

    async def run(self, task: Task) -> DispatchOutcome:
        timeout = task_timeout(task, self.settings.neuron.timeout)
        try:
            synapse = await build_synapse(task, self.blobs, delivery_url=self.delivery_url)
        except BadTaskInput as exc:
            failed = await self.store.transition(task.task_id, TaskStatus.FAILED, reason="bad input",
                                                 error=("bad_input", str(exc)), claimer=self.claimer)
            return DispatchOutcome(failed, [], timeout)

        responses = await self.store.list_responses(task.task_id)  # a re-claimed task may have some
        answered = {r.hotkey for r in responses}
        tried = set(answered)
        # A re-claimed task: the miners its previous dispatcher asked but never heard back from (that
        # validator died or lost its lease) answered into the void; they are asked again first,
        # whatever else was recorded, so one early junk answer cannot end the task on its own.
        snapshot = self.metagraph()
        unheard = list({hotkey: neuron for _, hotkey in task.assigned
                        if hotkey not in answered and (neuron := snapshot.by_hotkey(hotkey)) is not None
                        and neuron.is_serving}.values())
        if unheard:
            tried.update(n.hotkey for n in unheard)
            await self._fan_out(task, synapse, unheard, timeout)
            responses = await self.store.list_responses(task.task_id)
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
        return DispatchOutcome(task, responses, self.judging_timeout(task, responses))

    async def _fan_out(self, task: Task, synapse: AudioSynapse, miners: Sequence[Neuron], timeout: float) -> None:
        """Query the miners; record each answer as it completes, and wait out the ones that may still
        deliver (answered empty, or timed out where delivery was offered)."""
        started = time.monotonic()
        offered = synapse.delivery_url is not None
        pending: list[MinerResponse] = []
        stream = self.dendrite.fanout(synapse, miners, timeout=timeout,
                                      max_output_bytes=task_spec(task.kind).max_output_bytes)
        async with aclosing(stream) as answers:
            async for result in answers:
                response = await decode_result(task, result, self.blobs)
                if response.message == NO_OUTPUT or (offered and response.state == "timeout"):
                    pending.append(response)
                    continue
                await self._record(response)
        if pending:
            window = timeout * self.settings.proxy.delivery_window if offered else timeout
            await self._await_deliveries(task, pending, started + window)

    async def _await_deliveries(self, task: Task, pending: list[MinerResponse], deadline: float) -> None:
        """Give miners that may still deliver until the deadline to do so through the side-server; stop
        waiting once every one of them has. Then their own answers (empty, timeout) are recorded for
        those that did not."""
        waiting = {r.hotkey for r in pending}
        backstop_s = self.settings.proxy.watch_poll_s  # deliveries taken by another process are not published
        while (delay := deadline - time.monotonic()) > 0:
            with self.store.events.watching(task.task_id) as changed:
                if waiting <= {r.hotkey for r in await self.store.list_responses(task.task_id)}:
                    break
                await until_changed(changed, min(backstop_s, delay))
        for response in pending:
            await self._record(response)  # a delivered answer is kept; this one is dropped

    async def _record(self, response: MinerResponse) -> None:
        """Record an answer only while the task is still out with miners (checked atomically with the
        write): a slow answer must not land on a task that another validator took over and finished
        (DONE, never scored for it) or that expired meanwhile. Such a task is no longer ours: LeaseLost."""
        try:
            await self.store.record_response(response, only_if=_ACCEPTING)
        except TaskNotAccepting as exc:
            raise LeaseLost(response.task_id, self.claimer) from exc


def _failure_reason(responses: Sequence[MinerResponse], tried: set[str]) -> str:
    if not tried:
        return "no serving miner to ask"
    counts: dict[str, int] = {}
    for r in responses:
        counts[r.state] = counts.get(r.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"none of {len(tried)} miners gave a valid answer ({summary or 'no answers'})"
