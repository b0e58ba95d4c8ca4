"""Refusals at the door that used to pass or crash: invisible text, duplicate form fields, aborted bodies."""

from __future__ import annotations

import asyncio
import logging

import pytest

from protocol import TTS_VOICES
from tests.server.conftest import Harness, auth, error_of

INVISIBLE = ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\u00ad\u200e\u200f", " \u3000\u200b\t\n", "\U000e0041"]


@pytest.mark.parametrize("text", INVISIBLE)
@pytest.mark.parametrize("path", ["/api/v1/tts", "/api/v1/summarization"])
async def test_text_of_only_invisible_characters_is_refused(harness: Harness, path: str, text: str) -> None:
    resp = await harness.client.post(path, json={"text": text}, headers=auth())
    assert resp.status == 400 and await error_of(resp) == "invalid_request"
    visible = await harness.client.post(path, json={"text": "\u200bHello there, how are you today?"},
                                        headers=auth())
    assert visible.status == 202


async def test_a_form_with_two_audio_parts_is_refused(harness: Harness, wav_bytes: bytes) -> None:
    boundary = "b0undary"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode() + wav_bytes + b"\r\n"
    body = part + part + f"--{boundary}--\r\n".encode()
    resp = await harness.client.post("/api/v1/transcription", data=body,
                                     headers={**auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status == 400 and await error_of(resp) == "duplicate_field"


async def test_a_client_that_disconnects_mid_body_is_an_abort_not_a_500(harness: Harness, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server = harness.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"POST /api/v1/summarization HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + auth()["Authorization"].split()[1].encode() +
                 b"\r\nContent-Length: 100000\r\n\r\n{\"text\": \"half a bo")
    await writer.drain()
    await asyncio.sleep(0.05)  # the handler is reading the body
    writer.close()
    await writer.wait_closed()
    metrics = ""
    for _ in range(100):  # the server notices the disconnect on its next read
        metrics = await (await harness.client.get("/metrics")).text()
        if "aborted" in metrics:
            break
        await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert 'status="500"' not in metrics
    assert "aborted" in metrics


async def test_a_voice_no_miner_speaks_is_refused_naming_the_served_voices(harness: Harness) -> None:
    """The README's old example, "voice": "joe", was taken (202) and then refused by every miner."""
    resp = await harness.client.post("/api/v1/tts", json={"text": "Hello there.", "voice": "joe"}, headers=auth())
    assert resp.status == 400 and await error_of(resp) == "unsupported_voice"
    message = (await resp.json())["error"]["message"]
    assert "'joe'" in message and all(voice in message for voice in TTS_VOICES), message
    assert sum((await harness.store.count_by_status()).values()) == 0  # refused before any task exists
    for voice in (*TTS_VOICES, None):
        served = await harness.client.post("/api/v1/tts", json={"text": "Hello there.", "voice": voice},
                                           headers=auth())
        assert served.status == 202, await served.text()
    spec = await (await harness.client.get("/api/v1/openapi.json")).json()
    field = spec["components"]["schemas"]["TTSRequest"]["properties"]["voice"]
    assert {"type": "string", "enum": list(TTS_VOICES)} in field["anyOf"], field
