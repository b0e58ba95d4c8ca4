"""Firestore clients for the stores kept on Firestore (tasks, API keys): made from the store settings, closed.

Both the task store and the key store talk to the same database with their own clients; this module
sits below both so neither imports the other.
"""

from __future__ import annotations

import asyncio

from google.cloud import firestore

from subnet_proxy.config import StoreSettings


def async_client(settings: StoreSettings) -> firestore.AsyncClient:
    """An AsyncClient on ``--store.firestore_project`` / ``--store.firestore_database``; credentials from
    ADC / GOOGLE_APPLICATION_CREDENTIALS, or the emulator when FIRESTORE_EMULATOR_HOST is set."""
    return firestore.AsyncClient(project=settings.firestore_project, database=settings.firestore_database)


async def close_client(client: firestore.AsyncClient | firestore.Client) -> None:
    """Close a Firestore client's gRPC channel (the clients have no public close; this is the
    transport's own ``close``: awaited for the async client, run in a thread for the sync one)."""
    transport = client._firestore_api.transport
    if isinstance(client, firestore.AsyncClient):
        await transport.close()
    else:
        await asyncio.to_thread(transport.close)
