"""GCS signed URLs: a throwaway service-account key signs a v4 URL the client can fetch directly.

fake-gcs-server serves signed URLs without checking the signature, so the test checks it itself:
it rebuilds the v4 canonical request from the URL and verifies the signature with the key's public
half (the check Cloud Storage makes), then fetches the URL over loopback. Without signing
credentials the store answers None and the proxy serves the blob itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.cloud import storage

from subnet_proxy.blobs.gcs import GCSBlobStore
from tests.store.emulators import drop_bucket, emulator_host, gcs_settings, make_bucket, unique_name

pytestmark = pytest.mark.gcs

SIGNER = "url-signer@subnet-proxy-test.iam.gserviceaccount.com"


@pytest.fixture
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> Path:
    """A service-account JSON key as Google issues them, for a key nobody else has."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "signer.json"
    path.write_text(json.dumps({
        "type": "service_account",
        "project_id": "subnet-proxy-test",
        "private_key_id": "throwaway",
        "private_key": pem,
        "client_email": SIGNER,
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


@pytest.fixture
async def bucket() -> AsyncIterator[str]:
    emulator_host("STORAGE_EMULATOR_HOST")
    name = unique_name("signing")
    await asyncio.to_thread(make_bucket, name)
    yield name
    await asyncio.to_thread(drop_bucket, name)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def verify_v4(url: str, public_key: rsa.RSAPublicKey) -> None:
    """Raise InvalidSignature unless ``url`` carries a valid GOOG4-RSA-SHA256 signature."""
    parts = urlsplit(url)
    query, _, signature = parts.query.partition("&X-Goog-Signature=")
    params = parse_qs(query)
    canonical_request = "\n".join([
        "GET", parts.path, query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD",
    ])
    scope = unquote(params["X-Goog-Credential"][0]).split("/", 1)[1]
    string_to_sign = "\n".join([
        "GOOG4-RSA-SHA256", params["X-Goog-Date"][0], scope,
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])
    public_key.verify(bytes.fromhex(signature), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())


async def test_a_signed_url_verifies_and_serves_the_blob(
    bucket: str, key_file: Path, private_key: rsa.RSAPrivateKey, wav_bytes: bytes
) -> None:
    settings = gcs_settings(bucket).model_copy(update={"gcs_signing_key": str(key_file)})
    store = GCSBlobStore(settings)
    try:
        assert store.can_sign
        ref = await store.put(wav_bytes, content_type="audio/wav")
        url = await store.signed_url(ref.key, expires_s=600)
        assert url is not None
        parts = urlsplit(url)
        params = parse_qs(parts.query)
        assert parts.path == f"/{bucket}/{store.object_name(ref.key)}"
        assert params["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
        assert params["X-Goog-Expires"] == ["600"]
        assert unquote(params["X-Goog-Credential"][0]).startswith(SIGNER + "/")
        verify_v4(url, private_key.public_key())
        assert await asyncio.to_thread(fetch, url) == wav_bytes

        tampered = url.replace(store.object_name(ref.key), store.object_name("0" * 64))
        with pytest.raises(InvalidSignature):
            verify_v4(tampered, private_key.public_key())
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(InvalidSignature):
            verify_v4(url, other_key.public_key())
    finally:
        await store.close()


async def test_without_a_key_there_is_no_signed_url(bucket: str, wav_bytes: bytes) -> None:
    """The emulator's anonymous credentials cannot sign: None, so the server streams the blob."""
    store = GCSBlobStore(gcs_settings(bucket))
    try:
        assert not store.can_sign
        ref = await store.put(wav_bytes, content_type="audio/wav")
        assert await store.signed_url(ref.key, expires_s=600) is None
        assert b"".join([chunk async for chunk in store.stream(ref.key, chunk_size=1000)]) == wav_bytes
    finally:
        await store.close()


async def test_an_existing_object_is_never_overwritten(bucket: str) -> None:
    """if_generation_match=0: a second upload of the same key leaves the first object's generation."""
    store = GCSBlobStore(gcs_settings(bucket))
    try:
        ref = await store.put(b"first bytes", content_type="text/plain")
        def generation() -> int:
            with storage.Client() as client:
                blob = client.bucket(bucket).get_blob(store.object_name(ref.key))
                return int(blob.generation)

        before = await asyncio.to_thread(generation)
        again = await store.put(b"first bytes", content_type="application/octet-stream")
        assert again.key == ref.key
        assert await asyncio.to_thread(generation) == before
        assert (await store.stat(ref.key)) == ref  # the first upload's content type stands
    finally:
        await store.close()
