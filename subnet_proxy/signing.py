"""Signed HTTP requests between neurons: sr25519 hotkey signatures over body hash, nonce, time, receiver.

A validator or miner calling another neuron's HTTP endpoint signs
``sha256(body).nonce.timestamp.receiver_hotkey`` with its hotkey and sends it in headers. Binding the
receiver stops a request meant for one validator from being replayed to another; the timestamp
bounds how long a captured request stays usable, and the nonce cache refuses it inside that window.

Errors (all ``SignatureError``, each with a stable ``code``)::

    SignatureError
     +-- MissingSignature    a header is absent or malformed
     +-- StaleRequest        the timestamp is outside the accepted window
     +-- WrongReceiver       the request was signed for another hotkey
     +-- BadSignature        the signature does not match the hotkey and the message
     +-- ReplayedNonce       this (hotkey, nonce) was already accepted
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from bittensor_wallet import Keypair

HOTKEY_HEADER = "X-Hotkey"
NONCE_HEADER = "X-Nonce"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
RECEIVER_HEADER = "X-Receiver"
SIGNED_HEADERS = (HOTKEY_HEADER, NONCE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, RECEIVER_HEADER)

_MAX_NONCE_LEN = 128
#: allowance for clocks running ahead of ours.
_FUTURE_SKEW_S = 5.0


class SignatureError(Exception):
    code = "bad_signature"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingSignature(SignatureError):
    code = "missing_signature"


class StaleRequest(SignatureError):
    code = "stale_request"


class WrongReceiver(SignatureError):
    code = "wrong_receiver"


class BadSignature(SignatureError):
    code = "bad_signature"


class ReplayedNonce(SignatureError):
    code = "replayed_nonce"


def signing_message(body: bytes, nonce: str, timestamp: str, receiver_hotkey: str) -> bytes:
    return f"{hashlib.sha256(body).hexdigest()}.{nonce}.{timestamp}.{receiver_hotkey}".encode()


def sign_request(keypair: Keypair, body: bytes, receiver_hotkey: str, *, now: float | None = None) -> dict[str, str]:
    """The headers that make ``body`` a signed request from ``keypair`` to ``receiver_hotkey``."""
    nonce = secrets.token_hex(16)
    timestamp = f"{time.time() if now is None else now:.6f}"
    signature = keypair.sign(signing_message(body, nonce, timestamp, receiver_hotkey))
    return {
        HOTKEY_HEADER: keypair.ss58_address,
        NONCE_HEADER: nonce,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: "0x" + signature.hex(),
        RECEIVER_HEADER: receiver_hotkey,
    }


class NonceCache:
    """Nonces seen within the freshness window, bounded in size.

    When full, the oldest entry is evicted and its timestamp becomes its hotkey's floor: anything
    that hotkey signed at or before it is refused as stale, so eviction can never reopen a replay.
    The floor is per hotkey so that one caller flooding the cache only makes its own requests stale.
    """

    def __init__(self, *, max_age_s: float, max_entries: int) -> None:
        self._max_age_s = max_age_s
        self._max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._floors: dict[str, float] = {}

    def _expire(self, now: float) -> None:
        while self._seen:
            key, ts = next(iter(self._seen.items()))
            if ts >= now - self._max_age_s:
                break
            self._seen.popitem(last=False)

    def add(self, hotkey: str, nonce: str, timestamp: float, *, now: float) -> None:
        """Remember the nonce; ReplayedNonce if it is already known."""
        self._expire(now)
        key = (hotkey, nonce)
        if key in self._seen:
            raise ReplayedNonce(f"nonce {nonce[:32]} was already used by this hotkey")
        while len(self._seen) >= self._max_entries:
            (evicted_hotkey, _), evicted_ts = self._seen.popitem(last=False)
            self._floors[evicted_hotkey] = max(self._floors.get(evicted_hotkey, 0.0), evicted_ts)
        if len(self._floors) > self._max_entries:  # floors past the window refuse nothing the window does not
            self._floors = {hk: ts for hk, ts in self._floors.items() if ts >= now - self._max_age_s}
        self._seen[key] = timestamp

    def floor(self, hotkey: str) -> float:
        """The latest evicted timestamp of ``hotkey``: its requests signed at or before it are stale."""
        return self._floors.get(hotkey, 0.0)

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True, slots=True)
class SignedCaller:
    """Who signed a request that passed every check."""

    hotkey: str
    nonce: str
    timestamp: float


class SignatureVerifier:
    """Checks signed requests addressed to ``own_hotkey``; one per receiving server."""

    def __init__(self, own_hotkey: str, *, max_age_s: float, nonce_cache_size: int = 100_000) -> None:
        self.own_hotkey = own_hotkey
        self.max_age_s = max_age_s
        self._nonces = NonceCache(max_age_s=max_age_s + _FUTURE_SKEW_S, max_entries=nonce_cache_size)

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> SignedCaller:
        """The caller of a well-signed, fresh, unreplayed request; SignatureError otherwise.

        Order matters: the nonce is remembered only after the signature checks out, so forged
        requests cannot fill the cache or burn a real caller's nonce.
        """
        now = time.time() if now is None else now
        values = {name: headers.get(name) for name in SIGNED_HEADERS}
        missing = [name for name in (HOTKEY_HEADER, NONCE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
                   if not values[name]]
        if missing:
            raise MissingSignature(f"signed request needs headers {', '.join(missing)}")
        hotkey, nonce, ts_text, sig_text = (str(values[n]) for n in SIGNED_HEADERS[:4])
        if len(nonce) > _MAX_NONCE_LEN:
            raise MissingSignature(f"{NONCE_HEADER} longer than {_MAX_NONCE_LEN} characters")
        try:
            timestamp = float(ts_text)
        except ValueError as exc:
            raise MissingSignature(f"{TIMESTAMP_HEADER} is not a number") from exc
        if not (now - self.max_age_s <= timestamp <= now + _FUTURE_SKEW_S) or timestamp <= self._nonces.floor(hotkey):
            raise StaleRequest(f"request timestamp is outside the accepted {self.max_age_s:.0f} s window")
        receiver = values[RECEIVER_HEADER]
        if receiver is not None and receiver != self.own_hotkey:
            raise WrongReceiver("request was signed for another receiver hotkey")
        try:
            signature = bytes.fromhex(sig_text.removeprefix("0x"))
            keypair = Keypair(ss58_address=hotkey)
            valid = keypair.verify(signing_message(body, nonce, ts_text, self.own_hotkey), signature)
        except ValueError as exc:
            raise BadSignature(f"malformed hotkey or signature: {exc}") from exc
        if not valid:
            raise BadSignature("signature does not match hotkey, body, nonce, timestamp and receiver")
        self._nonces.add(hotkey, nonce, timestamp, now=now)
        return SignedCaller(hotkey=hotkey, nonce=nonce, timestamp=timestamp)
