"""Backend fixtures of the conformance suite: every test in tests/store runs once per backend.

To add a backend, write an async context manager that takes the test's temporary folder and yields
what the fixtures need, and register it under a name (with pytest marks, e.g. needing an emulator):

* task stores: ``TASK_STORE_BACKENDS[name] = (opener, marks)``; the opener yields a zero-argument
  callable that returns a NEW store object on ONE shared database each call (the concurrency tests
  open several, as separate validator processes would). Start from an empty database.
* blob stores: ``BLOB_BACKENDS[name] = (opener, marks)``; the opener yields a ``BlobHarness``: the
  store and a way to corrupt a stored blob behind the store's back (to prove reads are verified).

The fixtures close every store they opened.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from subnet_proxy.blobs import BlobStore, LocalBlobStore
from subnet_proxy.blobs.local import SMALL_BLOB_BYTES
from subnet_proxy.store import SQLiteTaskStore, TaskStore
from tests.closing import opening
from tests.store import emulators

TaskStoreOpener = Callable[[Path], AbstractAsyncContextManager[Callable[[], TaskStore]]]


@dataclass(frozen=True)
class BlobHarness:
    store: BlobStore
    #: overwrite the stored bytes of ``key`` with something else, bypassing the store
    corrupt: Callable[[str], Awaitable[None]]


BlobOpener = Callable[[Path], AbstractAsyncContextManager[BlobHarness]]

#: how fast the embedded store notices another store object's writes in these tests
SQLITE_TEST_POLL_S = 0.05


@asynccontextmanager
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[Callable[[], TaskStore]]:
    path = tmp_path / "tasks.db"
    yield lambda: SQLiteTaskStore(path, poll_s=SQLITE_TEST_POLL_S)


@asynccontextmanager
async def local_blob_backend(tmp_path: Path, *, small_max: int = SMALL_BLOB_BYTES) -> AsyncIterator[BlobHarness]:
    """The local store; the blobs of these tests (up to 100 KB) are rows, or with ``small_max=-1`` files."""
    store = LocalBlobStore(tmp_path / "blobs", small_max=small_max)

    async def corrupt(key: str) -> None:
        path = store.path_for(key)
        if path.exists():
            path.write_bytes(b"not what was stored")
            return
        with contextlib.closing(sqlite3.connect(tmp_path / "blobs" / "blobs.db")) as conn, conn:
            assert conn.execute("UPDATE blobs SET data = ? WHERE key = ?", (b"not what was stored", key)).rowcount

    yield BlobHarness(store=store, corrupt=corrupt)


TASK_STORE_BACKENDS: dict[str, tuple[TaskStoreOpener, tuple[pytest.MarkDecorator, ...]]] = {
    "sqlite": (sqlite_backend, ()),
    "firestore": (emulators.firestore_backend, (pytest.mark.firestore,)),
    "firestore-poll": (emulators.firestore_poll_backend, (pytest.mark.firestore,)),
}
BLOB_BACKENDS: dict[str, tuple[BlobOpener, tuple[pytest.MarkDecorator, ...]]] = {
    "local": (local_blob_backend, ()),
    "local-files": (functools.partial(local_blob_backend, small_max=-1), ()),
    "gcs": (emulators.gcs_blob_backend, (pytest.mark.gcs,)),  # type: ignore[dict-item]
}


def _params(registry: dict[str, tuple[object, tuple[pytest.MarkDecorator, ...]]]) -> list[object]:
    return [pytest.param(name, marks=marks, id=name) for name, (_, marks) in registry.items()]


@pytest.fixture(params=_params(TASK_STORE_BACKENDS))  # type: ignore[arg-type]
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], TaskStore]]:
    """Opens another store object on this test's database (as another process would)."""
    opener, _ = TASK_STORE_BACKENDS[request.param]
    async with opener(tmp_path) as make, opening(make) as open_one:
        yield open_one


@pytest.fixture
async def task_store(open_store: Callable[[], TaskStore]) -> TaskStore:
    return open_store()


@pytest.fixture(params=_params(BLOB_BACKENDS))  # type: ignore[arg-type]
async def blob_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobHarness]:
    opener, _ = BLOB_BACKENDS[request.param]
    async with opener(tmp_path) as harness:
        yield harness
        await harness.store.close()


@pytest.fixture
def blob_store(blob_harness: BlobHarness) -> BlobStore:
    return blob_harness.store
