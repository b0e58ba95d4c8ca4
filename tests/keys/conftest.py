"""Backend fixtures of the KeyStore conformance suite: every test in tests/keys runs once per backend.

To add a backend, write an async context manager that takes the test's temporary folder and yields
a ``KeyBackend`` on an empty database, and register it as ``KEY_STORE_BACKENDS[name] = (opener,
marks)`` (marks: e.g. needing an emulator). ``settings`` must make ``open_key_store`` pick the
backend, so every store object the tests open (several: as several server instances would) shares
that one database; ``stored_text`` reads everything the backend holds behind the store's back, to
prove what it keeps. The fixtures close every store they opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from subnet_proxy.config import NeuronSettings, Settings
from subnet_proxy.keys import KeyStore, open_key_store
from subnet_proxy.keys.sqlite import SqliteKeyStore
from tests.closing import opening
from tests.store import emulators


@dataclass(frozen=True)
class KeyBackend:
    #: settings under which ``open_key_store`` opens this backend on the test's database
    settings: Settings
    #: the class ``open_key_store`` must pick for them
    store_class: type[KeyStore]
    #: every record the backend holds, as text, read without the store
    stored_text: Callable[[], Awaitable[str]]


KeyBackendOpener = Callable[[Path], AbstractAsyncContextManager[KeyBackend]]


@asynccontextmanager
async def sqlite_keys(tmp_path: Path) -> AsyncIterator[KeyBackend]:
    """DATA_DIR/keys.db, as ``open_key_store`` places it beside the task database."""
    settings = Settings(neuron=NeuronSettings(data_dir=str(tmp_path)))

    async def stored_text() -> str:
        with contextlib.closing(sqlite3.connect(tmp_path / "keys.db")) as conn:
            return "\n".join(conn.iterdump())

    yield KeyBackend(settings=settings, store_class=SqliteKeyStore, stored_text=stored_text)


@asynccontextmanager
async def firestore_keys(tmp_path: Path) -> AsyncIterator[KeyBackend]:
    """The ``api_keys`` collection (prefixed) of a fresh emulator project, beside the task store's."""
    from google.cloud import firestore

    from subnet_proxy.firestore_client import close_client
    from subnet_proxy.keys.firestore import FirestoreKeyStore

    emulators.emulator_host("FIRESTORE_EMULATOR_HOST")
    project = emulators.unique_name("keys")
    store = emulators.firestore_settings(project, firestore_prefix="t_")
    settings = Settings(neuron=NeuronSettings(data_dir=str(tmp_path)), store=store)

    async def stored_text() -> str:
        client = firestore.AsyncClient(project=project)
        try:
            return "\n".join([str(snap.to_dict()) async for snap in client.collection("t_api_keys").stream()])
        finally:
            await close_client(client)

    try:
        yield KeyBackend(settings=settings, store_class=FirestoreKeyStore, stored_text=stored_text)
    finally:
        await asyncio.to_thread(emulators.clear_firestore, project)


KEY_STORE_BACKENDS: dict[str, tuple[KeyBackendOpener, tuple[pytest.MarkDecorator, ...]]] = {
    "sqlite": (sqlite_keys, ()),
    "firestore": (firestore_keys, (pytest.mark.firestore,)),
}


@pytest.fixture(params=[pytest.param(name, marks=marks, id=name) for name, (_, marks) in KEY_STORE_BACKENDS.items()])
async def key_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyBackend]:
    opener, _ = KEY_STORE_BACKENDS[request.param]
    async with opener(tmp_path) as backend:
        yield backend


@pytest.fixture
async def open_keys(key_backend: KeyBackend) -> AsyncIterator[Callable[[], KeyStore]]:
    """Opens another key store object on this test's database (as another server instance would)."""
    async with opening(lambda: open_key_store(key_backend.settings)) as open_one:
        yield open_one


@pytest.fixture
def keys(open_keys: Callable[[], KeyStore]) -> KeyStore:
    return open_keys()
