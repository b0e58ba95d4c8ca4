"""The fan-out client: one signed synapse sent to many axons at once, answers yielded as they land.

Speaks the wire protocol of bittensor 10.5's ``Dendrite`` byte for byte (same URL, the same
``bt_header_*`` headers, the same sr25519 signature over nonce, hotkeys, uuid and body hash, the
same JSON body), so stock axons accept it; what differs is the cost and the failure handling:

- the synapse is serialized, hashed and its headers built ONCE per fan-out; each axon only adds its
  own terminal headers and signature (stock bittensor redoes all of it, schema included, per axon);
- one shared session with bounded connections, kept alive across fan-outs (an idle one for less
  than the 5 s after which a stock axon's uvicorn closes it: ``outbound.KEEPALIVE_S``), through
  ``outbound.OutboundHTTP``: a miner's redirect is never followed (a 3xx is an ``http_error``: a 307
  would re-POST the client's input and our signed headers anywhere, and the reply would be taken as
  that miner's answer), and outside local mode only public axon addresses are connected to
  (``OutboundPolicy``; the resync skips the others before any task is sent, see ``loops``);
- a request whose connection drops before any answer is sent once more, freshly signed, on a new
  connection: a kept-alive connection the axon closes just as we write on it is reset, and that is
  no fault of the miner's (``outbound.resend_on_drop``);
- a response body limit: a Content-Length over it is refused unread, a chunked body is cut off at it;
- results come back AS THEY COMPLETE, with the latency this validator measured, and every failure
  is a classified :class:`AxonResult` (timeout, unreachable, http status, oversize, invalid), never
  an exception;
- nonces never collide: the axon refuses a nonce not above the last one it saw for a
  (hotkey, uuid) pair, so concurrent requests to one axon could overtake each other and be refused.
  Each in-flight request to an axon holds its own "lane" uuid, reused once that request finished,
  so requests on one lane are strictly sequential and the axon's nonce table stays small.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import bittensor as bt
from bittensor.core.settings import version_as_int
from bittensor_wallet import Keypair
from pydantic import ValidationError

from subnet_proxy.chain import Neuron
from subnet_proxy.outbound import OutboundHTTP, OutboundPolicy, read_bounded, refused_address, resend_on_drop

#: room for the terminal headers an axon adds to the echoed request in its answer.
TERMINAL_SLACK_BYTES = 16 * 1024
#: connections the shared session keeps at most (all axons together), and per axon.
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_MAX_PER_AXON = 8

Outcome = Literal["ok", "timeout", "unreachable", "http_error", "oversize", "invalid"]


@dataclass(frozen=True, slots=True)
class AxonResult:
    """One axon's answer to one fan-out: the validated synapse, or why there is none."""

    uid: int
    hotkey: str
    outcome: Outcome
    latency_s: float
    synapse: bt.Synapse | None = None
    status_code: int | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What is shared by every request of one fan-out."""

    cls: type[bt.Synapse]
    request: bt.Synapse
    url_path: str
    headers: dict[str, str]
    body_head: bytes
    body_hash: str
    timeout: float
    max_body_bytes: int


def output_fields(cls: type[bt.Synapse]) -> tuple[str, ...]:
    """Fields a miner fills: neither bittensor's own nor the hashed inputs."""
    hashed = set(getattr(cls, "required_hash_fields", ()))
    return tuple(f for f in cls.model_fields if f not in bt.Synapse.model_fields and f not in hashed)


