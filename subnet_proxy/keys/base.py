"""The KeyStore interface: client and admin API keys, stored only as hashes, with per-key limits and
daily quotas.

A key is shown once, when it is created; the store keeps ``sha256(key)``. Keys are 256-bit random
strings, so a plain (unsalted) hash is safe against guessing and lets a lookup go straight to the
row; the final comparison is constant-time anyway.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from subnet_proxy.tasks import utcnow

KEY_PREFIX = "sp_"


class Role(StrEnum):
    CLIENT = "client"
    ADMIN = "admin"
    #: reads the operator dashboard only (``/dashboard``): no task submission, no key management.
    VIEWER = "viewer"


class KeyNotFound(LookupError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} not found")
        self.key_id = key_id


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public record. ``None`` limits mean the server's defaults (settings.proxy)."""

    key_id: str
    name: str
    role: Role
    key_hash: str = field(repr=False)
    created_at: datetime
    rate_per_s: float | None = None
    burst: int | None = None
    max_in_flight: int | None = None
    revoked_at: datetime | None = None
    #: daily quotas (UTC days; None: none): tasks, seconds of input audio, characters of input text.
    daily_tasks: int | None = None
    daily_audio_s: float | None = None
    daily_chars: int | None = None
    #: signs this key's webhook events (None: the validator's secret). Kept as is: HMAC needs it.
    webhook_secret: str | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(api_key: ApiKey, key: str) -> bool:
    return hmac.compare_digest(api_key.key_hash, hash_key(key))


def new_key() -> tuple[str, str]:
    """(key_id, plaintext key) of a fresh random key."""
    key_id = "k_" + secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"


def new_webhook_secret() -> str:
    """A fresh webhook signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def seeded_key_id(key: str) -> str:
    """A stable id for a key given in configuration (the same flag gives the same id every start)."""
    return "seed_" + hash_key(key)[:12]


class KeyStore(abc.ABC):
    """API keys by hash. Implementations: SQLite (``keys.sqlite``), Firestore (``keys.firestore``); one
    conformance suite (``tests/keys``) runs against both."""

    async def create(
        self,
        *,
        name: str,
        role: Role,
        rate_per_s: float | None = None,
        burst: int | None = None,
        max_in_flight: int | None = None,
        daily_tasks: int | None = None,
        daily_audio_s: float | None = None,
        daily_chars: int | None = None,
        webhook_secret: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the plaintext, which is never stored or shown again."""
        key_id, key = new_key()
        api_key = ApiKey(key_id=key_id, key_hash=hash_key(key), name=name, role=role, created_at=utcnow(),
                         rate_per_s=rate_per_s, burst=burst, max_in_flight=max_in_flight, daily_tasks=daily_tasks,
                         daily_audio_s=daily_audio_s, daily_chars=daily_chars, webhook_secret=webhook_secret)
        await self._insert(api_key)
        return api_key, key

    @abc.abstractmethod
    async def _insert(self, api_key: ApiKey) -> None:
        """Store a new key record (its id is fresh, so this never overwrites one)."""

    @abc.abstractmethod
    async def seed(self, key: str, *, role: Role, name: str) -> ApiKey:
        """Make a configured plaintext key valid (idempotent; re-activates a revoked seed)."""

    @abc.abstractmethod
    async def authenticate(self, key: str) -> ApiKey | None:
        """The active key whose hash matches, or None."""

    @abc.abstractmethod
    async def get(self, key_id: str) -> ApiKey:
        """The key record, or KeyNotFound."""

    @abc.abstractmethod
    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]: ...

    @abc.abstractmethod
    async def revoke(self, key_id: str, *, at: datetime | None = None) -> ApiKey:
        """Revoke (KeyNotFound if unknown); revoking twice keeps the first time."""

    @abc.abstractmethod
    async def set_webhook_secret(self, key_id: str, secret: str | None) -> ApiKey:
        """Set (or with None clear) the key's webhook secret; KeyNotFound if unknown."""

    @abc.abstractmethod
    async def close(self) -> None: ...
