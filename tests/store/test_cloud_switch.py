"""Switching to the cloud backends is configuration only: the documented flags open working stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from subnet_proxy.blobs import open_blob_store
from subnet_proxy.blobs.gcs import GCSBlobStore
from subnet_proxy.config import Settings, build_settings
from subnet_proxy.keys import Role, open_key_store
from subnet_proxy.store import open_task_store
from subnet_proxy.store.firestore import FirestoreTaskStore
from tests.store.emulators import clear_firestore, drop_bucket, emulator_host, make_bucket, unique_name
from tests.store.factories import make_task

pytestmark = [pytest.mark.firestore, pytest.mark.gcs]


@pytest.fixture
async def cloud_settings() -> AsyncIterator[Settings]:
    emulator_host("FIRESTORE_EMULATOR_HOST")
    emulator_host("STORAGE_EMULATOR_HOST")
    project, bucket = unique_name("switch"), unique_name("switch")
    await asyncio.to_thread(make_bucket, bucket)
    yield build_settings(
        ["--store", "firestore", "--store.firestore_project", project, "--store.firestore_prefix", "prod_",
         "--blobs", "gcs", "--blobs.gcs_bucket", bucket, "--blobs.gcs_prefix", "audio/"],
        "test",
    )
    await asyncio.to_thread(clear_firestore, project)
    await asyncio.to_thread(drop_bucket, bucket)


async def test_the_documented_flags_open_shared_cloud_stores(cloud_settings: Settings, wav_bytes: bytes) -> None:
    """Two instances opened from the same flags see each other's tasks, blobs and keys."""
    first = (open_task_store(cloud_settings), open_blob_store(cloud_settings), open_key_store(cloud_settings))
    second = (open_task_store(cloud_settings), open_blob_store(cloud_settings), open_key_store(cloud_settings))
    try:
        store, blobs, keys = first
        assert isinstance(store, FirestoreTaskStore) and isinstance(blobs, GCSBlobStore)
        await store.ping()
        await blobs.ping()
        ref = await blobs.put(wav_bytes, content_type="audio/wav")
        assert blobs.object_name(ref.key) == "audio/" + ref.key
        task, _ = await store.create_task(make_task(1, input={"audio_blob": ref.key, "audio_format": "wav"}))
        _, plaintext = await keys.create(name="acme", role=Role.CLIENT)

        other_store, other_blobs, other_keys = second
        assert [t.task_id for t in await other_store.claim_tasks("v2", limit=5, lease_s=30)] == [task.task_id]
        assert await other_blobs.get(ref.key) == wav_bytes
        assert await other_keys.authenticate(plaintext) is not None
        assert await other_store.blobs_in_use([ref.key]) == {ref.key}
    finally:
        for opened in (*first, *second):
            await opened.close()
