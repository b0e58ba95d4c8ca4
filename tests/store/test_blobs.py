"""Conformance for blob stores: content-addressed put/get/stream/stat/delete, bad keys, corruption."""

from __future__ import annotations

import asyncio
import os

import pytest

from subnet_proxy.blobs import BlobCorrupt, BlobNotFound, BlobStore, InvalidBlobKey, blob_key
from tests.store.conftest import BlobHarness

BAD_KEYS = [
    "../../etc/passwd",
    "..",
    "/etc/passwd",
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "ab/" + "c" * 61,
    "a" * 64 + "\n",  # a regex "$" would let the newline through: another object name than the key
    "..%2F" + "a" * 59,
    "a" * 63 + "\x00",
    "",
]


async def test_put_then_get_stat_and_stream(blob_store: BlobStore, wav_bytes: bytes) -> None:
    ref = await blob_store.put(wav_bytes, content_type="audio/wav")
    assert ref.key == blob_key(wav_bytes) and ref.size == len(wav_bytes) and ref.content_type == "audio/wav"
    assert await blob_store.get(ref.key) == wav_bytes
    assert await blob_store.stat(ref.key) == ref
    chunks = [chunk async for chunk in blob_store.stream(ref.key, chunk_size=4096)]
    assert len(chunks) == -(-len(wav_bytes) // 4096)
    assert b"".join(chunks) == wav_bytes


async def test_put_is_idempotent(blob_store: BlobStore) -> None:
    data = os.urandom(100_000)
    refs = await asyncio.gather(*(blob_store.put(data, content_type="audio/flac") for _ in range(5)))
    assert len({ref.key for ref in refs}) == 1
    again = await blob_store.put(data, content_type="audio/flac")
    assert again == refs[0]
    assert await blob_store.get(again.key) == data


async def test_empty_blob_round_trips(blob_store: BlobStore) -> None:
    ref = await blob_store.put(b"", content_type="text/plain")
    assert ref.size == 0 and await blob_store.get(ref.key) == b""


async def test_missing_blob(blob_store: BlobStore) -> None:
    key = blob_key(b"never stored")
    assert await blob_store.stat(key) is None
    with pytest.raises(BlobNotFound):
        await blob_store.get(key)
    with pytest.raises(BlobNotFound):
        [chunk async for chunk in blob_store.stream(key)]
    assert await blob_store.delete(key) is False


async def test_delete(blob_store: BlobStore) -> None:
    ref = await blob_store.put(b"to be deleted", content_type="text/plain")
    other = await blob_store.put(b"to be kept", content_type="text/plain")
    assert await blob_store.delete(ref.key) is True
    assert await blob_store.stat(ref.key) is None
    with pytest.raises(BlobNotFound):
        await blob_store.get(ref.key)
    assert await blob_store.delete(ref.key) is False
    assert await blob_store.get(other.key) == b"to be kept"
    assert (await blob_store.put(b"to be deleted", content_type="text/plain")).key == ref.key


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused_everywhere(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        await blob_store.get(key)
    with pytest.raises(InvalidBlobKey):
        await blob_store.stat(key)
    with pytest.raises(InvalidBlobKey):
        await blob_store.delete(key)
    with pytest.raises(InvalidBlobKey):
        [chunk async for chunk in blob_store.stream(key)]
    with pytest.raises(InvalidBlobKey):
        await blob_store.signed_url(key, expires_s=60)


async def test_corruption_is_detected_on_get_and_stream(blob_harness: BlobHarness) -> None:
    store = blob_harness.store
    ref = await store.put(b"precious audio bytes" * 1000, content_type="audio/wav")
    await blob_harness.corrupt(ref.key)
    with pytest.raises(BlobCorrupt):
        await store.get(ref.key)
    with pytest.raises(BlobCorrupt):
        [chunk async for chunk in store.stream(ref.key, chunk_size=1024)]


async def test_ping(blob_store: BlobStore) -> None:
    await blob_store.ping()
