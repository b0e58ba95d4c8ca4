"""What only the local blob store must show: its files stay inside the root, sharded, whole or absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from subnet_proxy.blobs import InvalidBlobKey, LocalBlobStore, blob_key
from subnet_proxy.blobs.local import DEFAULT_CONTENT_TYPE
from tests.store.test_blobs import BAD_KEYS


async def test_blobs_are_sharded_files_under_the_root_with_their_type(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = await store.put(b"some audio", content_type="audio/ogg")
    path = tmp_path / "blobs" / ref.key[:2] / ref.key[2:4] / ref.key
    assert store.path_for(ref.key) == path
    assert path.read_bytes() == b"some audio"
    assert path.with_name(ref.key + ".type").read_text() == "audio/ogg"
    assert sorted(p.name for p in path.parent.iterdir()) == [ref.key, ref.key + ".type"], "temp files left"
    assert await store.signed_url(ref.key, expires_s=60) is None


@pytest.mark.parametrize("key", BAD_KEYS)
def test_no_key_maps_outside_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        LocalBlobStore(tmp_path).path_for(key)


async def test_a_failed_write_leaves_no_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between writing and renaming must not leave a half blob under the key, nor a temp file."""
    store = LocalBlobStore(tmp_path)

    def no_rename(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        await store.put(b"never whole", content_type="audio/wav")
    monkeypatch.undo()
    key = blob_key(b"never whole")
    assert await store.stat(key) is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert (await store.put(b"never whole", content_type="audio/wav")).key == key


async def test_a_blob_without_its_type_file_reads_as_octet_stream(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    ref = await store.put(b"x", content_type="text/plain")
    store.path_for(ref.key).with_name(ref.key + ".type").unlink()
    stat = await store.stat(ref.key)
    assert stat is not None and stat.content_type == DEFAULT_CONTENT_TYPE


async def test_bad_content_types_are_refused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for bad in ("", "a\nb", "x" * 300):
        with pytest.raises(ValueError, match="content_type"):
            await store.put(b"x", content_type=bad)
