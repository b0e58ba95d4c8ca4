"""Synthetic challenges: their pace, and that they enter the store exactly like client tasks."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from protocol import decode_audio
from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.server.activity import IngestActivity
from subnet_proxy.store import SQLiteTaskStore
from subnet_proxy.tasks import Task, TaskInput, TaskKind, TaskStatus
from subnet_proxy.validator.synthetic import MAX_CREDIT, SyntheticLoop

SEED = 2
#: challenges drawn at most until every kind has come up (weights 0.4/0.3/0.3: 15 draws miss one about 1% of seeds).
MAX_CHALLENGES = 15




@pytest.fixture
async def parts(tmp_path):
    store = SQLiteTaskStore(tmp_path / "tasks.db")
    blobs = LocalBlobStore(tmp_path / "blobs")
    yield store, blobs
    await store.close()
    await blobs.close()


def client_task() -> Task:
    return Task(kind=TaskKind.SUMMARIZATION, owner="client", input=TaskInput(text="Some text to summarize."))


def loop(parts, engines, *, rate: float, idle_s: float = 3600.0, seed: int = 1, ttl_s: float = 3600.0,
         ingest: IngestActivity | None = None) -> SyntheticLoop:
    store, blobs = parts
    return SyntheticLoop(store, blobs, engines, owner="synthetic:5Validator", rate=rate, idle_s=idle_s,
                         ttl_s=ttl_s, rng=random.Random(seed), ingest=ingest)


async def test_client_traffic_earns_challenges_at_the_rate(parts, engines):
    synthetic = loop(parts, engines, rate=0.5)
    assert not synthetic.due
    synthetic.note_task(client_task())
    assert not synthetic.due
    synthetic.note_task(client_task().model_copy(update={"synthetic": True}))  # challenges earn nothing
    assert not synthetic.due
    synthetic.note_task(client_task())
    assert synthetic.due


async def test_a_flood_of_client_tasks_earns_a_few_challenges_not_a_backlog(parts, engines, monkeypatch):
    synthetic = loop(parts, engines, rate=0.5)
    issued = []

    async def issue() -> None:
        issued.append(1)

    monkeypatch.setattr(synthetic, "issue", issue)
    for _ in range(1_000):  # 500 challenges' worth at the rate
        synthetic.note_task(client_task())
    while synthetic.due:
        await synthetic.run_step()
    assert len(issued) == int(MAX_CREDIT)


async def test_an_idle_validator_still_issues_one_per_idle_period(parts, engines):
    synthetic = loop(parts, engines, rate=0.1, idle_s=0.01)
    await asyncio.sleep(0.02)
    assert synthetic.due
    assert not loop(parts, engines, rate=0.0, idle_s=0.01).due  # rate 0: never


@pytest.mark.slow
async def test_challenges_of_every_kind_are_stored_like_client_tasks(parts, engines):
    store, blobs = parts
    synthetic = loop(parts, engines, rate=1.0, seed=SEED)
    kinds: Counter[TaskKind] = Counter()
    while set(kinds) != set(TaskKind) and sum(kinds.values()) < MAX_CHALLENGES:
        task = await synthetic.issue()
        stored = await store.get_task(task.task_id)
        kinds[stored.kind] += 1
        assert stored.status is TaskStatus.PENDING and stored.synthetic
        assert stored.owner == "synthetic:5Validator"
        if stored.kind is TaskKind.TRANSCRIPTION:
            audio = decode_audio(await blobs.get(stored.input.audio_blob or ""))
            assert audio.duration_s > 0.5 and stored.ground_truth
        elif stored.kind is TaskKind.TTS:
            assert stored.ground_truth == stored.input.text
        else:
            assert stored.input.text  # the bound named or left to the default rule, as a client may
    assert set(kinds) == set(TaskKind)
    claimed = await store.claim_tasks("validator", limit=MAX_CHALLENGES, lease_s=5)
    assert len(claimed) == sum(kinds.values())  # the same queue, the same claim as client tasks


async def test_a_challenge_has_a_deadline_so_one_that_never_finishes_is_expired(parts, engines):
    """Without a deadline a challenge nobody can finish (no serving miner, no quorum) stays for ever:
    retention expires only tasks that have one."""
    store, _ = parts
    synthetic = loop(parts, engines, rate=1.0, seed=SEED, ttl_s=0.2)
    task = await synthetic.issue()
    stored = await store.get_task(task.task_id)
    assert stored.deadline is not None and stored.deadline > stored.created_at
    await asyncio.sleep(0.3)
    assert await store.expire_overdue() == [task.task_id]
    expired = await store.get_task(task.task_id)
    assert expired.status is TaskStatus.EXPIRED and expired.error is not None and expired.error.code == "deadline"


@pytest.mark.slow
async def test_the_challenge_corpus_flag_feeds_the_validators_challenges(harness, engines, tmp_path) -> None:
    """--neuron.challenge_corpus: a private corpus replaces the shipped one; a bad file stops the start."""
    from subnet_proxy.kinds.challenges import CorpusError
    from subnet_proxy.validator.evaluation import EngineScorer
    from subnet_proxy.validator.neuron import Validator
    from tests.conftest import make_wallet

    sentences = ("The vault opens at nine sharp.", "Only two keys exist for the vault.")
    private = tmp_path / "private.txt"
    private.write_text("## vault\n" + "\n".join(sentences) + "\n")
    wallet = make_wallet(tmp_path / "wallets", "validator")

    def build(corpus: str) -> Validator:
        return Validator(harness.settings(synthetic_rate=0.5, challenge_corpus=corpus), keypair=wallet.hotkey,
                         chain=harness.chain, store=harness.store, blobs=harness.blobs,
                         scorer=EngineScorer(harness.scoring, harness.blobs), engines=engines)

    validator = build(str(private))
    assert validator.synthetic is not None and validator.synthetic.corpus.sentences == sentences
    for _ in range(3):
        task = await validator.synthetic.issue()
        text = task.input.text or task.ground_truth or ""
        assert text and not text.replace(sentences[0], "").replace(sentences[1], "").strip(), text
    with pytest.raises(CorpusError, match="cannot read"):
        build(str(tmp_path / "missing.txt"))


async def test_a_due_challenge_waits_for_uploads_to_stop_but_at_most_idle_s(parts, engines):
    ingest = IngestActivity()
    ingest.enter()  # an upload in flight on the side-server
    synthetic = loop(parts, engines, rate=1.0, idle_s=0.5, ingest=ingest)
    synthetic.note_task(client_task())
    synthetic.note_task(client_task())
    await synthetic.run_step()  # a check interval without a quiet moment: deferred, the credit kept
    assert synthetic.issued == 0 and synthetic.due
    await synthetic.run_step()  # deferred for longer than idle_s: issued though the upload goes on
    assert synthetic.issued == 1 and synthetic.due
    ingest.leave()
    await synthetic.run_step()  # quiet: issued at once
    assert synthetic.issued == 2
