"""The multipart/form-data parser: forms as clients send them, and every malformed shape refused with 400."""

from __future__ import annotations

import io

import aiohttp
import pytest
from multidict import CIMultiDict

from subnet_proxy.server.errors import ApiError
from subnet_proxy.server.form import boundary_of, parse_form
from tests.server.conftest import Harness, auth, error_of

CURL_STYLE = (
    b"--------------------------d74496d66958873e\r\n"
    b'Content-Disposition: form-data; name="audio"; filename="speech.wav"\r\n'
    b"Content-Type: audio/x-wav\r\n\r\n"
    b"RIFF....WAVE\r\n--not-the-boundary\r\n"
    b"\r\n--------------------------d74496d66958873e\r\n"
    b'Content-Disposition: form-data; name="language"\r\n\r\n'
    b"en\r\n"
    b"--------------------------d74496d66958873e--\r\n"
)


def test_curl_style_form() -> None:
    boundary = boundary_of("multipart/form-data; boundary=------------------------d74496d66958873e")
    fields = parse_form(CURL_STYLE, boundary)
    assert [(f.name, f.filename) for f in fields] == [("audio", "speech.wav"), ("language", None)]
    assert fields[0].data == b"RIFF....WAVE\r\n--not-the-boundary\r\n"  # CRLFs inside the data are kept
    assert fields[1].data == b"en"


async def test_aiohttp_form_with_quoted_boundary_and_preamble() -> None:
    form = aiohttp.FormData()
    form.add_field("audio", io.BytesIO(b"\x00\x01data"), filename="a.flac", content_type="audio/flac")
    form.add_field("language", "pt-BR")
    writer = form()
    buf = bytearray()

    class Sink:
        async def write(self, chunk: bytes) -> None:
            buf.extend(chunk)

    await writer.write(Sink())  # type: ignore[arg-type]
    content_type = CIMultiDict(writer.headers)["Content-Type"]
    boundary = boundary_of(content_type.replace("boundary=", 'boundary="') + '"')
    fields = parse_form(b"preamble to ignore\r\n" + bytes(buf), boundary)
    assert [(f.name, f.filename, f.data) for f in fields] == [("audio", "a.flac", b"\x00\x01data"),
                                                             ("language", None, b"pt-BR")]


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; charset=utf-8",
                                          "multipart/form-data; boundary="])
def test_missing_boundary(content_type: str) -> None:
    with pytest.raises(ApiError) as err:
        boundary_of(content_type)
    assert (err.value.status, err.value.code) == (400, "malformed_multipart")


@pytest.mark.parametrize("body", [
    b"no boundary anywhere",
    b"--B\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\ndata without a closing boundary",
    b"--B\r\nContent-Disposition: form-data; name=\"audio\"\r\n" + b"x" * 9000,
    b"--B\r\nContent-Disposition: attachment; name=\"audio\"\r\n\r\ndata\r\n--B--",
    b"--B\r\nContent-Disposition: form-data\r\n\r\ndata\r\n--B--",
    b"--B\r\nno colon here\r\n\r\ndata\r\n--B--",
    b"--B\r\n\r\ndata\r\n--B--",
    b"--Bjunk\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nd\r\n--B--",
    b"x--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nd\r\n--B--",
    b"".join(b"--B\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nd\r\n" % i for i in range(20)) + b"--B--",
])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(ApiError) as err:
        parse_form(body, b"B")
    assert (err.value.status, err.value.code) == (400, "malformed_multipart")


async def test_a_boundary_outside_latin1_is_parsed_not_a_500(harness: Harness) -> None:
    body = "--中\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nnot audio\r\n--中--\r\n".encode()
    resp = await harness.client.post("/api/v1/transcription", data=body, headers={
        **auth(), "Content-Type": "multipart/form-data; boundary=中"})
    assert resp.status == 415 and await error_of(resp) == "unsupported_audio"  # the part was found and read
