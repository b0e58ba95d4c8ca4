"""The embedded BlobStore: content-addressed blobs under one folder, small ones in a SQLite file.

A blob of at most ``small_max`` bytes (``SMALL_BLOB_BYTES``: an uploaded clip, most TTS answers) is
a row of ``ROOT/blobs.db``; a larger one is the file ``ROOT/ab/<key>`` (the first byte pair of its
SHA-256 key shards the folder). Why two homes: on the machines measured here, creating a file cost
0.05-0.5 ms of kernel time (the inode, the directory entry, the journal; the more so the more dirty
pages the disk had to write back), several times what the whole rest of an upload's handling
cost, while appending a small blob to a SQLite WAL cost a few tens of microseconds, and SQLite's own
measurements put blobs under about 100 KB faster in a database than in files. Large blobs stay
files: they stream from disk and never bloat the database.

Keys from outside pass ``check_key`` first (64 hex characters), so no name can reach outside the
root. A row is written in one transaction (group-committed with its neighbours on the event loop,
``SQLiteWorker`` quick writes); a file goes to a temporary name in its folder and is renamed into
place (``os.replace``). Either way a reader sees the whole blob or none, and two writers of the same
bytes both succeed. Reads are verified against the key: changed bytes are ``BlobCorrupt``, never
served as if they were good. A file's content type is the one its bytes name (every audio container
names itself: ``sniff_format``); only a type the bytes do not say is kept beside it in
``<key>.type``. File I/O runs in worker threads.

Durability follows the task store's (``--store.fsync``): by default a stored blob survives any crash
of the process, like a SQLite commit in WAL mode; ``durable`` flushes each blob (row commit, or file
and folder) to disk before ``put`` returns, so a task committed after it never outlives its input in
a power loss.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO

from protocol import mime_type, sniff_format
from subnet_proxy.atomic_file import write_bytes_atomic
from subnet_proxy.blobs.base import BlobCorrupt, BlobNotFound, BlobRef, BlobStore, blob_key, check_key
from subnet_proxy.sqlite_worker import SQLiteWorker

DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: the largest blob kept in the database; larger ones are files.
SMALL_BLOB_BYTES = 128 * 1024
_TYPE_SUFFIX = ".type"
#: bytes ``sniff_format`` looks at.
_HEAD = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL
)
"""


def _named_type(head: bytes) -> str:
    """The content type the first bytes of a blob name (an audio container's), else the default."""
    fmt = sniff_format(head)
    return mime_type(fmt) if fmt is not None else DEFAULT_CONTENT_TYPE


def _verified(key: str, data: bytes) -> bytes:
    if blob_key(data) != key:
        raise BlobCorrupt(f"blob {key}: stored bytes do not match the key")
    return data


