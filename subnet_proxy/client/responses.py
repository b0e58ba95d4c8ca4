"""What the client makes of a server's answer: the error it raises and the result it returns, read
within a bound (a miner delivers to whatever URL a validator named, and that server could otherwise
stream without end)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from subnet_proxy.outbound import read_bounded

#: the largest JSON answer read (a validator's task page is the biggest, a few MB).
MAX_JSON_BYTES = 64 * 1024 * 1024


class ProxyError(Exception):
    """The server refused a request; ``code`` is the machine-readable reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A result: text (``text``/``segments``) for transcription and summarization, ``audio`` for TTS."""

    task_id: str
    stage: str
    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    score: float | None = None
    uid: int | None = None
    audio: bytes | None = None
    content_type: str | None = None


async def read_bounded_body(resp: aiohttp.ClientResponse) -> bytes:
    """The body, refused (ProxyError ``response_too_large``) once it passes MAX_JSON_BYTES."""
    data = await read_bounded(resp, MAX_JSON_BYTES)
    if data is None:
        raise ProxyError(resp.status, "response_too_large", f"response body over {MAX_JSON_BYTES} bytes")
    return data


def loads(raw: bytes) -> Any:
    """JSON, or ValueError (also for nesting deeper than the parser's stack)."""
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


async def read_json(resp: aiohttp.ClientResponse) -> Any:
    try:
        return loads(await read_bounded_body(resp))
    except ValueError as exc:
        raise ProxyError(resp.status, "invalid_response", f"response is not JSON: {exc}"[:500]) from exc


async def raise_for_error(resp: aiohttp.ClientResponse) -> None:
    if resp.status < 300:
        return
    if resp.status < 400:  # never followed: a redirect could re-send a signed body anywhere
        raise ProxyError(resp.status, "redirect_refused", "the server answered a redirect; redirects are not followed")
    raw = await read_bounded_body(resp)
    try:
        error = loads(raw)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", raw[:500].decode("utf-8", "replace")
    raise ProxyError(resp.status, code, message)
