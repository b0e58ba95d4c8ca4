"""Languages the validator cannot score are refused at the door (400 unsupported_language), both ways in."""

from __future__ import annotations

from protocol import b64encode
from subnet_proxy.languages import SUPPORTED_LANGUAGES
from tests.server.conftest import Harness, auth, error_of
from tests.server.test_submit import audio_form


async def test_an_unsupported_language_is_refused_listing_the_supported_ones(harness: Harness,
                                                                              wav_bytes: bytes) -> None:
    c = harness.client
    requests = [
        c.post("/api/v1/transcription", data=audio_form(wav_bytes, language="fr"), headers=auth()),
        c.post("/api/v1/transcription", json={"audio_b64": b64encode(wav_bytes), "language": "pt-BR"},
               headers=auth()),
    ]
    for request in requests:
        resp = await request
        assert resp.status == 400, await resp.text()
        assert await error_of(resp) == "unsupported_language"
        message = (await resp.json())["error"]["message"]
        assert all(code in message for code in SUPPORTED_LANGUAGES), message
    assert (await harness.store.list_tasks()).tasks == []


async def test_english_with_or_without_a_region_and_no_language_are_taken(harness: Harness, wav_bytes: bytes) -> None:
    for fields in ({"language": "en"}, {"language": "en-GB"}, {}):
        resp = await harness.client.post("/api/v1/transcription", data=audio_form(wav_bytes, **fields),
                                         headers=auth())
        assert resp.status == 202, (fields, await resp.text())
    resp = await harness.client.post("/api/v1/transcription",
                                     json={"audio_b64": b64encode(wav_bytes), "language": "en-US"}, headers=auth())
    assert resp.status == 202, await resp.text()


async def test_openapi_lists_the_supported_languages(harness: Harness) -> None:
    doc = await (await harness.client.get("/api/v1/openapi.json")).json()
    language = doc["components"]["schemas"]["TranscriptionJSON"]["properties"]["language"]
    assert language["x-supported-languages"] == list(SUPPORTED_LANGUAGES)
    assert "unsupported_language" in language["description"]
