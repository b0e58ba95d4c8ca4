"""Signed calls to a peer validator's side-server: its done tasks, their audio, this validator's evaluation.

Every request goes through the guarded outbound client (no redirects, checked addresses) and is
signed for the peer's hotkey (``signing.sign_request``: a request cannot be replayed elsewhere).
Answers are parsed into the wire models; anything else is a ``PeerError`` carrying the status, the
error code the peer sent and its ``Retry-After``, so the loop can tell a refusal of one evaluation
(409: already evaluated, task closed) from a peer to back off (429, 5xx, unreachable).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

import aiohttp
from bittensor_wallet import Keypair
from pydantic import BaseModel, ValidationError

from subnet_proxy.api.schemas import EvaluationOutcome, EvaluationRequest, ValidatorTaskPage
from subnet_proxy.blobs.base import blob_key, check_key
from subnet_proxy.outbound import OutboundHTTP, read_bounded, resend_on_drop
from subnet_proxy.signing import sign_request
from subnet_proxy.validator.peers import Peer

M = TypeVar("M", bound=BaseModel)

#: the listing's page size (its maximum).
PAGE_SIZE = 100
#: the largest error body read (the JSON error envelope).
MAX_ERROR_BYTES = 4096


class PeerError(Exception):
    """A peer call failed: ``status`` 0 when no HTTP answer came (unreachable, timed out, refused address)."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def back_off(self) -> bool:
        """The peer is overloaded or unreachable: stop calling it for a while."""
        return self.status in (0, 429) or self.status >= 500


class PeerClient:
    """Signed requests as ``keypair`` to peers; ``max_blob_bytes`` bounds one audio download."""

    def __init__(self, keypair: Keypair, http: OutboundHTTP, *, max_blob_bytes: int, timeout_s: float) -> None:
        self.keypair = keypair
        self.http = http
        self.max_blob_bytes = max_blob_bytes
        self.timeout_s = timeout_s

    async def tasks(self, peer: Peer, cursor: str | None) -> ValidatorTaskPage:
        query = f"?limit={PAGE_SIZE}" + (f"&cursor={cursor}" if cursor else "")
        return await self._call(peer, "GET", "/api/v1/validator/tasks" + query, b"", ValidatorTaskPage)

    async def evaluate(self, peer: Peer, request: EvaluationRequest) -> EvaluationOutcome:
        body = request.model_dump_json().encode()
        return await self._call(peer, "POST", "/api/v1/validator/evaluation", body, EvaluationOutcome)

    async def blob(self, peer: Peer, path: str) -> bytes:
        """The audio a listing names (``/api/v1/validator/blobs/<key>``), checked against its key."""
        prefix = "/api/v1/validator/blobs/"
        if not path.startswith(prefix):
            raise PeerError(0, "bad_listing", f"an audio URL outside the blob endpoint: {path[:100]!r}")
        key = check_key(path.removeprefix(prefix))
        data = await self._send(peer, "GET", path, b"", limit=self.max_blob_bytes)
        if blob_key(data) != key:
            raise PeerError(200, "bad_blob", f"blob {key} does not hash to its key")
        return data

    async def _call(self, peer: Peer, method: str, path: str, body: bytes, model: type[M]) -> M:
        data = await self._send(peer, method, path, body, limit=self.max_blob_bytes)
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            raise PeerError(200, "bad_answer", f"{path}: {exc.error_count()} invalid field(s)") from exc

    async def _send(self, peer: Peer, method: str, path: str, body: bytes, *, limit: int) -> bytes:
        """The answer's body; a call (a try, and one more on a dropped connection) takes ``timeout_s`` at most."""
        def send() -> Any:  # signed anew for each try: the peer refuses a nonce it has seen
            headers = sign_request(self.keypair, body, peer.hotkey)
            if body:
                headers["Content-Type"] = "application/json"
            return self.http.request(method, peer.url + path, data=body or None, headers=headers)

        try:
            async with asyncio.timeout(self.timeout_s), await resend_on_drop(send) as resp:
                if resp.status != 200:
                    raise await _refusal(resp)
                data = await read_bounded(resp, limit)  # to the end: one read() is one chunk's worth
                if data is None:
                    raise PeerError(resp.status, "too_large", f"{path}: over {limit} bytes")
                return data
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PeerError(0, "unreachable", f"{peer.url}: {type(exc).__name__}: {exc}") from exc


async def _refusal(resp: aiohttp.ClientResponse) -> PeerError:
    """The peer's JSON error envelope as a PeerError (its code, else ``http_<status>``)."""
    code, message = f"http_{resp.status}", resp.reason or ""
    try:
        error = json.loads(await resp.content.read(MAX_ERROR_BYTES))["error"]
        code, message = str(error["code"])[:64], str(error["message"])[:300]
    except (ValueError, KeyError, TypeError):
        pass
    retry = resp.headers.get("Retry-After")
    try:
        retry_after = float(retry) if retry else None
    except ValueError:
        retry_after = None
    return PeerError(resp.status, code, message, retry_after=retry_after)