class FanoutDendrite:
    """Queries many axons concurrently over one session; see the module docstring for why."""

    def __init__(
        self,
        keypair: Keypair,
        *,
        external_ip: str,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_per_axon: int = DEFAULT_MAX_PER_AXON,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        """``outbound``: where axons may be; default public addresses only (local mode passes
        ``OutboundPolicy(allow_private=True)``)."""
        self.keypair = keypair
        self.hotkey = keypair.ss58_address
        self.external_ip = external_ip
        self._http = OutboundHTTP(outbound or OutboundPolicy(), timeout=aiohttp.ClientTimeout(total=None),
                                  max_connections=max_connections, max_per_host=max_per_axon, auto_decompress=False)
        self._lanes: dict[str, list[str]] = {}
        self._last_nonce = 0

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> "FanoutDendrite":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public -------------------------------------------------------------------------------------
    async def fanout(
        self,
        synapse: bt.Synapse,
        targets: Sequence[Neuron],
        *,
        timeout: float,
        max_output_bytes: int,
    ) -> AsyncGenerator[AxonResult, None]:
        """Send ``synapse`` to every target at once; yield each result the moment it is complete.

        Stopping early (``break`` inside ``contextlib.aclosing``) cancels the requests still open.
        An answer may be as large as the request (axons echo the inputs back) plus
        ``max_output_bytes``; anything larger is refused unread.
        """
        prepared = self._prepare(synapse, timeout, max_output_bytes)
        pending = {asyncio.ensure_future(self._call(prepared, target)) for target in targets}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def query(
        self, synapse: bt.Synapse, targets: Sequence[Neuron], *, timeout: float, max_output_bytes: int
    ) -> list[AxonResult]:
        """Every result, in completion order."""
        return [r async for r in self.fanout(synapse, targets, timeout=timeout, max_output_bytes=max_output_bytes)]

    # -- one fan-out's shared part ------------------------------------------------------------------
    def _prepare(self, synapse: bt.Synapse, timeout: float, max_output_bytes: int) -> _Prepared:
        request = synapse.model_copy(deep=False)
        request.timeout = timeout
        request.dendrite = bt.TerminalInfo()
        request.axon = bt.TerminalInfo()
        headers = request.to_headers()
        # Terminal headers differ per axon; keep only the shared ones (name, timeout, inputs, hash, sizes).
        headers = {
            k: v for k, v in headers.items() if not k.startswith(("bt_header_axon_", "bt_header_dendrite_"))
        }
        headers["Content-Type"] = "application/json"
        body = request.model_dump()
        del body["axon"], body["dendrite"]
        encoded = json.dumps(body).encode()
        return _Prepared(
            cls=type(synapse),
            request=request,
            url_path=f"/{type(synapse).__name__}",
            headers=headers,
            body_head=encoded[:-1],  # without the closing brace: each axon appends its terminals
            body_hash=headers["computed_body_hash"],
            timeout=timeout,
            max_body_bytes=len(encoded) + TERMINAL_SLACK_BYTES + max_output_bytes,
        )

    def _nonce(self) -> int:
        self._last_nonce = max(time.time_ns(), self._last_nonce + 1)
        return self._last_nonce

    def _take_lane(self, hotkey: str) -> str:
        free = self._lanes.setdefault(hotkey, [])
        return free.pop() if free else str(uuid.uuid4())

    def _signed(self, prepared: _Prepared, target: Neuron, lane: str) -> tuple[dict[str, str], bytes]:
        nonce = self._nonce()
        message = f"{nonce}.{self.hotkey}.{target.hotkey}.{lane}.{prepared.body_hash}"
        dendrite = {
            "status_code": None, "status_message": None, "process_time": None,
            "ip": self.external_ip, "port": None, "version": version_as_int, "nonce": nonce,
            "uuid": lane, "hotkey": self.hotkey, "signature": f"0x{self.keypair.sign(message).hex()}",
        }
        axon = {
            "status_code": None, "status_message": None, "process_time": None,
            "ip": target.ip, "port": target.port, "version": None, "nonce": None,
            "uuid": None, "hotkey": target.hotkey, "signature": None,
        }
        headers = dict(prepared.headers)
        headers.update({f"bt_header_axon_{k}": str(v) for k, v in axon.items() if v is not None})
        headers.update({f"bt_header_dendrite_{k}": str(v) for k, v in dendrite.items() if v is not None})
        body = b"".join((prepared.body_head, b', "axon": ', json.dumps(axon).encode(),
                         b', "dendrite": ', json.dumps(dendrite).encode(), b"}"))
        return headers, body

    # -- one axon -----------------------------------------------------------------------------------
    async def _send(self, prepared: _Prepared, target: Neuron, lane: str) -> aiohttp.ClientResponse:
        """POST the signed synapse; once more, signed anew, when the connection drops before an answer
        (a miner is not scored unreachable for a race of two idle timers: ``resend_on_drop``)."""
        url = f"http://{target.ip}:{target.port}{prepared.url_path}"

        def send() -> Any:
            headers, body = self._signed(prepared, target, lane)
            return self._http.post(url, data=body, headers=headers)

        return await resend_on_drop(send)

    async def _call(self, prepared: _Prepared, target: Neuron) -> AxonResult:
        lane = self._take_lane(target.hotkey)
        start = time.perf_counter()

        def result(outcome: Outcome, **kw: Any) -> AxonResult:
            return AxonResult(uid=target.uid, hotkey=target.hotkey, outcome=outcome,
                              latency_s=time.perf_counter() - start, **kw)

        try:
            async with asyncio.timeout(prepared.timeout):
                async with await self._send(prepared, target, lane) as response:
                    raw = await read_bounded(response, prepared.max_body_bytes)
                    if raw is None:
                        return result("oversize", status_code=response.status,
                                      message=f"answer larger than {prepared.max_body_bytes} bytes")
                    if response.status != 200:
                        return result("http_error", status_code=response.status,
                                      message=_error_message(raw, response))
            return _parsed(prepared, raw, result)
        except TimeoutError:
            return result("timeout", message=f"no answer within {prepared.timeout:.2f}s")
        except (aiohttp.ClientConnectionError, OSError) as exc:
            if refused_address(exc):
                return result("unreachable", message=f"axon {target.ip} is a non-public address; not contacted")
            return result("unreachable", message=f"{type(exc).__name__}: {exc}"[:300])
        except aiohttp.ClientError as exc:
            return result("invalid", message=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self._lanes[target.hotkey].append(lane)


def _error_message(raw: bytes, response: aiohttp.ClientResponse) -> str:
    """The axon's own explanation: its JSON ``message``, else its status header, else the reason."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"][:300]
    return (response.headers.get("bt_header_axon_status_message") or response.reason or "")[:300]


def _parsed(prepared: _Prepared, raw: bytes, result: Any) -> AxonResult:
    """Validate the miner's outputs only (the echoed inputs are ours already) against the protocol."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # a hostile miner can nest past the parser's stack
        return result("invalid", status_code=200, message=f"answer is not JSON: {exc}"[:300])
    if not isinstance(payload, dict):
        return result("invalid", status_code=200, message="answer is not a JSON object")
    answer = prepared.request.model_copy(deep=False)
    try:
        for name in output_fields(prepared.cls):
            if name in payload:
                setattr(answer, name, payload[name])  # validate_assignment: each output checked
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return result("invalid", status_code=200, message=f"{where}: {first['msg']}"[:300])
    return result("ok", status_code=200, synapse=answer)
