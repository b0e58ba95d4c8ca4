"""Task <-> synapse translation: inputs from the blob store, answers to MinerResponses, bounds per kind."""

from __future__ import annotations

import pytest

from protocol import SummarizationSynapse, TranscriptionSynapse, TTSSynapse, b64encode
from subnet_proxy.blobs import LocalBlobStore
from subnet_proxy.kinds import BadTaskInput, task_spec
from subnet_proxy.kinds.wire import build_synapse
from subnet_proxy.tasks import Task, TaskInput, TaskKind
from subnet_proxy.validator.codec import decode_result, delivery_endpoint
from subnet_proxy.validator.dendrite import AxonResult


@pytest.fixture
async def blobs(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    yield store
    await store.close()


def task(kind: TaskKind, **fields) -> Task:
    return Task(kind=kind, owner="client", input=TaskInput(**fields))


def result(outcome: str, synapse=None, **kw) -> AxonResult:
    return AxonResult(uid=3, hotkey="5Miner", outcome=outcome, latency_s=0.25, synapse=synapse, **kw)  # type: ignore[arg-type]


async def test_transcription_input_comes_from_the_blob_store(blobs, wav_bytes):
    ref = await blobs.put(wav_bytes, content_type="audio/wav")
    synapse = await build_synapse(task(TaskKind.TRANSCRIPTION, audio_blob=ref.key, audio_format="wav",
                                       audio_seconds=1.0, language="en"), blobs)
    assert isinstance(synapse, TranscriptionSynapse)
    assert synapse.audio_format == "wav" and synapse.language == "en"
    assert synapse.audio_b64 == b64encode(wav_bytes)
    assert synapse.task_id is not None and synapse.delivery_url is None


@pytest.mark.parametrize(("kind", "fields"), [
    (TaskKind.TTS, {"text": "Hello there."}),
    (TaskKind.SUMMARIZATION, {"text": "A source text. With two sentences.", "max_words": 10}),
])
async def test_every_synapse_names_its_task_and_the_offered_delivery_url(blobs, kind, fields):
    t = task(kind, **fields)
    url = delivery_endpoint("https://proxy.example.org:8443/")
    assert url == "https://proxy.example.org:8443/api/v1/miner/response"
    offered = await build_synapse(t, blobs, delivery_url=url)
    assert (offered.task_id, offered.delivery_url) == (t.task_id, url)
    bare = await build_synapse(t, blobs)
    assert (bare.task_id, bare.delivery_url) == (t.task_id, None)
    assert bare.body_hash != offered.body_hash


def test_delivery_endpoint_none_offers_none_and_a_bad_base_fails_at_once():
    assert delivery_endpoint(None) is None
    with pytest.raises(ValueError, match="(?i)port"):
        delivery_endpoint("http://127.0.0.1:99999999")


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        (TaskKind.TRANSCRIPTION, {"audio_blob": "ab" * 32, "audio_format": "wav"}, "not found"),
        (TaskKind.TRANSCRIPTION, {}, "without audio"),
        (TaskKind.TTS, {"text": "x" * 5_000}, "tts input unusable"),
        (TaskKind.SUMMARIZATION, {"text": ""}, "summarization input unusable"),
    ],
)
async def test_unusable_input_is_a_clear_error(blobs, kind, fields, reason):
    with pytest.raises(BadTaskInput, match=reason):
        await build_synapse(task(kind, **fields), blobs)


async def test_outcomes_map_to_response_states(blobs):
    t = task(TaskKind.SUMMARIZATION, text="Some source text.")
    states = {outcome: (await decode_result(t, result(outcome, message="why"), blobs)).state
              for outcome in ("timeout", "unreachable", "http_error", "oversize", "invalid")}
    assert states == {"timeout": "timeout", "unreachable": "error", "http_error": "error", "oversize": "invalid",
                      "invalid": "invalid"}
    failed = await decode_result(t, result("http_error", status_code=403, message="blacklisted"), blobs)
    assert failed.status_code == 403 and failed.message == "blacklisted" and failed.latency_s == 0.25


async def test_an_ok_answer_without_output_is_invalid(blobs):
    t = task(TaskKind.SUMMARIZATION, text="Some source text.")
    empty = await decode_result(t, result("ok", SummarizationSynapse(text="Some source text.")), blobs)
    assert empty.state == "invalid" and empty.message == "answer carries no output"
    ok = await decode_result(t, result("ok", SummarizationSynapse(text="Some source text.", summary="Short.")), blobs)
    assert ok.state == "ok" and ok.text == "Short." and ok.uid == 3 and ok.task_id == t.task_id


async def test_tts_audio_answers_are_stored_as_blobs(blobs, wav_bytes):
    t = task(TaskKind.TTS, text="Hello there.")
    synapse = TTSSynapse(text="Hello there.", audio_b64=b64encode(wav_bytes), audio_format="wav",
                         audio_sample_rate=16_000)
    stored = await decode_result(t, result("ok", synapse), blobs)
    assert stored.output_format == "wav" and stored.output_sample_rate == 16_000
    assert await blobs.get(stored.output_blob or "") == wav_bytes


def test_answer_bounds_follow_the_protocol():
    assert task_spec(TaskKind.TTS).max_output_bytes > 25 * 1024 * 1024  # a full-size audio answer, base64
    assert task_spec(TaskKind.SUMMARIZATION).max_output_bytes < task_spec(TaskKind.TRANSCRIPTION).max_output_bytes
