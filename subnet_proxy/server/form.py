"""A small multipart/form-data parser (RFC 7578) for the transcription form, over an already size-limited body.

aiohttp's streaming multipart reader parses each part's Content-Disposition with the standard
library's email header machinery; on a small upload that was most of the proxy's CPU per request
(measured with ``scripts/bench_ingest.py``). The form here has one file and one short field, the
body is read under the upload limit first (``body.read_limited``), so parsing it from bytes is both
simpler and bounded. Anything that is not a well-formed form is a 400 ``malformed_multipart``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from subnet_proxy.server.errors import ApiError

_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^;\s"]{1,70}))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))')
_MAX_HEADERS = 8 * 1024
_MAX_PARTS = 16


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    filename: str | None
    data: bytes


def malformed(message: str) -> ApiError:
    return ApiError(400, "malformed_multipart", message)


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type header, as the bytes the client sent.

    aiohttp decodes header bytes as UTF-8 with surrogateescape, so this encoding gives them back
    whatever they were (latin-1 would fail on any other character: a 500 for a client's typo).
    """
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise malformed("multipart/form-data needs a boundary parameter")
    return (match.group(1) or match.group(2)).encode("utf-8", "surrogateescape")


def disposition(value: str) -> tuple[str, str | None]:
    """(name, filename) of a ``form-data`` Content-Disposition value."""
    kind, _, _ = value.partition(";")
    if kind.strip().lower() != "form-data":
        raise malformed("each part needs 'Content-Disposition: form-data'")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(value[len(kind):])}
    name = params.get("name")
    if not name:
        raise malformed("a form part has no name")
    filename = params.get("filename")
    return re.sub(r"\\(.)", r"\1", name), filename


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep:
            raise malformed("a part header line has no ':'")
        headers[key.strip().lower()] = value.strip()
    return headers


def parse_form(body: bytes, boundary: bytes) -> list[FormField]:
    """The fields of a multipart/form-data body, in order; each name at most once (400 ``duplicate_field``)."""
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2:start] != b"\r\n"):
        raise malformed("the body does not start with the boundary")
    pos = start + len(delimiter)
    fields: list[FormField] = []
    while True:
        if body.startswith(b"--", pos):
            return fields
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise malformed("a boundary line is not followed by CRLF")
        header_end = body.find(b"\r\n\r\n", line_end, line_end + _MAX_HEADERS)
        if header_end < 0:
            raise malformed("a part's headers do not end (or are too long)")
        headers = _headers(body[line_end + 2:header_end]) if header_end > line_end else {}
        data_start = header_end + 4
        data_end = body.find(b"\r\n" + delimiter, data_start)
        if data_end < 0:
            raise malformed("the body ends before the closing boundary")
        name, filename = disposition(headers.get("content-disposition", ""))
        if any(f.name == name for f in fields):  # else the last one would silently win
            raise ApiError(400, "duplicate_field", f"form field {name!r} is sent more than once")
        fields.append(FormField(name=name, filename=filename, data=body[data_start:data_end]))
        if len(fields) > _MAX_PARTS:
            raise malformed(f"more than {_MAX_PARTS} form parts")
        pos = data_end + 2 + len(delimiter)
