"""Late answers: a job that outlasted its synapse, delivered signed to the validator that asked for it.

A synapse may name its ``task_id`` and a ``delivery_url`` (both covered by the body hash the axon
checked, in a request whose signature and caller the axon and the blacklist already accepted). When
the engine cannot finish within the synapse timeout, the miner answers the synapse empty and keeps
working; once done, the answer goes to exactly that URL, signed with the miner's hotkey for that
validator's hotkey (``client.ProxyClient.miner_response``), so it is useless anywhere else. Only a
URL from such a synapse is ever used: the miner never delivers to an address it was not given by a
validator it answered.

Outside local mode (``public_only``) the URL's host must resolve to public addresses only: a
permitted validator cannot turn miners into a relay towards their own loopback, private network or
a cloud metadata service. The promise is held by ``outbound.OutboundHTTP`` (through
``ProxyClient``): no redirect is ever followed (a 3xx is a final refusal), and the address connected
to is the address checked, so a name that answers a public address and then 127.0.0.1 cannot slip
through between the check and the connect.

Delivery is best effort with bounded retries: a network error or a 5xx/429 is retried with a
doubling pause; a refusal (403 not assigned, 409 already answered or task closed, 400, a redirect,
a refused address) is final. Nothing here raises into the axon: every outcome is logged, by status
and error code only: the reply body of a server someone else named is never written to our logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from bittensor_wallet import Keypair
from pydantic import ValidationError

from subnet_proxy.client import ProxyClient, ProxyError
from subnet_proxy.outbound import OutboundPolicy, is_public, refused_address

log = logging.getLogger(__name__)

T = TypeVar("T")

#: statuses worth another try: the validator is busy or briefly failing.
_RETRYABLE = frozenset({429, 500, 502, 503, 504})
#: an error code as the side-server writes them; anything else from a reply is not logged.
_CODE = re.compile(r"^[a-z_]{1,64}$")


@dataclass(frozen=True, slots=True)
class LateAnswer:
    """The output of a finished job, in the miner-response endpoint's terms."""

    text: str | None = None
    segments: list[dict[str, Any]] | None = None
    audio: bytes | None = None
    audio_format: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    attempts: int = 4
    first_pause_s: float = 1.0
    request_timeout_s: float = 30.0
    #: deliver only to hosts that resolve to public addresses (off in local mode, where all is loopback).
    public_only: bool = True


@dataclass(frozen=True, slots=True)
class Destination:
    """Where and for whom a late answer goes: all three from one accepted synapse."""

    task_id: str
    url: str
    validator_hotkey: str


class Deliverer:
    """Delivers late answers in the background of the axon's event loop; ``pending`` counts those in flight."""

    def __init__(self, keypair: Keypair, policy: DeliveryPolicy | None = None) -> None:
        self.keypair = keypair
        self.policy = policy or DeliveryPolicy()
        self._pending: set[asyncio.Future[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def later(self, job: asyncio.Future[T], answer: Callable[[T], LateAnswer], to: Destination) -> None:
        """When ``job`` finishes, deliver ``answer(result)`` to ``to``; a failed job delivers nothing."""
        delivery = asyncio.ensure_future(self._deliver(job, answer, to))
        self._pending.add(delivery)
        delivery.add_done_callback(self._pending.discard)

    async def _deliver(self, job: asyncio.Future[T], answer: Callable[[T], LateAnswer], to: Destination) -> None:
        await asyncio.wait([job])
        if job.cancelled() or job.exception() is not None:
            log.info("task %s: the late job failed; nothing to deliver", to.task_id)  # the service logged why
            return
        if self.policy.public_only and not await resolves_to_public(to.url):
            log.warning("task %s: delivery URL %s does not resolve to public addresses only; not delivered",
                        to.task_id, to.url)
            return
        late = answer(job.result())
        pause = self.policy.first_pause_s
        for attempt in range(1, self.policy.attempts + 1):
            if await self._post(late, to, attempt):
                return
            if attempt < self.policy.attempts:
                await asyncio.sleep(pause)
                pause *= 2
        log.warning("task %s: late answer not delivered after %d attempts", to.task_id, self.policy.attempts)

    async def _post(self, late: LateAnswer, to: Destination, attempt: int) -> bool:
        """One attempt; True when the answer is delivered or refused for good (no retry helps)."""
        client = ProxyClient(to.url, keypair=self.keypair, receiver_hotkey=to.validator_hotkey,
                             timeout_s=self.policy.request_timeout_s,
                             outbound=OutboundPolicy(allow_private=not self.policy.public_only))
        try:
            accepted = await client.miner_response(to.task_id, text=late.text, segments=late.segments,
                                                   audio=late.audio, audio_format=late.audio_format, url=to.url)
        except ProxyError as exc:
            reason = f"{exc.status} {exc.code if _CODE.match(exc.code) else 'unrecognised error'}"
            if exc.status in _RETRYABLE:
                log.info("task %s: delivery attempt %d refused for now: %s", to.task_id, attempt, reason)
                return False
            log.warning("task %s: late answer refused: %s", to.task_id, reason)
            return True
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if refused_address(exc):
                log.warning("task %s: delivery URL %s connects to a non-public address; not delivered",
                            to.task_id, to.url)
                return True
            log.info("task %s: delivery attempt %d failed: %s", to.task_id, attempt, type(exc).__name__)
            return False
        except ValidationError as exc:
            log.warning("task %s: the validator answered the delivery with an unexpected body (%d errors)",
                        to.task_id, exc.error_count())
            return True
        finally:
            await client.close()
        log.info("task %s: late answer delivered (first valid: %s)", to.task_id, accepted.first)
        return True


async def resolves_to_public(url: str) -> bool:
    """True when every address the URL's host resolves to is globally routable (no loopback,
    private, link-local, reserved or multicast address); False when it does not resolve. An early,
    clearly logged refusal only: the connection itself is checked again on the address it uses."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(is_public(address) for address in addresses)
