"""Client submission through a real server: every kind, every refusal at the door, idempotency, no orphans."""

from __future__ import annotations

import asyncio
import io
import json
import time
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import numpy as np

from protocol import TTS_DEFAULT_VOICE, b64encode, encode_audio
from subnet_proxy.blobs.base import BlobError, blob_key
from subnet_proxy.client import ProxyClient
from subnet_proxy.tasks import TaskKind, TaskStatus
from tests.conftest import tone
from tests.dropping import DroppingProxy
from tests.server.conftest import ADMIN_KEY, CLIENT_KEY, Harness, auth, error_of, start_harness, stop_harness


def audio_form(data: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("audio", io.BytesIO(data), filename="speech.bin", content_type="application/octet-stream")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def test_transcription_multipart_stores_blob_then_task(harness: Harness, wav_bytes: bytes) -> None:
    resp = await harness.client.post("/api/v1/transcription", data=audio_form(wav_bytes, language="en"),
                                     headers=auth())
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "pending"
    assert body["status_url"] == f"/api/v1/task/{body['task_id']}/status"
    assert body["result_url"] == f"/api/v1/task/{body['task_id']}/result"
    assert resp.headers["Location"] == body["status_url"]
    task = await harness.store.get_task(body["task_id"])
    assert task.kind is TaskKind.TRANSCRIPTION and task.status is TaskStatus.PENDING
    assert task.owner == await harness.client_key_id()
    assert task.input.audio_blob == blob_key(wav_bytes)
    assert task.input.audio_format == "wav" and task.input.language == "en"
    assert abs((task.input.audio_seconds or 0) - 1.0) < 1e-3
    assert await harness.blobs.get(task.input.audio_blob) == wav_bytes
    assert task.deadline is not None
    ttl = (task.deadline - task.created_at).total_seconds()
    assert abs(ttl - harness.settings.proxy.task_ttl_s) < 5


async def test_transcription_json_flac_and_x_api_key(harness: Harness) -> None:
    flac = encode_audio(tone(0.5), 16_000, "flac")
    resp = await harness.client.post("/api/v1/transcription", json={"audio_b64": b64encode(flac), "format": "flac"},
                                     headers={"X-API-Key": CLIENT_KEY})
    assert resp.status == 202, await resp.text()
    task = await harness.store.get_task((await resp.json())["task_id"])
    assert task.input.audio_format == "flac"


async def test_tts_and_summarization(harness: Harness) -> None:
    resp = await harness.client.post("/api/v1/tts", json={"text": "Hello there.", "voice": TTS_DEFAULT_VOICE},
                                     headers=auth())
    assert resp.status == 202
    tts = await harness.store.get_task((await resp.json())["task_id"])
    assert (tts.kind, tts.input.text, tts.input.voice) == (TaskKind.TTS, "Hello there.", TTS_DEFAULT_VOICE)
    resp = await harness.client.post("/api/v1/summarization", json={"text": "Some text. " * 20, "max_words": 10},
                                     headers=auth())
    assert resp.status == 202
    summ = await harness.store.get_task((await resp.json())["task_id"])
    assert (summ.kind, summ.input.max_words) == (TaskKind.SUMMARIZATION, 10)


async def test_refusals_at_the_door(harness: Harness, wav_bytes: bytes) -> None:
    c = harness.client
    silence_wav = encode_audio(np.zeros(0, dtype=np.float32), 16_000, "wav")
    long_wav = encode_audio(tone(6.0, rate=8_000), 8_000, "wav")  # limit is 5 s
    cases = [
        (c.post("/api/v1/summarization", data=b"{not json", headers={**auth(), "Content-Type": "application/json"}),
         400, "malformed_json"),
        (c.post("/api/v1/summarization", json=["a list"], headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/summarization", json={"text": 42}, headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/summarization", json={"text": "x", "max_words": "many"}, headers=auth()), 400,
         "invalid_request"),
        (c.post("/api/v1/summarization", json={"text": ""}, headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/summarization", json={"text": " \n\t "}, headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/tts", json={"text": "   "}, headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/summarization", json={"text": "x" * 100_001}, headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/summarization", json={"text": "ok", "temperature": 1}, headers=auth()), 400,
         "unknown_field"),
        (c.post("/api/v1/summarization", data="text=hi", headers={**auth(), "Content-Type": "text/plain"}), 415,
         "unsupported_media_type"),
        (c.post("/api/v1/tts", json={"text": "y" * 2_001}, headers=auth()), 400, "invalid_request"),
        (c.post("/api/v1/tts", json={"text": "hi", "voice": "../etc/passwd"}, headers=auth()), 400,
         "invalid_request"),
        (c.post("/api/v1/transcription", data=audio_form(b"this is plainly not audio" * 10), headers=auth()), 415,
         "unsupported_audio"),
        (c.post("/api/v1/transcription", data=audio_form(b""), headers=auth()), 400, "empty_audio"),
        (c.post("/api/v1/transcription", data=audio_form(silence_wav), headers=auth()), 400, "invalid_audio"),
        (c.post("/api/v1/transcription", data=audio_form(b"RIFF\x00\x00\x00\x00WAVEfmt garbage"), headers=auth()),
         400, "invalid_audio"),
        (c.post("/api/v1/transcription", data=audio_form(long_wav), headers=auth()), 413, "audio_too_long"),
        (c.post("/api/v1/transcription", data=audio_form(wav_bytes, speaker="bob"), headers=auth()), 400,
         "unknown_field"),
        (c.post("/api/v1/transcription", data=audio_form(wav_bytes, language="english!"), headers=auth()), 400,
         "invalid_request"),
        (c.post("/api/v1/transcription", json={"audio_b64": "%%%notbase64"}, headers=auth()), 400, "invalid_base64"),
        (c.post("/api/v1/transcription", json={"audio_b64": b64encode(wav_bytes), "format": "mp3"}, headers=auth()),
         400, "format_mismatch"),
        (c.post("/api/v1/transcription", json={"audio_b64": b64encode(wav_bytes), "extra": 1}, headers=auth()), 400,
         "unknown_field"),
        (c.post("/api/v1/transcription", data=b"raw", headers={**auth(), "Content-Type": "audio/wav"}), 415,
         "unsupported_media_type"),
        (c.post("/api/v1/transcription", data=b"not a form",
                headers={**auth(), "Content-Type": "multipart/form-data; boundary=B"}), 400, "malformed_multipart"),
        (c.post("/api/v1/transcription", data=b"--B--\r\n",
                headers={**auth(), "Content-Type": "multipart/form-data; boundary=B"}), 400, "missing_field"),
        (c.post("/api/v1/summarization", json={"text": "hi"}), 401, "missing_api_key"),
        (c.post("/api/v1/summarization", json={"text": "hi"}, headers=auth("wrong-key")), 401, "invalid_api_key"),
        (c.post("/api/v1/summarization", json={"text": "hi"}, headers={**auth(), "Idempotency-Key": "x" * 200}), 400,
         "invalid_idempotency_key"),
    ]
    for request, status, code in cases:
        resp = await request
        assert resp.status == status, (code, await resp.text())
        assert await error_of(resp) == code
    page = await harness.store.list_tasks()
    assert page.tasks == [], "a refused submission created a task"


async def test_oversized_body_refused_while_reading(harness: Harness) -> None:
    limit = int(harness.settings.proxy.max_upload_mb * 1024 * 1024)
    big = encode_audio(tone(1.0), 16_000, "wav") + b"\x00" * (limit + 1)

    async def chunks():  # no Content-Length: the server must count as it reads (JSON may carry base64: 4/3)
        for _ in range(2 * limit // (256 * 1024) + 1):
            yield b" " * (256 * 1024)

    form = aiohttp.FormData()
    form.add_field("audio", io.BytesIO(big), filename="big.wav", content_type="audio/wav")
    resp = await harness.client.post("/api/v1/transcription", data=form, headers=auth())
    assert resp.status == 413 and await error_of(resp) == "body_too_large"
    resp = await harness.client.post("/api/v1/summarization", data=chunks(),
                                     headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 413 and await error_of(resp) == "body_too_large"
    assert (await harness.store.list_tasks()).tasks == []


async def test_idempotency_key_returns_same_task(harness: Harness, wav_bytes: bytes) -> None:
    headers = {**auth(), "Idempotency-Key": "order-42"}
    first = await harness.client.post("/api/v1/transcription", data=audio_form(wav_bytes), headers=headers)
    second = await harness.client.post("/api/v1/transcription", data=audio_form(wav_bytes), headers=headers)
    assert first.status == second.status == 202
    assert (await first.json())["task_id"] == (await second.json())["task_id"]
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    # the same key for another kind of task is a conflict, not a silent mix-up
    resp = await harness.client.post("/api/v1/summarization", json={"text": "hi"}, headers=headers)
    assert resp.status == 409 and await error_of(resp) == "idempotency_conflict"
    # and for the same kind with other input (another file): a conflict too, never the old task
    other_audio = encode_audio(tone(freq=660.0), 16_000, "wav")
    resp = await harness.client.post("/api/v1/transcription", data=audio_form(other_audio), headers=headers)
    assert resp.status == 409 and await error_of(resp) == "idempotency_conflict"
    # keys are per client: another client's identical key makes its own task
    other = await harness.client.post("/api/v1/transcription", data=audio_form(wav_bytes),
                                      headers={**auth(ADMIN_KEY), "Idempotency-Key": "order-42"})
    assert (await other.json())["task_id"] != (await first.json())["task_id"]
    assert len((await harness.store.list_tasks()).tasks) == 2


async def test_blob_failure_leaves_no_task(harness: Harness, wav_bytes: bytes, monkeypatch) -> None:
    async def broken_put(data: bytes, *, content_type: str):
        raise BlobError("disk full (injected)")

    monkeypatch.setattr(harness.blobs, "put", broken_put)
    resp = await harness.client.post("/api/v1/transcription", data=audio_form(wav_bytes), headers=auth())
    assert resp.status == 503 and await error_of(resp) == "backend_unavailable"
    assert (await harness.store.list_tasks()).tasks == []
    assert "disk full" not in json.dumps(await resp.json())


async def test_chunked_multipart_is_counted_while_reading(harness: Harness) -> None:
    """No Content-Length: the audio field is refused once it passes the limit, before the rest arrives."""
    limit = int(harness.settings.proxy.max_upload_mb * 1024 * 1024)
    boundary = "test-boundary-42"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()

    async def body():
        yield head + encode_audio(tone(0.1), 16_000, "wav")
        for _ in range(4 * limit // (64 * 1024)):
            yield b"\x00" * (64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = await harness.client.post("/api/v1/transcription", data=body(),
                                     headers={**auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status == 413 and await error_of(resp) == "body_too_large"
    assert (await harness.store.list_tasks()).tasks == []


async def test_the_audio_length_limit_is_the_configured_one_beyond_the_decoder_default(tmp_path) -> None:
    """--proxy.max_audio_s is the limit at the door, also above the decoder's 600 s default: a
    longer file is 413 audio_too_long, a shorter one is accepted (silence FLAC keeps both small)."""
    h = await start_harness(tmp_path, max_audio_s=900.0)
    try:
        def silence(seconds: float) -> bytes:
            return encode_audio(np.zeros(int(seconds * 8_000), dtype=np.float32), 8_000, "flac")

        accepted = await h.client.post("/api/v1/transcription", data=audio_form(silence(700)), headers=auth())
        assert accepted.status == 202, await accepted.text()
        refused = await h.client.post("/api/v1/transcription", data=audio_form(silence(901)), headers=auth())
        assert (refused.status, await error_of(refused)) == (413, "audio_too_long")
    finally:
        await stop_harness(h)


async def _stalled_request(h: Harness, path: str, headers: dict[str, str]) -> tuple[bytes, dict[str, object], float]:
    """Send the headers and a third of a 300-byte body, then nothing: (status line, JSON body, seconds)."""
    url = h.client.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = "".join(f"{name}: {value}\r\n" for name, value in
                   {"Host": "x", "Content-Type": "application/json", "Content-Length": "300", **headers}.items())
    started = time.monotonic()
    writer.write(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + b'{"text": "' + b"a" * 90)
    await writer.drain()
    try:
        status_and_headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(next(line.split(b":")[1] for line in status_and_headers.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        body = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    return status_and_headers.split(b"\r\n")[0], body, time.monotonic() - started


async def test_a_body_that_does_not_arrive_in_time_is_refused_with_408(tmp_path: Path) -> None:
    """A slow sender, client or signed caller, cannot hold a connection and its buffer for long."""
    h = await start_harness(tmp_path, body_timeout_s=0.3)
    try:
        for path, headers in [("/api/v1/summarization", auth()),
                              ("/api/v1/miner/response", {"X-Hotkey": h.neurons.miner_1.ss58_address})]:
            status, body, seconds = await _stalled_request(h, path, headers)
            assert status == b"HTTP/1.1 408 Request Timeout", (path, status)
            assert body["error"]["code"] == "body_timeout", body  # type: ignore[index]
            assert 0.3 <= seconds < 5, seconds
        resp = await h.client.post("/api/v1/summarization", json={"text": "a whole body in time " * 5},
                                   headers=auth())
        assert resp.status == 202, "a body that arrives in time is taken"
    finally:
        await stop_harness(h)


async def submits_through(proxy: DroppingProxy, h: Harness, wav_bytes: bytes) -> list[str]:
    """Two summarization submits and one upload through ``proxy`` with the client: their task ids."""
    async with ProxyClient(f"http://127.0.0.1:{await proxy.start()}", api_key=CLIENT_KEY) as c:
        try:
            ids = [(await c.submit_summarization(f"Text number {n} to summarize, long enough.")).task_id
                   for n in range(2)]
            ids.append((await c.submit_transcription(wav_bytes)).task_id)
        finally:
            await proxy.close()
    return ids


def posted_keys(proxy: DroppingProxy) -> list[str]:
    return [fields["idempotency-key"] for line, fields in proxy.requests if line.startswith("POST ")]


async def test_the_client_sends_a_submit_again_when_its_connection_drops_unanswered(harness: Harness,
                                                                                    wav_bytes: bytes) -> None:
    """A kept-alive connection the server (or a proxy before it) closes as a submit is written on it:
    the client sends it once more on a new connection, under the Idempotency-Key it made for it."""
    proxy = DroppingProxy(harness.client.port, answered=1)  # each connection's second request: dropped unseen
    ids = await submits_through(proxy, harness, wav_bytes)
    keys = posted_keys(proxy)
    assert len(keys) == 5 and keys[1] == keys[2] and keys[3] == keys[4]  # the second and third: dropped, again
    assert len(set(keys)) == 3 and len(set(ids)) == 3
    assert sum((await harness.store.count_by_status()).values()) == 3


async def test_a_submit_served_but_unanswered_and_sent_again_makes_one_task(harness: Harness,
                                                                            wav_bytes: bytes) -> None:
    """The drop after the server made the task: the same key finds it, the client gets that task, and
    no second task is made (or counted)."""
    proxy = DroppingProxy(harness.client.port, answered=1, served_dropped=True)
    ids = await submits_through(proxy, harness, wav_bytes)
    assert len(posted_keys(proxy)) == 5 and len(set(ids)) == 3
    assert sum((await harness.store.count_by_status()).values()) == 3
    key_id = await harness.client_key_id()
    rows = await harness.store.usage(since=date.today() - timedelta(days=1), owner=key_id)
    assert {row.kind: row.usage.tasks for row in rows} == {"summarization": 2, "transcription": 1}  # once each
