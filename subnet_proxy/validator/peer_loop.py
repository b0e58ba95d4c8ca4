"""The peer evaluation loop: judge the done tasks of the other validators, as they judge this one's.

Each round visits every peer of the ``PeerDirectory`` in turn, within its own time budget
(``--proxy.peer_budget_s``): it pages through the peer's done tasks (the signed listing, by cursor),
fetches each unseen task's audio through the signed blob endpoint (checked against its content
key, kept in memory for the one task), scores the answers with this validator's own engines (the
same ``kinds.score_task`` as its own tasks, with no ground truth: a peer never reveals which tasks
are its checks), posts the signed evaluation, and lets the ScoreBook learn from the rewards, so
validators see more of every miner and their weights converge.

Own tasks first: peers' tasks are scored one at a time, and a visit ends as soon as this
validator's own evaluations are waiting (``busy``). A peer that answers 429 or 5xx, or cannot be
reached, or refuses the listing (its metagraph may not show this validator yet), is left alone for a
growing pause (its ``Retry-After`` when longer); a peer that is slow
costs its budget and no more. A task judged (or refused for good: already evaluated, closed) is
not fetched again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from subnet_proxy.api.schemas import EvaluationRequest, ValidatorTask
from subnet_proxy.blobs.base import BlobNotFound, BlobRef, BlobStore
from subnet_proxy.tasks import MinerResponse, Task, TaskInput, TaskStatus
from subnet_proxy.validator.evaluation import Evaluator, Scorer
from subnet_proxy.validator.loop_runner import LoopRunner
from subnet_proxy.validator.peer_client import PeerClient, PeerError
from subnet_proxy.validator.peers import Peer, PeerDirectory

log = logging.getLogger(__name__)

#: task ids remembered as judged (oldest forgotten first); a forgotten one costs a 409 at most.
SEEN_LIMIT = 50_000
#: first pause after a peer fails; doubled per failure in a row, up to the max.
BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0


class PeerBlobs(BlobStore):
    """One peer task's audio, fetched and verified, for the reward functions (read-only, in memory)."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self._blobs = blobs

    async def get(self, key: str) -> bytes:
        if key not in self._blobs:
            raise BlobNotFound(key)
        return self._blobs[key]

    async def stat(self, key: str) -> BlobRef | None:
        data = self._blobs.get(key)
        return None if data is None else BlobRef(key, len(data), "application/octet-stream")

    async def stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        yield await self.get(key)

    async def put(self, data: bytes, *, content_type: str) -> BlobRef:
        raise NotImplementedError("a peer's blobs are read-only")

    async def delete(self, key: str) -> bool:
        raise NotImplementedError("a peer's blobs are read-only")

    async def signed_url(self, key: str, *, expires_s: int) -> str | None:
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _key(url: str | None) -> str | None:
    return url.rsplit("/", 1)[-1] if url else None


def task_of(view: ValidatorTask, owner: str) -> tuple[Task, list[MinerResponse]]:
    """The listing's task as this validator's models (blob keys from the audio URLs, no ground truth)."""
    i = view.input
    task = Task(task_id=view.task_id, kind=view.kind, status=TaskStatus.DONE, owner=owner, created_at=view.created_at,
                input=TaskInput(audio_blob=_key(i.audio_url), audio_format=i.audio_format,
                                audio_seconds=i.audio_seconds, language=i.language, text=i.text, voice=i.voice,
                                max_words=i.max_words))
    responses = [MinerResponse(task_id=view.task_id, hotkey=r.hotkey, uid=r.uid, state=r.state,
                               latency_s=r.latency_s, text=r.text, segments=r.segments, output_blob=_key(r.audio_url),
                               output_format=r.audio_format, output_sample_rate=r.audio_sample_rate)
                 for r in view.responses]
    return task, responses


@dataclass
class _Backoff:
    until: float = 0.0
    delay: float = 0.0


