"""Blob stores: the BlobStore interface, its backends, and ``open_blob_store`` to pick one from Settings."""

from __future__ import annotations

from subnet_proxy.blobs.base import (
    BlobCorrupt,
    BlobError,
    BlobNotFound,
    BlobRef,
    BlobStore,
    InvalidBlobKey,
    blob_key,
    check_key,
)
from subnet_proxy.blobs.local import LocalBlobStore
from subnet_proxy.config import Settings

__all__ = [
    "BlobCorrupt",
    "BlobError",
    "BlobNotFound",
    "BlobRef",
    "BlobStore",
    "InvalidBlobKey",
    "LocalBlobStore",
    "blob_key",
    "check_key",
    "open_blob_store",
]


def open_blob_store(settings: Settings) -> BlobStore:
    """The BlobStore ``settings.blobs.backend`` names; the GCS module is imported only when chosen."""
    blobs = settings.blobs
    if blobs.backend == "local":
        return LocalBlobStore(blobs.local_dir or settings.data_dir / "blobs", durable=settings.store.fsync)
    if blobs.backend == "gcs":
        from subnet_proxy.blobs.gcs import GCSBlobStore

        return GCSBlobStore.from_settings(settings)
    raise ValueError(f"unknown blob store backend {blobs.backend!r}")
