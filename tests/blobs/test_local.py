"""What only the local blob store must show: small blobs are rows, large ones sharded files inside the
root, each whole or absent, each as durable as ``--store.fsync`` asks."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol import encode_audio
from subnet_proxy.blobs import InvalidBlobKey, LocalBlobStore, blob_key, open_blob_store
from subnet_proxy.blobs.local import DEFAULT_CONTENT_TYPE
from subnet_proxy.config import NeuronSettings, Settings, StoreSettings
from tests.conftest import tone
from tests.store.test_blobs import BAD_KEYS

SMALL_MAX = 1000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    store = LocalBlobStore(tmp_path / "blobs", small_max=SMALL_MAX)
    yield store
    await store.close()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("blobs.db"))


async def test_small_blobs_are_rows_of_the_database_not_files(store: LocalBlobStore, tmp_path: Path) -> None:
    data = os.urandom(SMALL_MAX)
    ref = await store.put(data, content_type="audio/ogg")
    assert _files(tmp_path / "blobs") == []
    with sqlite3.connect(tmp_path / "blobs" / "blobs.db") as conn:
        assert conn.execute("SELECT content_type, data FROM blobs WHERE key = ?", (ref.key,)).fetchone() == (
            "audio/ogg", data)
    assert await store.get(ref.key) == data
    assert await store.stat(ref.key) == ref


async def test_large_blobs_are_sharded_files_under_the_root_with_their_type(store: LocalBlobStore,
                                                                           tmp_path: Path) -> None:
    data = os.urandom(SMALL_MAX + 1)
    ref = await store.put(data, content_type="audio/ogg")
    path = tmp_path / "blobs" / ref.key[:2] / ref.key
    assert store.path_for(ref.key) == path
    assert path.read_bytes() == data
    assert path.with_name(ref.key + ".type").read_text() == "audio/ogg", "random bytes do not name their type"
    assert _files(tmp_path / "blobs") == [path, path.with_name(ref.key + ".type")], "temp files left"
    assert await store.signed_url(ref.key, expires_s=60) is None


async def test_an_audio_file_is_one_file_its_type_read_from_its_bytes(store: LocalBlobStore, tmp_path: Path) -> None:
    flac = encode_audio(tone(1.0), 16_000, "flac")
    assert len(flac) > SMALL_MAX
    ref = await store.put(flac, content_type="audio/flac")
    assert _files(tmp_path / "blobs") == [store.path_for(ref.key)]
    stat = await store.stat(ref.key)
    assert stat is not None and stat.content_type == "audio/flac"
    assert await store.put(flac, content_type="audio/flac") == ref


@pytest.mark.parametrize("key", BAD_KEYS)
def test_no_key_maps_outside_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        LocalBlobStore(tmp_path).path_for(key)


async def test_a_failed_file_write_leaves_no_blob(store: LocalBlobStore, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between writing and renaming must not leave a half blob under the key, nor a temp file."""
    data = os.urandom(SMALL_MAX * 2)

    def no_rename(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        await store.put(data, content_type="audio/wav")
    monkeypatch.undo()
    key = blob_key(data)
    assert await store.stat(key) is None
    assert _files(tmp_path / "blobs") == []
    assert (await store.put(data, content_type="audio/wav")).key == key


async def test_a_file_without_its_type_file_reads_as_its_bytes_say(store: LocalBlobStore) -> None:
    ref = await store.put(os.urandom(SMALL_MAX * 2), content_type="text/plain")
    store.path_for(ref.key).with_name(ref.key + ".type").unlink()
    stat = await store.stat(ref.key)
    assert stat is not None and stat.content_type == DEFAULT_CONTENT_TYPE


async def test_bad_content_types_are_refused(store: LocalBlobStore) -> None:
    for bad in ("", "a\nb", "x" * 300):
        with pytest.raises(ValueError, match="content_type"):
            await store.put(b"x", content_type=bad)


async def test_fsync_flag_makes_every_blob_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--store.fsync: a row commit syncs (synchronous=FULL), a file and its folder are fsynced."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    settings = Settings(neuron=NeuronSettings(data_dir=str(tmp_path)), store=StoreSettings(fsync=True))
    store = open_blob_store(settings)
    assert isinstance(store, LocalBlobStore) and store.durable
    await store.put(b"small", content_type="text/plain")
    assert await store._db.read(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    before = len(synced)
    await store.put(os.urandom(store.small_max + 1), content_type="text/plain")
    assert len(synced) - before == 4, "the type file, the blob file and their folder (twice)"
    await store.close()

    relaxed = LocalBlobStore(tmp_path / "relaxed", small_max=0)
    before = len(synced)
    await relaxed.put(os.urandom(100), content_type="text/plain")
    assert len(synced) == before, "without the flag nothing is fsynced"
    await relaxed.close()


async def test_a_reader_cancelled_while_the_file_opens_leaves_it_closed(store: LocalBlobStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A client gone (or a server stopping) while the worker thread still opens the file: the file it
    then opens is closed, not left to the collector (a ResourceWarning, an error under this suite)."""
    ref = await store.put(os.urandom(300_000), content_type="audio/flac")  # large: a file, not a row
    opened: list[object] = []
    release = threading.Event()
    real_open = Path.open

    def slow_open(self: Path, *args: object, **kwargs: object) -> object:
        release.wait(5)
        fh = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        opened.append(fh)
        return fh

    monkeypatch.setattr(Path, "open", slow_open)

    async def first_chunk() -> bytes:
        async for chunk in store.stream(ref.key):
            return chunk
        return b""

    reader = asyncio.create_task(first_chunk())
    await asyncio.sleep(0.05)  # the open is under way in its thread
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    release.set()
    for _ in range(100):
        if opened and opened[0].closed:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert len(opened) == 1 and opened[0].closed  # type: ignore[attr-defined]
