"""The BlobStore interface: content-addressed files (audio inputs, TTS outputs) on disk or in GCS.

Keys are the SHA-256 hex digest of the content, so a name from outside can never point anywhere
but at a blob (``check_key``), an upload is idempotent, and a download can be verified.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass

_KEY = re.compile(r"[0-9a-f]{64}")


class BlobError(Exception):
    """Base of the blob store's errors."""


class BlobNotFound(BlobError):
    def __init__(self, key: str) -> None:
        super().__init__(f"blob {key} not found")
        self.key = key


class InvalidBlobKey(BlobError):
    def __init__(self, key: str) -> None:
        super().__init__("blob key must be 64 lowercase hex characters")
        self.key = key


class BlobCorrupt(BlobError):
    """The stored bytes no longer hash to their key."""


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    """Return ``key`` if it is a well-formed content key, else raise InvalidBlobKey."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidBlobKey(str(key)[:80])
    return key


@dataclass(frozen=True, slots=True)
class BlobRef:
    key: str
    size: int
    content_type: str


class BlobStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, data: bytes, *, content_type: str) -> BlobRef:
        """Store ``data`` under its content key; storing the same bytes twice is a no-op."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes:
        """The whole blob, verified against its key; BlobNotFound if absent."""

    @abc.abstractmethod
    def stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        """The blob in chunks, for serving large files without holding them in memory."""

    @abc.abstractmethod
    async def stat(self, key: str) -> BlobRef | None:
        """Size and content type, or None if absent."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Delete; False when it was already gone."""

    @abc.abstractmethod
    async def signed_url(self, key: str, *, expires_s: int) -> str | None:
        """A URL a client may fetch directly, or None when this backend cannot sign (serve it
        through the proxy instead)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise when the backend cannot be reached (readiness)."""

    @abc.abstractmethod
    async def close(self) -> None: ...
