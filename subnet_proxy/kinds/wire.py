"""Between a task and its miners, for every kind: the synapse out, an answer back, the stored response.

Each step looks the task's kind up in the registry. A miner's answer arrives two ways: in the
answered synapse, or later as a signed ``MinerAnswer`` delivered to the side-server. Both are read
into a ``RawAnswer``, pass the kind's one check (``KindSpec.check_answer``: text bounds, TTS audio
probed) into an ``Output``, and become a ``MinerResponse`` through ``stored_response`` (audio put
into the BlobStore first), so an answer is accepted or refused the same whichever way it came.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from protocol import AudioSynapse, mime_type
from subnet_proxy.api.schemas import MinerAnswer
from subnet_proxy.blobs.base import BlobError, BlobStore
from subnet_proxy.kinds.base import AnswerRefused, AudioProbe, BadTaskInput, Output, RawAnswer
from subnet_proxy.kinds.checks import protocol_probe
from subnet_proxy.kinds.registry import task_spec
from subnet_proxy.tasks import MinerResponse, Task, utcnow

#: the message of a synapse answered without output (the dispatcher waits for its delivery).
NO_OUTPUT = "answer carries no output"


async def build_synapse(task: Task, blobs: BlobStore, *, delivery_url: str | None = None) -> AudioSynapse:
    """The synapse miners receive for ``task``; BadTaskInput when the input cannot make one."""
    spec = task_spec(task.kind)
    try:
        fields = await spec.synapse_inputs(task, blobs)
        return spec.synapse(**fields, task_id=task.task_id, delivery_url=delivery_url)
    except (ValidationError, BlobError) as exc:
        raise BadTaskInput(f"{task.kind} input unusable: {exc}"[:500]) from exc


async def synapse_output(task: Task, synapse: object, probe: AudioProbe = protocol_probe) -> Output:
    """An answered synapse's output once the task's kind accepted it; AnswerRefused otherwise."""
    spec = task_spec(task.kind)
    if not isinstance(synapse, spec.synapse):
        raise AnswerRefused("invalid_request", f"a {spec.kind} answer must be a {spec.synapse.__name__}")
    return await spec.check_answer(spec.answer_of(synapse), probe)


async def delivered_output(task: Task, answer: MinerAnswer, probe: AudioProbe = protocol_probe) -> Output:
    """A delivered answer's output once the task's kind accepted it (the same check as a synapse's);
    the side-server passes a probe within the sender's decode budget."""
    raw = RawAnswer(text=answer.text, segments=answer.segments, audio_b64=answer.audio_b64)
    return await task_spec(task.kind).check_answer(raw, probe)


async def stored_response(output: Output, blobs: BlobStore, *, task_id: str, hotkey: str, uid: int,
                          latency_s: float | None, status_code: int | None = None,
                          received_at: datetime | None = None) -> MinerResponse:
    """The valid answer ready for the TaskStore: its audio (if any) put in the BlobStore first."""
    blob = None
    if output.audio is not None:
        blob = (await blobs.put(output.audio, content_type=mime_type(output.audio_format or "wav"))).key
    return MinerResponse(task_id=task_id, hotkey=hotkey, uid=uid, state="ok", latency_s=latency_s,
                         status_code=status_code, text=output.text, segments=output.segments, output_blob=blob,
                         output_format=output.audio_format, output_sample_rate=output.sample_rate,
                         received_at=received_at or utcnow())
