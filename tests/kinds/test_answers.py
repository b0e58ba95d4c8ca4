"""One check per kind for both ways an answer arrives: an answered synapse and a delivered MinerAnswer
are accepted alike (the same Output) and refused alike (the same code), TTS bytes probed on both."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from protocol import MAX_SUMMARY_CHARS, b64encode
from protocol.synapses import Segment
from subnet_proxy.api.schemas import MinerAnswer
from subnet_proxy.kinds import REGISTRY, AnswerRefused, JsonBody, Output, task_spec
from subnet_proxy.kinds.wire import delivered_output, synapse_output
from subnet_proxy.tasks import Task, TaskInput, TaskKind

SEGMENTS = [{"start": 0.0, "end": 1.0, "text": "hello"}]
NOT_AUDIO = b64encode(b"definitely not an audio file")


def task(kind: str) -> Task:
    return Task(kind=kind, owner="client", input=TaskInput(text="Some source text."))


def answered_synapse(kind: str, fields: dict[str, Any]) -> Any:
    """The kind's synapse as an axon answers it: its inputs, and the answer's fields under the
    synapse's own names. Built unvalidated, as an over-long answer could be before the protocol's bounds."""
    names = {TaskKind.TRANSCRIPTION: {"text": "transcript", "segments": "segments"},
             TaskKind.TTS: {"audio_b64": "audio_b64"},
             TaskKind.SUMMARIZATION: {"text": "summary"}}[TaskKind(kind)]
    outputs = {names[k]: ([Segment(**s) for s in v] if k == "segments" else v)
               for k, v in fields.items() if k in names}
    inputs = {TaskKind.TRANSCRIPTION: {"audio_b64": NOT_AUDIO, "audio_format": "wav"},
              TaskKind.TTS: {"text": "Speak."}, TaskKind.SUMMARIZATION: {"text": "Some source text."}}[TaskKind(kind)]
    return task_spec(kind).synapse.model_construct(**inputs, **outputs)


async def both_ways(kind: str, fields: dict[str, Any]) -> tuple[Output | AnswerRefused, Output | AnswerRefused]:
    t = task(kind)
    outcomes: list[Output | AnswerRefused] = []
    for decode in (lambda: synapse_output(t, answered_synapse(kind, fields)),
                   lambda: delivered_output(t, MinerAnswer(task_id=t.task_id, **fields))):
        try:
            outcomes.append(await decode())
        except AnswerRefused as exc:
            outcomes.append(exc)
    return outcomes[0], outcomes[1]


def refusal(outcome: Output | AnswerRefused) -> tuple[str, bool]:
    assert isinstance(outcome, AnswerRefused), outcome
    return outcome.code, outcome.empty


@pytest.mark.parametrize(("kind", "fields"), [
    (TaskKind.TRANSCRIPTION, {"text": "hello there", "segments": SEGMENTS}),
    (TaskKind.TRANSCRIPTION, {"text": "hello there"}),
    (TaskKind.SUMMARIZATION, {"text": "Short.", "segments": SEGMENTS}),  # a summary has no segments
])
async def test_valid_text_answers_decode_the_same_both_ways(kind: str, fields: dict[str, Any]) -> None:
    by_synapse, by_delivery = await both_ways(kind, fields)
    assert isinstance(by_synapse, Output) and by_synapse == by_delivery
    assert by_synapse.text == fields["text"] and by_synapse.audio is None
    kept = kind == TaskKind.TRANSCRIPTION and "segments" in fields
    assert by_synapse.segments == (SEGMENTS if kept else None)


async def test_valid_tts_audio_decodes_the_same_both_ways(wav_bytes: bytes) -> None:
    by_synapse, by_delivery = await both_ways(TaskKind.TTS, {"audio_b64": b64encode(wav_bytes)})
    assert by_synapse == by_delivery == Output(audio=wav_bytes, audio_format="wav", sample_rate=16_000)


@pytest.mark.parametrize(("kind", "fields", "code", "empty"), [
    (TaskKind.TRANSCRIPTION, {}, "missing_field", True),
    (TaskKind.TRANSCRIPTION, {"text": "  \n"}, "missing_field", True),
    (TaskKind.SUMMARIZATION, {"text": ""}, "missing_field", True),
    (TaskKind.SUMMARIZATION, {"text": "x" * (MAX_SUMMARY_CHARS + 1)}, "invalid_request", False),
    (TaskKind.TTS, {}, "missing_field", True),
    (TaskKind.TTS, {"text": "words, not audio"}, "missing_field", True),
    (TaskKind.TTS, {"audio_b64": NOT_AUDIO}, "invalid_audio", False),
    (TaskKind.TTS, {"audio_b64": "%%% not base64"}, "invalid_audio", False),
])
async def test_refusals_are_the_same_both_ways(kind: str, fields: dict[str, Any], code: str, empty: bool) -> None:
    by_synapse, by_delivery = await both_ways(kind, fields)
    assert refusal(by_synapse) == refusal(by_delivery) == (code, empty)


async def test_a_synapse_of_another_kind_is_refused() -> None:
    other = answered_synapse(TaskKind.SUMMARIZATION, {"text": "Short."})
    with pytest.raises(AnswerRefused, match="TranscriptionSynapse"):
        await synapse_output(task(TaskKind.TRANSCRIPTION), other)


def test_every_built_in_kind_fills_every_field() -> None:
    assert list(REGISTRY) == [TaskKind.TRANSCRIPTION, TaskKind.TTS, TaskKind.SUMMARIZATION]
    for kind, spec in REGISTRY.items():
        for field in dataclasses.fields(spec):
            assert getattr(spec, field.name) is not None, (kind, field.name)
        assert spec.kind == kind and spec.max_output_bytes > 0 and spec.challenge_weight > 0
        assert spec.extra_timeout_s(TaskInput()) == 0.0 < spec.extra_timeout_s(TaskInput(text="x" * 100,
                                                                                          audio_seconds=10.0))
        assert spec.cli is not None and spec.cli.name and spec.submission.summary
        if isinstance(spec.submission.body, JsonBody):
            assert "text" in spec.submission.body.model.model_fields
