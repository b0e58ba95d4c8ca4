"""score_task end to end on the real engines: blobs in, references computed, every answer judged."""

from __future__ import annotations

import dataclasses
import random
import threading

import numpy as np
import pytest

from protocol import decode_audio, encode_audio
from subnet_proxy.blobs.local import LocalBlobStore
from subnet_proxy.kinds import REGISTRY, score_task
from subnet_proxy.kinds.challenges import Corpus
from subnet_proxy.tasks import TaskKind
from tests.rewards.conftest import by_hotkey, make_task, response

pytestmark = pytest.mark.slow
OTHER = "The lighthouse stood on a bare rock at the mouth of the harbour."


async def challenge(kind: TaskKind, engines, blobs: LocalBlobStore, seed: int):
    made = await REGISTRY[kind].challenge(engines, Corpus.load(), random.Random(seed), owner="synthetic:v")
    for data in made.blobs.values():
        await blobs.put(data, content_type="audio/wav")
    return made.task


async def test_transcription_synthetic_and_client(engines, scoring_engines, tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path)
    task = await challenge(TaskKind.TRANSCRIPTION, engines, blobs, seed=11)
    heard = (await engines.transcribe(decode_audio(await blobs.get(task.input.audio_blob)))).text
    responses = [response(task, "honest", text=heard, order=0), response(task, "other", text=OTHER, order=1),
                 response(task, "slow", text=heard + " ", order=2, latency=30.0)]
    for truth in (task.ground_truth, None):  # None: judged as a client task, against the consensus
        rewards = by_hotkey(await score_task(task, responses, truth, scoring_engines, blobs=blobs, timeout_s=12.0))
        assert rewards["honest"].reward > 0.7, rewards["honest"].breakdown
        assert rewards["other"].reward < 0.1
        assert rewards["slow"].reward == 0.0


async def test_tts_round_trip_and_missing_audio(engines, scoring_engines, tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path)
    task = await challenge(TaskKind.TTS, engines, blobs, seed=12)
    speech = await engines.synthesize(task.input.text or "")
    good = await blobs.put(encode_audio(speech.samples, speech.sample_rate, "flac"), content_type="audio/flac")
    noise = np.random.default_rng(0).uniform(-0.4, 0.4, speech.samples.size).astype(np.float32)
    bad = await blobs.put(encode_audio(noise, speech.sample_rate, "wav"), content_type="audio/wav")
    responses = [response(task, "honest", output_blob=good.key, order=0),
                 response(task, "noise", output_blob=bad.key, order=1),
                 response(task, "lost", output_blob="f" * 64, order=2),
                 response(task, "copy", output_blob=good.key, order=3)]
    rewards = by_hotkey(await score_task(task, responses, task.ground_truth, scoring_engines, blobs=blobs,
                                         timeout_s=12.0))
    # Piper reads differently each time and tiny.en mishears 1-4 of these 21 words: WER 0.05-0.19
    assert rewards["honest"].reward > 0.75, rewards["honest"].breakdown
    assert rewards["noise"].reward == 0.0 and "rejected_no_speech" in rewards["noise"].breakdown
    assert rewards["lost"].reward == 0.0 and "rejected_empty" in rewards["lost"].breakdown
    assert rewards["copy"].reward == rewards["honest"].reward  # the same bytes from a second hotkey: credited too


async def test_summarization_honest_beats_source_and_off_topic(engines, scoring_engines, tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path)
    task = await challenge(TaskKind.SUMMARIZATION, engines, blobs, seed=13)
    summary = await engines.summarize(task.input.text or "", task.input.max_words)
    responses = [response(task, "honest", text=summary, order=0), response(task, "source", text=task.input.text),
                 response(task, "other", text=OTHER, order=2)]
    rewards = by_hotkey(await score_task(task, responses, None, scoring_engines, blobs=blobs, timeout_s=12.0))
    assert rewards["honest"].reward > 0.5, rewards["honest"].breakdown
    assert rewards["source"].reward == 0.0
    assert rewards["other"].reward < 0.2


async def test_responses_of_another_task_are_refused(engines, scoring_engines, tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path)
    task = await challenge(TaskKind.SUMMARIZATION, engines, blobs, seed=14)
    stranger = response(task, "x", text="hello there friend").model_copy(update={"task_id": "other"})
    with pytest.raises(ValueError, match="another task"):
        await score_task(task, [stranger], None, scoring_engines, blobs=blobs, timeout_s=12.0)
    assert await score_task(task, [], None, scoring_engines, blobs=blobs, timeout_s=12.0) == []


async def test_client_transcription_with_its_audio_gone_credits_nobody(engines, scoring_engines, tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path)
    task = await challenge(TaskKind.TRANSCRIPTION, engines, blobs, seed=15)
    orphan = task.model_copy(update={"input": task.input.model_copy(update={"audio_blob": "e" * 64})})
    responses = [response(orphan, "a", text=task.ground_truth, order=0), response(orphan, "b", state="timeout")]
    rewards = await score_task(orphan, responses, None, scoring_engines, blobs=blobs, timeout_s=12.0)
    assert [r.reward for r in rewards] == [0.0, 0.0]
    assert "rejected_no_reference" in rewards[0].breakdown and "rejected_timeout" in rewards[1].breakdown


async def test_no_valid_answer_scores_without_touching_the_models(scoring_engines, tmp_path) -> None:
    blobs = LocalBlobStore(tmp_path)
    task = make_task(TaskKind.SUMMARIZATION, text="A source text that nobody summarized in time at all.")
    responses = [response(task, "a", state="timeout"), response(task, "b", state="error")]
    rewards = await score_task(task, responses, None, scoring_engines, blobs=blobs, timeout_s=12.0)
    assert [r.breakdown for r in rewards] == [{"rejected_timeout": 1.0}, {"rejected_error": 1.0}]


async def test_the_reward_function_runs_in_the_worker_pool_not_on_the_event_loop(engines, scoring_engines, tmp_path,
                                                                                  monkeypatch) -> None:
    """Consensus WER/CER and stemmed ROUGE cost tens to hundreds of ms per task: on the loop thread
    they would stall every dispatch in flight."""
    from subnet_proxy.kinds import scoring as scorer

    blobs = LocalBlobStore(tmp_path)
    task = await challenge(TaskKind.SUMMARIZATION, engines, blobs, seed=13)
    threads: list[threading.Thread] = []
    real = scorer.task_spec(task.kind)

    def spied(*args, **kwargs):
        threads.append(threading.current_thread())
        return real.reward(*args, **kwargs)

    monkeypatch.setattr(scorer, "task_spec", lambda kind: dataclasses.replace(real, reward=spied))
    rewards = await score_task(task, [response(task, "other", text=OTHER)], None, scoring_engines, blobs=blobs,
                               timeout_s=12.0)
    assert len(rewards) == 1 and threads and threads[0] is not threading.main_thread()
