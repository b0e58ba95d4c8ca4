"""The validator: the loops wired together over a chain, a task store, a blob store and scoring.

Built from ready parts (the entry point opens them from Settings; tests pass their own), so the
same object runs on the local chain and on a real subtensor. ``start`` syncs the metagraph once
before any task is taken, then starts the loops: forward (tasks), resync (metagraph), weights (each
epoch), retention, recovery (done tasks left unjudged: its first sweep, at once, evaluates what a
previous run left DONE, alongside intake, so a backlog of them never holds the start back),
synthetic challenges, the approval grace, and peers (their done tasks judged: ``peer_loop``).
``stop`` ends intake, lets in-flight tasks finish or releases them, and saves the scores.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path

from bittensor_wallet import Keypair

from subnet_proxy.blobs.base import BlobStore
from subnet_proxy.chain import Chain, ChainError, MetagraphSnapshot
from subnet_proxy.config import Settings
from subnet_proxy.engines import Engines
from subnet_proxy.kinds.challenges import Corpus
from subnet_proxy.monitoring.task_metrics import TaskMetrics
from subnet_proxy.outbound import OutboundHTTP, OutboundPolicy
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.store.base import TaskStore
from subnet_proxy.tasks import MinerStat
from subnet_proxy.telemetry import Telemetry
from subnet_proxy.validator.dendrite import DEFAULT_MAX_PER_AXON, FanoutDendrite
from subnet_proxy.validator.dispatch import Dispatcher, ScoredSelector
from subnet_proxy.validator.evaluation import Evaluator, Scorer, TelemetryObserver, TimedScorer
from subnet_proxy.validator.forward import ForwardLoop
from subnet_proxy.validator.loop_runner import LoopRunner
from subnet_proxy.validator.loops import (
    GraceLoop,
    MetagraphView,
    RecoveryLoop,
    ResyncLoop,
    RetentionLoop,
    WeightsLoop,
)
from subnet_proxy.validator.monitor import ValidatorMonitor
from subnet_proxy.validator.peer_client import PeerClient
from subnet_proxy.validator.peer_loop import PeerEvaluationLoop
from subnet_proxy.validator.peers import PeerDirectory
from subnet_proxy.validator.scores import ScoreBook
from subnet_proxy.validator.synthetic import SyntheticLoop
from subnet_proxy.validator.weights import WeightSetter
from subnet_proxy.waits import wait_set

log = logging.getLogger(__name__)


#: first pause before the start reads the metagraph again; doubled per failure up to the max.
START_RETRY_S = 1.0
MAX_START_RETRY_S = 60.0
#: a peer's listing and blobs may carry up to its upload bound, base64 and JSON framing included.
PEER_BODY_FACTOR = 1.4


def scores_path(settings: Settings) -> Path:
    return settings.data_dir / "scores" / f"netuid-{settings.netuid}.json"


class Validator:
    """One validator process's loops; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        keypair: Keypair,
        chain: Chain,
        store: TaskStore,
        blobs: BlobStore,
        scorer: Scorer,
        peer_scorer: Callable[[BlobStore], Scorer] | None = None,
        engines: Engines | None = None,
        external_ip: str = "127.0.0.1",
        telemetry: Telemetry | None = None,
        rng: random.Random | None = None,
        metrics: TaskMetrics | None = None,
        ingest: IngestActivity | None = None,
    ) -> None:
        neuron = settings.neuron
        self.settings = settings
        self.hotkey = keypair.ss58_address
        self.chain = chain
        self.store = store
        self.scores = ScoreBook.restore(scores_path(settings), alpha=neuron.moving_average_alpha)
        self.metagraph = MetagraphView(MetagraphSnapshot(netuid=settings.netuid, block=0, neurons=()))
        # Every task in flight may be talking to the same miner at once: one connection each.
        local = settings.mock.enabled  # a loopback subnet: axons on 127.0.0.1 are expected
        self.dendrite = FanoutDendrite(keypair, external_ip=external_ip,
                                       max_per_axon=max(DEFAULT_MAX_PER_AXON, neuron.concurrency),
                                       outbound=OutboundPolicy(allow_private=local))
        rng = rng or random.Random()
        self.dispatcher = Dispatcher(settings, store, blobs, self.dendrite,
                                     ScoredSelector(self.scores, self.hotkey, rng), self.metagraph, claimer=self.hotkey)
        #: the lifecycle metrics: fed by the store when it is the ``MeteredStore`` made with them (run.py).
        self.metrics = metrics or TaskMetrics()
        outbound = OutboundPolicy(allow_private=local)
        self.directory = PeerDirectory(chain, own_hotkey=self.hotkey, own_url=settings.proxy.public_url,
                                       policy=outbound)
        self.evaluator = Evaluator(store, TimedScorer(scorer, self.metrics), self.scores, self.metagraph,
                                   validator_hotkey=self.hotkey, quorum=settings.proxy.quorum,
                                   members=self.quorum_members,
                                   observers=[TelemetryObserver(telemetry, self.scores)] if telemetry else [])
        self.synthetic: SyntheticLoop | None = None
        if engines is not None and neuron.synthetic_rate > 0:
            self.synthetic = SyntheticLoop(store, blobs, engines, owner=f"synthetic:{self.hotkey}",
                                           rate=neuron.synthetic_rate, idle_s=neuron.synthetic_idle_s,
                                           ttl_s=settings.proxy.task_ttl_s, rng=rng,
                                           corpus=Corpus.load(neuron.challenge_corpus), ingest=ingest)
        self.forward = ForwardLoop(
            store, self.dispatcher, self.evaluator, claimer=self.hotkey, concurrency=neuron.concurrency,
            lease_s=neuron.lease_s, grace_s=neuron.shutdown_grace_s,
            on_dispatched=self.synthetic.note_task if self.synthetic else None,
            ingest=ingest, yield_s=neuron.yield_to_ingest_s,
        )
        block_s = settings.mock.block_time_s if settings.mock.enabled else 12.0
        self.resync = ResyncLoop(chain, self.metagraph, self.scores, interval_s=neuron.resync_s,
                                 public_axons_only=not local,
                                 directory=self.directory if settings.proxy.peers else None)
        self.weights = WeightsLoop(
            WeightSetter(chain, self.scores, own_hotkey=self.hotkey, epoch_length=neuron.epoch_length),
            self.metagraph, self.scores, interval_s=block_s, telemetry=telemetry,
        )
        self.retention = RetentionLoop(store, blobs, settings.retention)
        self.recovery = RecoveryLoop(self.forward, interval_s=neuron.recover_s)
        self.grace = GraceLoop(store, self.metagraph, quorum=settings.proxy.quorum,
                               grace_s=settings.proxy.approval_grace_s)
        self._background: list[LoopRunner] = [self.resync, self.weights, self.retention, self.recovery, self.grace]
        if self.synthetic is not None:
            self._background.append(self.synthetic)
        self.peer_http = OutboundHTTP(outbound)
        self.peer_loop: PeerEvaluationLoop | None = None
        if peer_scorer is not None and settings.proxy.peers:
            client = PeerClient(keypair, self.peer_http, timeout_s=settings.proxy.peer_budget_s,
                                max_blob_bytes=int(settings.proxy.max_upload_mb * 1024 * 1024 * PEER_BODY_FACTOR))
            self.peer_loop = PeerEvaluationLoop(
                self.directory, client, self.evaluator, scorer_for=peer_scorer,
                judging_timeout=self.dispatcher.judging_timeout,
                busy=lambda: self.forward.scoring_backlog >= neuron.concurrency,
                interval_s=settings.proxy.peer_poll_s, budget_s=settings.proxy.peer_budget_s)
            self._background.append(self.peer_loop)
        #: what the side-server shows of these loops (health, metrics, dashboard).
        self.monitor = ValidatorMonitor(settings, forward=self.forward, resync=self.resync, setter=self.weights.setter,
                                        background=self._background, metagraph=self.metagraph, own_hotkey=self.hotkey,
                                        metrics=self.metrics, engines=engines, peers=self.peer_loop)
        self.evaluator.observers.append(self.monitor.kind_scores)

    def quorum_members(self) -> frozenset[str] | None:
        """The validators a quorum counts (``approval``): this one and its peers; every permitted one
        on a shared store (``--store.shared``), where validators take part without publishing anything."""
        return None if self.settings.store.is_shared else self.directory.members

    async def serve_peers(self, url: str) -> None:
        """Publish ``url`` (the side-server's, when no --proxy.public_url is set) now, not at the next resync."""
        if not self.settings.proxy.peers:
            return
        if self.directory.own_url is None:
            self.directory.own_url = url
        await self.directory.refresh(self.metagraph())

    def miner_stats(self) -> list[MinerStat]:
        """The public miners listing (``GET /api/v1/miners``)."""
        return self.scores.stats()

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Start the loops once a first metagraph is in (tasks need miners to go to). A chain that
        cannot be read yet is retried with a growing pause, never fatal (a node restarting must
        not end the validator); ``stop`` ends the wait. False when stopped before starting."""
        delay = START_RETRY_S
        while True:
            try:
                await self.resync.run_step()  # a metagraph before the first task, and scores that follow it
                break
            except ChainError as exc:
                log.error("cannot read the metagraph yet, retrying in %.0f s: %s", delay, exc)
            if stop is None:
                await asyncio.sleep(delay)
            else:
                if await wait_set(stop, delay):
                    return False
            delay = min(delay * 2, MAX_START_RETRY_S)
        if self.metagraph().by_hotkey(self.hotkey) is None:
            log.warning("validator hotkey %s is not registered on netuid %d: tasks are served, weights are not set",
                        self.hotkey, self.settings.netuid)
        self.forward.start()
        for loop in self._background:
            loop.start()
        log.info("validator %s running: %d uids, sample size %d, concurrency %d", self.hotkey,
                 self.metagraph().n, self.settings.neuron.sample_size, self.settings.neuron.concurrency)
        return True

    async def stop(self) -> None:
        """Stop intake, finish or release in-flight tasks, stop the loops, save the scores."""
        await self.forward.stop()
        for loop in self._background:
            await loop.stop()
        await self.scores.persist()
        await self.dendrite.close()
        await self.peer_http.close()
        log.info("validator stopped; scores saved to %s", self.scores.path)