async def _open_for_reading(path: Path) -> BinaryIO:
    """``path`` opened in a worker thread. A caller cancelled meanwhile (a client gone, a server
    stopping) does not leak the file the thread still opens: it is closed when the open completes."""
    opening: asyncio.Future[BinaryIO] = asyncio.ensure_future(asyncio.to_thread(path.open, "rb"))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[BinaryIO]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class LocalBlobStore(BlobStore):
    """BlobStore on the local file system (one machine; several processes may share the folder)."""

    def __init__(self, root: str | Path, *, durable: bool = False, small_max: int = SMALL_BLOB_BYTES) -> None:
        self.root = Path(root)
        self.durable = durable
        self.small_max = small_max
        self._db = SQLiteWorker(self.root / "blobs.db", _SCHEMA, durable=durable)

    def path_for(self, key: str) -> Path:
        """Where the file of a large blob lives; raises InvalidBlobKey for anything but a content key."""
        key = check_key(key)
        return self.root / key[:2] / key

    # -- small blobs: rows ---------------------------------------------------------------------------
    async def _put_row(self, key: str, data: bytes, content_type: str) -> BlobRef:
        def work(conn: sqlite3.Connection) -> str:
            inserted = conn.execute("INSERT OR IGNORE INTO blobs(key, content_type, data) VALUES (?, ?, ?)",
                                    (key, content_type, data)).rowcount
            if inserted:
                return content_type
            return str(conn.execute("SELECT content_type FROM blobs WHERE key = ?", (key,)).fetchone()[0])

        stored_type = await self._db.write(work, quick=True)
        return BlobRef(key=key, size=len(data), content_type=stored_type)

    async def _row_data(self, key: str) -> bytes | None:
        row = await self._db.read(lambda conn: conn.execute("SELECT data FROM blobs WHERE key = ?", (key,)).fetchone())
        return bytes(row[0]) if row is not None else None

    async def _row_stat(self, key: str) -> BlobRef | None:
        row = await self._db.read(lambda conn: conn.execute(
            "SELECT length(data), content_type FROM blobs WHERE key = ?", (key,)).fetchone())
        return BlobRef(key=key, size=int(row[0]), content_type=str(row[1])) if row is not None else None

    # -- large blobs: files --------------------------------------------------------------------------
    def _put_file(self, key: str, data: bytes, content_type: str) -> BlobRef:
        path = self.path_for(key)
        if os.path.exists(path):
            return BlobRef(key=key, size=len(data), content_type=self._file_type(path, data[:_HEAD]))
        if content_type != _named_type(data[:_HEAD]):
            # the type first: a blob visible under its key always has its type beside it
            write_bytes_atomic(path.with_name(key + _TYPE_SUFFIX), content_type.encode(), durable=self.durable)
        write_bytes_atomic(path, data, durable=self.durable)
        return BlobRef(key=key, size=len(data), content_type=content_type)

    @staticmethod
    def _file_type(path: Path, head: bytes | None = None) -> str:
        """The type kept beside the file, else the one its first bytes (``head``, or read) name."""
        try:
            return path.with_name(path.name + _TYPE_SUFFIX).read_text().strip() or DEFAULT_CONTENT_TYPE
        except FileNotFoundError:
            pass
        if head is None:
            with path.open("rb") as fh:
                head = fh.read(_HEAD)
        return _named_type(head)

    def _get_file(self, key: str) -> bytes:
        try:
            data = self.path_for(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return _verified(key, data)

    def _stat_file(self, key: str) -> BlobRef | None:
        path = self.path_for(key)
        try:
            size = path.stat().st_size
            return BlobRef(key=key, size=size, content_type=self._file_type(path))
        except FileNotFoundError:
            return None

    def _delete_file(self, key: str) -> bool:
        path = self.path_for(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        path.with_name(key + _TYPE_SUFFIX).unlink(missing_ok=True)
        return True

    def _ping_folder(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"blob folder {self.root} is not writable")

    # -- the interface -------------------------------------------------------------------------------
    async def put(self, data: bytes, *, content_type: str) -> BlobRef:
        if not content_type or len(content_type) > 255 or not content_type.isprintable():
            raise ValueError("content_type must be a short printable string")
        data = bytes(data)
        key = blob_key(data)
        if len(data) <= self.small_max:
            return await self._put_row(key, data, content_type)
        return await asyncio.to_thread(self._put_file, key, data, content_type)

    async def get(self, key: str) -> bytes:
        data = await self._row_data(check_key(key))
        if data is not None:
            return _verified(key, data)
        return await asyncio.to_thread(self._get_file, key)

    async def stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        """Chunks as read; the hash is checked as they go and BlobCorrupt raised after the last one
        when it does not match (a server can then abort the response instead of ending it cleanly)."""
        data = await self._row_data(check_key(key))
        if data is not None:
            for start in range(0, len(data), chunk_size):
                yield data[start:start + chunk_size]
            _verified(key, data)
            return
        try:
            fh = await _open_for_reading(self.path_for(key))
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        digest = hashlib.sha256()
        try:
            while chunk := await asyncio.to_thread(fh.read, chunk_size):
                digest.update(chunk)
                yield chunk
        finally:
            fh.close()  # at once, not in a thread: a reader cancelled again meanwhile must not leak the file
        if digest.hexdigest() != key:
            raise BlobCorrupt(f"blob {key}: stored bytes do not match the key")

    async def stat(self, key: str) -> BlobRef | None:
        ref = await self._row_stat(check_key(key))
        return ref if ref is not None else await asyncio.to_thread(self._stat_file, key)

    async def delete(self, key: str) -> bool:
        check_key(key)
        deleted_row = await self._db.write(
            lambda conn: conn.execute("DELETE FROM blobs WHERE key = ?", (key,)).rowcount > 0, quick=True)
        deleted_file = await asyncio.to_thread(self._delete_file, key)
        return deleted_row or deleted_file

    async def signed_url(self, key: str, *, expires_s: int) -> str | None:
        check_key(key)
        return None

    async def ping(self) -> None:
        await asyncio.to_thread(self._ping_folder)
        await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self._db.close()
