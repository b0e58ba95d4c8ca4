"""Synthetic challenges: validator-made tasks with known answers, sent through the very same path.

They enter the task store like a client's task (same claim, same miners, same scoring), so a
miner cannot tell them apart, and the miner's score then rests on checkable truth. The pace:
every client task earns ``synthetic_rate`` of a challenge (0.1: one challenge per ten client
tasks), and a validator without client traffic still issues one every ``synthetic_idle_s`` so
its scores and weights keep moving. ``synthetic_rate`` 0 turns them off. The credit is capped at
``MAX_CREDIT`` challenges: a flood of 10,000 client tasks (or a backlog the loop tears through
because no miner serves) earns a few challenges, not a thousand issued for a quarter of an hour
after it, each seconds of engine work beside the clients' own scoring.

A challenge gets a deadline ``ttl_s`` away, like a client task (``--proxy.task_ttl_s``): one that
can never finish (no serving miner, a quorum that never comes, an input that keeps failing) is
expired by retention and later purged, instead of staying in the store for ever.

Making a challenge is engine work (speech synthesised for a transcription challenge, reference
answers), background work that must not take CPU from clients handing tasks over: while the
side-server in the same process has uploads in flight (``server.activity``) a due challenge waits
for a quiet moment, for at most ``idle_s``; its credit is kept, so the challenges a burst earned are
issued after it (measured in ``scripts/bench_ingest.py``: a challenge a second under a flood of
submissions cost the validator about half its CPU per submission).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from protocol import mime_type
from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.engines import Engines
from subnet_proxy.kinds import pick_challenge_kind, task_spec
from subnet_proxy.kinds.challenges import Corpus
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import Task, utcnow
from subnet_proxy.validator.loop_runner import LoopRunner

log = logging.getLogger(__name__)

#: how often the loop looks at its credit (a challenge is never due more often than this).
CHECK_INTERVAL_S = 1.0
#: challenges' worth of credit kept at most (see the module's docstring).
MAX_CREDIT = 3.0


class SyntheticLoop(LoopRunner):
    name = "synthetic"

    def __init__(
        self,
        store: TaskStore,
        blobs: BlobStore,
        engines: Engines,
        *,
        owner: str,
        rate: float,
        idle_s: float,
        ttl_s: float,
        corpus: Corpus | None = None,
        rng: random.Random | None = None,
        ingest: IngestActivity | None = None,
    ) -> None:
        super().__init__(interval_s=CHECK_INTERVAL_S)
        self.store = store
        self.blobs = blobs
        self.engines = engines
        self.owner = owner
        self.rate = rate
        self.idle_s = idle_s
        self.ttl_s = ttl_s
        self.corpus = corpus or Corpus.load()
        self.rng = rng or random.Random()
        self.ingest = ingest
        #: ``time.monotonic()`` since when a due challenge has waited for the uploads to stop.
        self._deferred_since: float | None = None
        self.issued = 0
        self._credit = 0.0
        self._last_activity = time.monotonic()

    def note_task(self, task: Task) -> None:
        """Called for every task the forward loop dispatches: client tasks earn challenge credit."""
        if not task.synthetic:
            self._credit = min(MAX_CREDIT, self._credit + self.rate)
            self._last_activity = time.monotonic()

    @property
    def due(self) -> bool:
        if self.rate <= 0:
            return False
        return self._credit >= 1.0 or time.monotonic() - self._last_activity >= self.idle_s

    async def run_step(self) -> None:
        if not self.due or not await self._uploads_allow():
            return
        self._credit = max(0.0, self._credit - 1.0)
        self._last_activity = time.monotonic()
        await self.issue()

    async def _uploads_allow(self) -> bool:
        """Whether a due challenge may be made now: no upload in flight (waiting for a quiet moment up
        to a check interval), or it has waited ``idle_s`` already."""
        if self.ingest is None or await self.ingest.quiet(CHECK_INTERVAL_S):
            self._deferred_since = None
            return True
        now = time.monotonic()
        if self._deferred_since is None:
            self._deferred_since = now
        if now - self._deferred_since < self.idle_s:
            return False
        self._deferred_since = None
        return True

    async def issue(self) -> Task:
        """Make one challenge of a randomly drawn kind and queue it like a client task."""
        kind = pick_challenge_kind(self.rng)
        challenge = await task_spec(kind).challenge(self.engines, self.corpus, self.rng, owner=self.owner)
        content_type = mime_type(challenge.task.input.audio_format or "wav")
        for data in challenge.blobs.values():
            await self.blobs.put(data, content_type=content_type)
        deadline = utcnow() + timedelta(seconds=self.ttl_s)
        task, _ = await self.store.create_task(challenge.task.model_copy(update={"deadline": deadline}))
        self.issued += 1
        log.debug("synthetic %s challenge %s queued", kind, task.task_id)
        return task
