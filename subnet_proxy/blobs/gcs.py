"""The BlobStore on Google Cloud Storage: content-addressed objects, never overwritten, verified.

Object names are ``gcs_prefix + sha256(content)``. An upload carries ``if_generation_match=0``, so
an object that already exists is left alone (same name, same bytes: the upload is a no-op success).
Checksums are checked both ways: the server's CRC32C of an upload must match ours, and a download
must hash back to its key. google-cloud-storage is synchronous (requests), so every call runs on a
worker thread, never on the event loop. Credentials: ADC / GOOGLE_APPLICATION_CREDENTIALS, or
fake-gcs-server when STORAGE_EMULATOR_HOST is set. Signed URLs (v4) need credentials that hold a
private key (a service-account key); without one ``signed_url`` is None and the proxy serves the
blob itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

import google_crc32c
from google.api_core import exceptions as gexc
from google.auth import credentials as auth_credentials
from google.cloud import storage  # type: ignore[attr-defined]
from google.oauth2 import service_account

from subnet_proxy.blobs.base import BlobCorrupt, BlobNotFound, BlobRef, BlobStore, blob_key, check_key
from subnet_proxy.config import BlobSettings, Settings


def crc32c_b64(data: bytes) -> str:
    """CRC32C as GCS reports it: base64 of the big-endian 4 bytes."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def signer_from(credentials: Any, key_file: str | None) -> auth_credentials.Signing | None:
    """The credentials that can sign URLs: an explicit key file, else the client's own if they can."""
    if key_file is not None:
        signer: auth_credentials.Signing = service_account.Credentials.from_service_account_file(key_file)
        return signer
    return credentials if isinstance(credentials, auth_credentials.Signing) else None


class GCSBlobStore(BlobStore):
    def __init__(
        self,
        settings: BlobSettings,
        *,
        client: storage.Client | None = None,
        signer: auth_credentials.Signing | None = None,
    ) -> None:
        if not settings.gcs_bucket:
            raise ValueError("--blobs.gcs_bucket is required for the gcs blob store")
        self._client = client or storage.Client()
        self._bucket = self._client.bucket(settings.gcs_bucket)
        self._prefix = settings.gcs_prefix
        # google.cloud.client.Client keeps its credentials as ``_credentials`` (no public accessor)
        self._signer = signer or signer_from(getattr(self._client, "_credentials", None), settings.gcs_signing_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> GCSBlobStore:
        return cls(settings.blobs)

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    def object_name(self, key: str) -> str:
        return self._prefix + check_key(key)

    def _blob(self, key: str) -> storage.Blob:
        return self._bucket.blob(self.object_name(key))

    async def put(self, data: bytes, *, content_type: str) -> BlobRef:
        key = blob_key(data)
        blob = self._blob(key)
        await asyncio.to_thread(self._upload, blob, data, content_type)
        return BlobRef(key=key, size=len(data), content_type=content_type)

    @staticmethod
    def _upload(blob: storage.Blob, data: bytes, content_type: str) -> None:
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0, checksum="crc32c")
        except gexc.PreconditionFailed:
            return  # already stored: content-addressed, so it holds these very bytes
        if blob.crc32c is not None and blob.crc32c != crc32c_b64(data):
            blob.delete(if_generation_match=blob.generation)
            raise BlobCorrupt(f"blob {blob.name}: upload checksum mismatch (stored {blob.crc32c})")

    async def get(self, key: str) -> bytes:
        blob = self._blob(key)
        try:
            data: bytes = await asyncio.to_thread(blob.download_as_bytes, checksum="crc32c")
        except gexc.NotFound:
            raise BlobNotFound(key) from None
        if blob_key(data) != key:
            raise BlobCorrupt(f"blob {key}: stored bytes hash to {blob_key(data)}")
        return data

    async def stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        """Ranged reads of one object generation (a rewrite midway cannot mix two versions); the
        SHA-256 is checked as the chunks pass, and a mismatch raises after the last chunk."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        blob = await asyncio.to_thread(self._bucket.get_blob, self.object_name(key))
        if blob is None:
            raise BlobNotFound(key)
        digest = hashlib.sha256()
        size = blob.size or 0
        for start in range(0, size, chunk_size):
            end = min(start + chunk_size, size) - 1
            try:
                chunk: bytes = await asyncio.to_thread(
                    blob.download_as_bytes, start=start, end=end, if_generation_match=blob.generation,
                    checksum=None,
                )
            except (gexc.NotFound, gexc.PreconditionFailed):
                raise BlobNotFound(key) from None
            digest.update(chunk)
            yield chunk
        if digest.hexdigest() != key:
            raise BlobCorrupt(f"blob {key}: streamed bytes hash to {digest.hexdigest()}")

    async def stat(self, key: str) -> BlobRef | None:
        blob = await asyncio.to_thread(self._bucket.get_blob, self.object_name(key))
        if blob is None:
            return None
        return BlobRef(key=key, size=blob.size or 0, content_type=blob.content_type or "application/octet-stream")

    async def delete(self, key: str) -> bool:
        blob = self._blob(key)
        try:
            await asyncio.to_thread(blob.delete)
        except gexc.NotFound:
            return False
        return True

    async def signed_url(self, key: str, *, expires_s: int) -> str | None:
        blob = self._blob(key)
        if self._signer is None:
            return None
        url: str = await asyncio.to_thread(
            blob.generate_signed_url,
            version="v4",
            expiration=timedelta(seconds=expires_s),
            method="GET",
            credentials=self._signer,
        )
        return url

    async def ping(self) -> None:
        await asyncio.to_thread(self._bucket.reload)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
