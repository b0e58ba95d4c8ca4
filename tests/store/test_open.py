"""The factories pick the backend the settings name, with default paths under the data dir."""

from __future__ import annotations

from pathlib import Path

import subnet_proxy.blobs
import subnet_proxy.store
from subnet_proxy.blobs import LocalBlobStore, open_blob_store
from subnet_proxy.config import build_settings
from subnet_proxy.store import SQLiteTaskStore, open_task_store
from tests.store.factories import make_task


async def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = build_settings(["--neuron.data_dir", str(tmp_path)], "test")
    store, blobs = open_task_store(settings), open_blob_store(settings)
    assert isinstance(store, SQLiteTaskStore) and isinstance(blobs, LocalBlobStore)
    await store.create_task(make_task(1))
    ref = await blobs.put(b"x", content_type="text/plain")
    assert (tmp_path / "tasks.db").is_file()
    assert blobs.path_for(ref.key).is_relative_to(tmp_path / "blobs")
    await store.close()


async def test_explicit_paths_win(tmp_path: Path) -> None:
    settings = build_settings(
        ["--store.sqlite_path", str(tmp_path / "db" / "t.db"), "--blobs.local_dir", str(tmp_path / "b")], "test"
    )
    store, blobs = open_task_store(settings), open_blob_store(settings)
    await store.ping()
    assert (tmp_path / "db" / "t.db").is_file()
    assert isinstance(blobs, LocalBlobStore) and blobs.root == tmp_path / "b"
    await store.close()


def test_public_names_are_exported() -> None:
    for package in (subnet_proxy.store, subnet_proxy.blobs):
        assert sorted(package.__all__) == sorted(set(package.__all__))
        for name in package.__all__:
            assert getattr(package, name) is not None, name
