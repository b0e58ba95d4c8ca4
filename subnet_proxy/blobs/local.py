"""The embedded BlobStore: content-addressed files under one folder, written atomically.

A blob lives at ``ROOT/ab/cd/<key>`` (the first two byte pairs of its SHA-256 key shard the folder)
with its content type beside it in ``<key>.type``. Keys from outside pass ``check_key`` first (64 hex
characters), so no name can reach outside the root. Writes go to a temporary file in the same folder
and are renamed into place (``os.replace``), so a reader sees the whole blob or none, and two writers
of the same bytes both succeed. Reads are verified against the key: a changed file is ``BlobCorrupt``,
never served as if it were good. File I/O runs in worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncGenerator
from pathlib import Path

from subnet_proxy.atomic_file import write_bytes_atomic
from subnet_proxy.blobs.base import BlobCorrupt, BlobNotFound, BlobRef, BlobStore, blob_key, check_key

DEFAULT_CONTENT_TYPE = "application/octet-stream"
_TYPE_SUFFIX = ".type"


class LocalBlobStore(BlobStore):
    """BlobStore on the local file system (one machine; several processes may share the folder)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        """Where the blob of ``key`` lives; raises InvalidBlobKey for anything but a content key."""
        key = check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def _put(self, data: bytes, content_type: str) -> BlobRef:
        key = blob_key(data)
        path = self.path_for(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # the type first: a blob visible under its key always has its type beside it
            write_bytes_atomic(path.with_name(key + _TYPE_SUFFIX), content_type.encode())
            write_bytes_atomic(path, data)
        return BlobRef(key=key, size=len(data), content_type=self._content_type(path))

    @staticmethod
    def _content_type(path: Path) -> str:
        try:
            return path.with_name(path.name + _TYPE_SUFFIX).read_text().strip() or DEFAULT_CONTENT_TYPE
        except FileNotFoundError:
            return DEFAULT_CONTENT_TYPE

    def _get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        if blob_key(data) != key:
            raise BlobCorrupt(f"blob {key}: stored bytes do not match the key")
        return data

    def _stat(self, key: str) -> BlobRef | None:
        path = self.path_for(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        return BlobRef(key=key, size=size, content_type=self._content_type(path))

    def _delete(self, key: str) -> bool:
        path = self.path_for(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        path.with_name(key + _TYPE_SUFFIX).unlink(missing_ok=True)
        return True

    def _ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"blob folder {self.root} is not writable")

    async def put(self, data: bytes, *, content_type: str) -> BlobRef:
        if not content_type or len(content_type) > 255 or not content_type.isprintable():
            raise ValueError("content_type must be a short printable string")
        return await asyncio.to_thread(self._put, bytes(data), content_type)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        """Chunks as read; the hash is checked as they go and BlobCorrupt raised after the last one
        when it does not match (a server can then abort the response instead of ending it cleanly)."""
        path = self.path_for(key)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        digest = hashlib.sha256()
        try:
            while chunk := await asyncio.to_thread(fh.read, chunk_size):
                digest.update(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)
        if digest.hexdigest() != key:
            raise BlobCorrupt(f"blob {key}: stored bytes do not match the key")

    async def stat(self, key: str) -> BlobRef | None:
        return await asyncio.to_thread(self._stat, key)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)

    async def signed_url(self, key: str, *, expires_s: int) -> str | None:
        check_key(key)
        return None

    async def ping(self) -> None:
        await asyncio.to_thread(self._ping)

    async def close(self) -> None:
        """Nothing is held open between calls."""