class PeerEvaluationLoop(LoopRunner):
    """See the module docstring. ``scorer_for`` builds the scorer over a task's fetched blobs;
    ``judging_timeout`` is the timeout its answers are judged against (``Dispatcher.judging_timeout``)."""

    name = "peers"

    def __init__(self, directory: PeerDirectory, client: PeerClient, evaluator: Evaluator, *,
                 scorer_for: Callable[[BlobStore], Scorer],
                 judging_timeout: Callable[[Task, Sequence[MinerResponse]], float],
                 busy: Callable[[], bool], interval_s: float, budget_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval_s=interval_s)
        self.directory = directory
        self.client = client
        self.evaluator = evaluator
        self.scorer_for = scorer_for
        self.judging_timeout = judging_timeout
        self.busy = busy
        self.budget_s = budget_s
        self.clock = clock
        self.evaluated = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._backoff: dict[str, _Backoff] = {}

    def reachable(self) -> tuple[int, int]:
        """(peers known, peers not backed off now): what health shows of the network."""
        now = self.clock()
        peers = list(self.directory.peers)
        backed_off = sum(1 for p in peers if (s := self._backoff.get(p.hotkey)) is not None and now < s.until)
        return len(peers), len(peers) - backed_off

    async def run_step(self) -> None:
        for peer in list(self.directory.peers):
            if self.stopping or self.busy():
                return
            state = self._backoff.setdefault(peer.hotkey, _Backoff())
            if self.clock() < state.until:
                continue
            try:
                async with asyncio.timeout(self.budget_s):
                    await self._visit(peer)
                state.delay = 0.0
            except TimeoutError:
                log.info("peers: %s used its %.0f s budget; the rest waits for the next round", peer.url,
                         self.budget_s)
            except PeerError as exc:  # down, overloaded, or refusing us (its metagraph may not show us yet)
                state.delay = min(max(BACKOFF_S, state.delay * 2), MAX_BACKOFF_S)
                pause = max(state.delay, min(exc.retry_after or 0.0, MAX_BACKOFF_S))
                state.until = self.clock() + pause
                log.warning("peers: %s left alone for %.0f s: %s", peer.url, pause, exc)

    async def _visit(self, peer: Peer) -> None:
        cursor: str | None = None
        while True:
            page = await self.client.tasks(peer, cursor)
            for view in page.tasks:
                if view.task_id in self._seen:
                    continue
                if self.stopping or self.busy():
                    return
                try:
                    await self._judge(peer, view)
                except PeerError as exc:
                    if exc.back_off:
                        raise
                    self._remember(view.task_id)  # a broken listing or blob: this task is not judged here
                    log.warning("peers: %s task %s not judged: %s", peer.url, view.task_id, exc)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _judge(self, peer: Peer, view: ValidatorTask) -> None:
        task, responses = task_of(view, owner=f"peer:{peer.hotkey}")
        if not responses:
            self._remember(task.task_id)
            return
        urls = [u for u in (view.input.audio_url, *(r.audio_url for r in view.responses)) if u]
        blobs: dict[str, bytes] = {}
        for url in urls:
            blobs[url.rsplit("/", 1)[-1]] = await self.client.blob(peer, url)
        timeout_s = self.judging_timeout(task, responses)
        rewards = await self.scorer_for(PeerBlobs(blobs)).score(task, responses, timeout_s=timeout_s)
        try:
            await self.client.evaluate(peer, EvaluationRequest(task_id=task.task_id, rewards=rewards))
        except PeerError as exc:
            if exc.back_off:
                raise
            self._remember(task.task_id)  # evaluated before, closed, or refused: it will not change
            log.info("peers: %s refused the evaluation of %s: %s", peer.url, task.task_id, exc)
            return
        self._remember(task.task_id)
        self.evaluated += 1
        await self.evaluator.learn(task, responses, rewards)

    def _remember(self, task_id: str) -> None:
        self._seen[task_id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
