"""Signed-request verification: good, forged, stale, replayed, wrong receiver; the bounded nonce cache."""

from __future__ import annotations

import time

import pytest
from bittensor_wallet import Keypair

from subnet_proxy.signing import (
    BadSignature,
    MissingSignature,
    NonceCache,
    ReplayedNonce,
    SignatureVerifier,
    StaleRequest,
    WrongReceiver,
    sign_request,
)

ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")
SERVER = Keypair.create_from_uri("//Server")


def verifier(**kw) -> SignatureVerifier:
    return SignatureVerifier(SERVER.ss58_address, max_age_s=30, **kw)


def test_good_signature_names_the_caller() -> None:
    headers = sign_request(ALICE, b'{"x":1}', SERVER.ss58_address)
    caller = verifier().verify(headers, b'{"x":1}')
    assert caller.hotkey == ALICE.ss58_address and caller.nonce == headers["X-Nonce"]


@pytest.mark.parametrize("mutate, error", [
    (lambda h: {**h, "X-Hotkey": BOB.ss58_address}, BadSignature),
    (lambda h: {**h, "X-Nonce": "other"}, BadSignature),
    (lambda h: {**h, "X-Timestamp": f"{float(h['X-Timestamp']) + 1:.6f}"}, BadSignature),
    (lambda h: {**h, "X-Receiver": BOB.ss58_address}, WrongReceiver),
    (lambda h: {k: v for k, v in h.items() if k != "X-Nonce"}, MissingSignature),
    (lambda h: {**h, "X-Nonce": "n" * 200}, MissingSignature),
])
def test_tampering_is_refused(mutate, error) -> None:
    headers = sign_request(ALICE, b"body", SERVER.ss58_address)
    with pytest.raises(error):
        verifier().verify(mutate(headers), b"body")


def test_body_receiver_and_time_are_bound() -> None:
    v = verifier()
    with pytest.raises(BadSignature):
        v.verify(sign_request(ALICE, b"body", SERVER.ss58_address), b"other body")
    with pytest.raises(BadSignature):  # signed for Bob, receiver header stripped: the message differs
        headers = sign_request(ALICE, b"body", BOB.ss58_address)
        v.verify({k: val for k, val in headers.items() if k != "X-Receiver"}, b"body")
    with pytest.raises(StaleRequest):
        v.verify(sign_request(ALICE, b"body", SERVER.ss58_address, now=time.time() - 31), b"body")
    with pytest.raises(StaleRequest):
        v.verify(sign_request(ALICE, b"body", SERVER.ss58_address, now=time.time() + 60), b"body")


def test_replay_refused_but_forgery_does_not_burn_a_nonce() -> None:
    v = verifier()
    headers = sign_request(ALICE, b"body", SERVER.ss58_address)
    with pytest.raises(BadSignature):
        v.verify({**headers, "X-Signature": "0x" + "11" * 64}, b"body")
    v.verify(headers, b"body")  # the forged attempt did not record the nonce
    with pytest.raises(ReplayedNonce):
        v.verify(headers, b"body")
    # the same nonce from another hotkey is a different request
    other = sign_request(BOB, b"body", SERVER.ss58_address)
    v.verify(other, b"body")


def test_full_nonce_cache_raises_the_floor_instead_of_reopening_replays() -> None:
    now = time.time()
    v = SignatureVerifier(SERVER.ss58_address, max_age_s=30, nonce_cache_size=2)
    requests = [sign_request(ALICE, b"b", SERVER.ss58_address, now=now - 10 + i) for i in range(3)]
    for headers in requests:
        v.verify(headers, b"b", now=now)  # the third evicts the first
    with pytest.raises(StaleRequest):  # the evicted request cannot be replayed: the floor covers it
        v.verify(requests[0], b"b", now=now)
    with pytest.raises(ReplayedNonce):
        v.verify(requests[2], b"b", now=now)
    v.verify(sign_request(ALICE, b"b", SERVER.ss58_address, now=now), b"b", now=now)  # fresh ones still pass


def test_one_hotkey_filling_the_cache_makes_only_its_own_requests_stale() -> None:
    now = time.time()
    v = SignatureVerifier(SERVER.ss58_address, max_age_s=30, nonce_cache_size=2)
    for i in range(5):  # signed ahead, as the clock-skew allowance permits: the evictions floor Alice past now
        v.verify(sign_request(ALICE, b"b", SERVER.ss58_address, now=now + 1 + i / 2), b"b", now=now)
    v.verify(sign_request(BOB, b"b", SERVER.ss58_address, now=now), b"b", now=now)
    with pytest.raises(StaleRequest):
        v.verify(sign_request(ALICE, b"b", SERVER.ss58_address, now=now), b"b", now=now)


def test_expired_nonces_are_forgotten() -> None:
    cache = NonceCache(max_age_s=10, max_entries=100)
    cache.add("hk", "a", 100.0, now=100.0)
    cache.add("hk", "b", 200.0, now=200.0)
    assert len(cache) == 1
