"""The one guarded HTTP client for every request this system sends to an address someone else chose.

A miner's late delivery goes to a URL a validator named; the validator's dendrite goes to axons a
miner announced; peer-validator calls and webhooks will go to URLs others configure. Any of them
could aim us at loopback, a private network or a cloud metadata service. So every outbound request
goes through :class:`OutboundHTTP`, which holds three promises:

- **no redirects**: a 3xx is the answer, never followed (a 307 would re-POST a signed body
  elsewhere, a 303 turn it into a GET of a metadata path);
- **the address checked is the address connected to** (pinned resolution): a name is resolved
  once per connection, every address it gives must be public, and the socket is refused at its
  creation unless the exact address it is about to connect to is public; a name that answers a
  public address and then 127.0.0.1 (DNS rebinding) cannot slip between a check and a connect;
- **bounded**: connections capped, timeouts from the caller, bodies read whole up to the caller's
  limit and no further (``read_bounded``).

A request whose kept-alive connection the other side closed just as it was written on can be sent
once more on a new connection by its caller (``resend_on_drop``), when asking twice is harmless.

Local mode (loopback subnets, tests) allows private addresses explicitly: ``OutboundPolicy
(allow_private=True)`` is passed down by whoever builds the client, never a global.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

#: connections one client keeps at most, all hosts together.
DEFAULT_MAX_CONNECTIONS = 100
#: a name's checked addresses are reused this long (the check holds for what is cached).
DNS_CACHE_S = 10
#: how long an idle connection is reused: under the idle timeouts servers close connections at (5 s:
#: uvicorn, a stock axon's server, and Node; 15 s: this project's side-server and the README's reverse
#: proxies; 60-75 s: nginx, aiohttp), so a connection is rarely picked up just as its server shuts it.
KEEPALIVE_S = 4.0

AddrInfo = tuple[Any, ...]


class AddressRefused(OSError):
    """The destination is not a public address (and the policy does not allow private ones)."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where outbound requests may go. ``allow_private``: loopback, private, link-local and other
    non-global addresses too (local mode only)."""

    allow_private: bool = False


def is_public(address: str) -> bool:
    """True for a globally routable IP address (not loopback, private, link-local, reserved,
    multicast or unspecified); False for anything that is not an IP address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_address(address: str, policy: OutboundPolicy) -> None:
    """Raise AddressRefused unless the policy allows connecting to ``address``."""
    if not policy.allow_private and not is_public(address):
        raise AddressRefused(f"refused to connect to non-public address {address}")


class GuardedResolver(AbstractResolver):
    """Resolves a name once (``loop.getaddrinfo``, as aiohttp's threaded resolver does) and refuses it
    unless every address it gives is allowed: a name with one private answer is refused whole."""

    def __init__(self, policy: OutboundPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            check_address(result["host"], self.policy)
        return results

    async def close(self) -> None:
        await self.inner.close()


def guarded_socket_factory(policy: OutboundPolicy) -> Callable[[AddrInfo], socket.socket]:
    """The socket for one connection attempt, made only when its exact destination is allowed: the
    last check, on the address itself (IP literals never reach a resolver)."""

    def make(addr_info: AddrInfo) -> socket.socket:
        family, type_, proto, _, address = addr_info
        check_address(str(address[0]), policy)
        return socket.socket(family=family, type=type_, proto=proto)

    return make


class OutboundHTTP:
    """An aiohttp session whose requests never follow redirects and connect only where the policy
    allows. ``request``/``get``/``post`` take aiohttp's arguments except ``allow_redirects``."""

    def __init__(self, policy: OutboundPolicy, *, timeout: aiohttp.ClientTimeout | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, max_per_host: int = 0,
                 keepalive_s: float = KEEPALIVE_S, auto_decompress: bool = True,
                 resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._timeout = timeout or aiohttp.ClientTimeout(total=60)
        self._limits = (max_connections, max_per_host, keepalive_s)
        self._auto_decompress = auto_decompress
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            limit, per_host, keepalive = self._limits
            connector = aiohttp.TCPConnector(
                limit=limit, limit_per_host=per_host, keepalive_timeout=keepalive, ttl_dns_cache=DNS_CACHE_S,
                resolver=GuardedResolver(self.policy, self._resolver),
                socket_factory=guarded_socket_factory(self.policy),
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  auto_decompress=self._auto_decompress, trust_env=False)
        return self._session

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.pop("allow_redirects", False):
            raise ValueError("outbound requests never follow redirects")
        return self.session.request(method, url, allow_redirects=False, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None (connection dropped, rest unread) when it is larger than ``limit``:
    an answer from an address someone else chose is never buffered past what the caller allows."""
    if response.content_length is not None and response.content_length > limit:
        response.close()
        return None
    buf = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            response.close()
            return None
    return bytes(buf)


async def resend_on_drop(send: Callable[[], Awaitable[aiohttp.ClientResponse]]) -> aiohttp.ClientResponse:
    """``send()``'s response; ``send()`` once more when the connection drops before any answer.

    A kept-alive connection that the server closes as we write on it (uvicorn, a stock axon's server,
    closes one idle for 5 s; nginx after its ``keepalive_timeout``) is reset or ends before a status
    line: nothing was answered, and the server is not at fault. aiohttp sends such a request again
    for idempotent methods only (RFC 9112, section 9.3.1); the callers here POST requests that are
    harmless to ask twice (a synapse, a peer's evaluation, a webhook event its receiver deduplicates
    by id, a client's submit under its Idempotency-Key), and ``send`` signs each try anew, so a
    replay check passes the second and still refuses a copy of either. A failure to connect
    (``ClientConnectorError``) is the server being down, and is not tried again.
    """
    try:
        return await send()
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        return await send()


def refused_address(exc: BaseException) -> bool:
    """True when a connection error is (or was caused by) this module's address check."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return True
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(seen.os_error, AddressRefused):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
