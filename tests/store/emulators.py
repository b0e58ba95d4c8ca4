"""Cloud backends of the conformance suite, on the real emulators that run_tests.sh starts.

Each test gets its own Firestore project and its own GCS bucket (both empty at start), and both are
cleared when it ends: Firestore through the emulator's ``DELETE .../documents`` endpoint, GCS by
deleting the bucket's objects and the bucket. Without the emulators these backends FAIL with the
command to run, they never skip: ``scripts/emulators.sh start`` and export what it prints.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from subnet_proxy.config import BlobSettings, StoreSettings
from subnet_proxy.store import TaskStore

#: how fast stores notice another process's writes where they poll, in these tests
TEST_POLL_S = 0.05


def emulator_host(var: str) -> str:
    host = os.environ.get(var)
    if not host:
        pytest.fail(f"{var} is not set: start the emulators with `eval \"$(scripts/emulators.sh start)\"` "
                    "(run_tests.sh does it), or deselect with -m 'not firestore and not gcs'")
    return host


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def clear_firestore(project: str, database: str = "(default)") -> None:
    """The emulator's own reset: delete every document of the project's database."""
    host = emulator_host("FIRESTORE_EMULATOR_HOST")
    url = f"http://{host}/emulator/v1/projects/{project}/databases/{database}/documents"
    for attempt in range(20):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10) as response:
                response.read()
            return
        except urllib.error.HTTPError as exc:
            # 409: a transaction of the test still holds a lock; the emulator frees it within seconds
            if exc.code != 409 or attempt == 19:
                raise
            time.sleep(0.5)


def firestore_settings(project: str, **fields: object) -> StoreSettings:
    return StoreSettings.model_validate(
        {"backend": "firestore", "firestore_project": project, "poll_s": TEST_POLL_S, **fields}
    )


@asynccontextmanager
async def firestore_backend(tmp_path: Path, *, listen: bool = True) -> AsyncIterator[Callable[[], TaskStore]]:
    """Stores on one fresh emulator project; ``listen=False``: the poll instead of the listener."""
    from subnet_proxy.store.firestore import FirestoreTaskStore

    emulator_host("FIRESTORE_EMULATOR_HOST")
    project = unique_name("conformance")
    try:
        yield lambda: FirestoreTaskStore(firestore_settings(project, firestore_listen=listen))
    finally:
        await asyncio.to_thread(clear_firestore, project)


def firestore_poll_backend(tmp_path: Path) -> AbstractAsyncContextManager[Callable[[], TaskStore]]:
    return firestore_backend(tmp_path, listen=False)


def gcs_settings(bucket: str) -> BlobSettings:
    return BlobSettings(backend="gcs", gcs_bucket=bucket, gcs_prefix="blobs/")


def make_bucket(name: str) -> None:
    from google.cloud import storage

    emulator_host("STORAGE_EMULATOR_HOST")
    with storage.Client() as client:
        client.create_bucket(name)


def drop_bucket(name: str) -> None:
    """Delete every object of the bucket, then the bucket."""
    from google.cloud import storage

    with storage.Client() as client:
        bucket = client.bucket(name)
        for blob in client.list_blobs(name):
            blob.delete()
        bucket.delete()


@asynccontextmanager
async def gcs_blob_backend(tmp_path: Path) -> AsyncIterator[object]:
    from google.cloud import storage

    from subnet_proxy.blobs.gcs import GCSBlobStore
    from tests.store.conftest import BlobHarness

    bucket = unique_name("conformance")
    await asyncio.to_thread(make_bucket, bucket)
    store = GCSBlobStore(gcs_settings(bucket))

    def overwrite(key: str) -> None:
        with storage.Client() as client:
            client.bucket(bucket).blob(store.object_name(key)).upload_from_string(b"not what was stored")

    async def corrupt(key: str) -> None:
        await asyncio.to_thread(overwrite, key)

    try:
        yield BlobHarness(store=store, corrupt=corrupt)
    finally:
        await asyncio.to_thread(drop_bucket, bucket)
