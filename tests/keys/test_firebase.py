"""keys.firebase on the production path: RS256 tokens checked against public keys fetched over HTTP.

The emulator tests (tests/server/test_firebase_auth.py) run with FIREBASE_AUTH_EMULATOR_HOST set,
where firebase-admin skips signatures. Here it is unset and firebase-admin fetches the signing
certificates as it fetches Google's, from a server on loopback that plays Google's part (the only
change: the certificate URL, set on firebase-admin's verifier).
"""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from subnet_proxy.config import AuthSettings
from subnet_proxy.keys import Role
from subnet_proxy.keys.firebase import AuthUnavailable, FirebaseVerifier, TokenRejected

PROJECT = "demo-signed"


def key_and_cert() -> tuple[bytes, str]:
    """(private key PEM, self-signed certificate PEM), as Google publishes its token certificates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


def fetch_certs_from(checker: FirebaseVerifier, url: str) -> None:
    """Where firebase-admin fetches the signing certificates (Google's URL in production)."""
    from firebase_admin import auth

    auth._get_client(checker._app)._token_verifier.id_token_verifier.cert_url = url


def signed_token(private_pem: bytes, uid: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "sub": uid, "iat": now,
               "auth_time": now, "exp": now + 3600, **claims}
    signer = crypt.RSASigner.from_string(private_pem, key_id="key-1")
    return jwt.encode(signer, payload).decode()


@pytest.fixture
async def verifier(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FirebaseVerifier, bytes, list[str]]]:
    """A verifier whose certificates come from a loopback server (which counts its fetches)."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    private, cert = key_and_cert()
    fetches: list[str] = []

    async def certs(request: web.Request) -> web.Response:
        fetches.append(request.path)
        return web.json_response({"key-1": cert}, headers={"Cache-Control": "public, max-age=3600"})

    app = web.Application()
    app.router.add_get("/certs", certs)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    checker = FirebaseVerifier(AuthSettings(firebase_project=PROJECT))
    fetch_certs_from(checker, str(server.make_url("/certs")))
    try:
        yield checker, private, fetches
    finally:
        checker.close()
        await server.close()


async def test_signed_tokens_pass_and_forged_ones_do_not(verifier: tuple[FirebaseVerifier, bytes, list[str]]) -> None:
    checker, private, fetches = verifier
    caller = await checker.verify(signed_token(private, "alice", email="alice@example.com"))
    assert (caller.key_id, caller.name, caller.role) == ("fb:alice", "alice@example.com", Role.CLIENT)
    admin = await checker.verify(signed_token(private, "root", role="admin"))
    assert (admin.key_id, admin.role) == ("fb:root", Role.ADMIN)
    assert fetches == ["/certs"]  # the certificates are fetched once, then cached by their Cache-Control

    forger, _ = key_and_cert()  # another key, claiming the same key id
    forged = signed_token(forger, "alice", role="admin")
    with pytest.raises(TokenRejected) as caught:
        await checker.verify(forged)
    assert caught.value.reason == "invalid"
    tampered = signed_token(private, "alice").split(".")
    tampered[1] = signed_token(private, "mallory").split(".")[1]  # another user's claims under alice's signature
    with pytest.raises(TokenRejected):
        await checker.verify(".".join(tampered))
    expired = signed_token(private, "alice", iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    with pytest.raises(TokenRejected) as caught:
        await checker.verify(expired)
    assert caught.value.reason == "expired"


async def test_keys_out_of_reach_are_auth_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed_port = free.getsockname()[1]
    checker = FirebaseVerifier(AuthSettings(firebase_project=PROJECT))
    fetch_certs_from(checker, f"http://127.0.0.1:{closed_port}/certs")
    try:
        with pytest.raises(AuthUnavailable, match="cannot check Firebase ID tokens now"):
            await checker.verify(signed_token(key_and_cert()[0], "alice"))
    finally:
        checker.close()
