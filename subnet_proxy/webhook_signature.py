"""Webhook signatures, Stripe-style: the sender signs the time and the body, the receiver checks both.

``X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``. The time is inside
the signed text, so a receiver that refuses a signature older than a few minutes (``tolerance_s``)
refuses a replayed request even though its body and signature are genuine; each retry of an event
is signed anew with the time of that attempt. A header may carry several ``v1=`` values (a secret
being rotated): one match is enough.

Shared by the side-server's webhook worker (``sign``) and clients' receivers (``verify_webhook``,
re-exported by ``subnet_proxy.client``), so both ends compute the very same text.
"""

from __future__ import annotations

import hashlib
import hmac
import time

#: the header that carries the signature.
SIGNATURE_HEADER = "X-Signature"
#: a receiver's default: signatures older (or further in the future) than this are refused.
DEFAULT_TOLERANCE_S = 300.0


class WebhookSignatureError(ValueError):
    """The signature header is missing, malformed, too old, or matches no secret."""


def _digest(secret: str, body: bytes, t: int) -> str:
    return hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, t: int | None = None) -> str:
    """The ``X-Signature`` value for ``body`` sent now (or at unix time ``t``)."""
    at = int(time.time()) if t is None else t
    return f"t={at},v1={_digest(secret, body, at)}"


def verify_webhook(secret: str, body: bytes | str, header: str | None, tolerance_s: float = DEFAULT_TOLERANCE_S,
                   *, now: float | None = None) -> int:
    """Check a webhook request: ``body`` exactly as received, ``header`` its ``X-Signature``. Returns
    the signed time; raises WebhookSignatureError when the header is absent or malformed, its time is
    more than ``tolerance_s`` from now (a replay), or no ``v1`` value matches (forged or altered)."""
    if not header:
        raise WebhookSignatureError("no signature header")
    raw = body.encode() if isinstance(body, str) else body
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            t = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if t is None or not candidates:
        raise WebhookSignatureError("malformed signature header")
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        raise WebhookSignatureError("signature time outside the tolerance (a replay, or a clock far off)")
    expected = _digest(secret, raw, t)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookSignatureError("no signature matches")
    return t
